// Symbolic dims: a dim is a polynomial with integer coefficients over named sizes, kept in a
// canonical form so that `2*D`, `D+D` and `D*2` are the same value and compare by key.
// A quotient that does not simplify exactly (`D/H`) becomes an opaque atom; multiplying it
// back by its denominator (`H * (D/H)`) cancels again, so reshapes that split and merge
// heads check symbolically.

/** A factor of a monomial. */
export type Atom =
  /** A named size: a global `dim`, a block's dim parameter, a fn's compile-time int parameter. */
  | { kind: "sym"; key: string; name: string }
  /** An unknown solved by unification: `_` in an annotation, the dims of a template's instance argument. */
  | { kind: "var"; key: string; name: string }
  /** `num/den` that did not divide exactly. */
  | { kind: "div"; key: string; num: Dim; den: Dim };

/** An atom with a name (not a quotient). */
export type NamedAtom = Extract<Atom, { kind: "sym" | "var" }>;

export interface Term {
  coef: number;
  /** sorted by `atomOrder`, repeated for powers (`D*D`) */
  atoms: Atom[];
}

/** Canonical polynomial: terms sorted by `termOrder`, merged, no zero coefficients. */
export interface Dim {
  terms: Term[];
}

// ------------------------------------------------------------------ construction

export function constDim(n: number): Dim {
  return n === 0 ? { terms: [] } : { terms: [{ coef: n, atoms: [] }] };
}

export function symDim(key: string, name = key): Dim {
  return { terms: [{ coef: 1, atoms: [{ kind: "sym", key, name }] }] };
}

export function atomDim(a: Atom): Dim {
  return { terms: [{ coef: 1, atoms: [a] }] };
}

export function varDim(key: string, name: string): Dim {
  return { terms: [{ coef: 1, atoms: [{ kind: "var", key, name }] }] };
}

export const ZERO: Dim = constDim(0);
export const ONE: Dim = constDim(1);

// ------------------------------------------------------------------ ordering and keys

function atomName(a: Atom): string {
  return a.kind === "div" ? printDiv(a) : a.name;
}

function atomOrder(a: Atom, b: Atom): number {
  const an = atomName(a), bn = atomName(b);
  if (an !== bn) return an < bn ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function monoKey(atoms: Atom[]): string {
  return atoms.map((a) => a.key).join("*");
}

function termOrder(a: Term, b: Term): number {
  // higher degree first, constants last; then by readable name, then by key (total order)
  if (a.atoms.length !== b.atoms.length) return b.atoms.length - a.atoms.length;
  for (let i = 0; i < a.atoms.length; i++) {
    const c = atomOrder(a.atoms[i], b.atoms[i]);
    if (c !== 0) return c;
  }
  return 0;
}

/** A string that is equal for equal dims. */
export function dimKey(d: Dim): string {
  return d.terms.map((t) => `${t.coef}:${monoKey(t.atoms)}`).join("+");
}

export function dimEquals(a: Dim, b: Dim): boolean {
  return dimKey(a) === dimKey(b);
}

// ------------------------------------------------------------------ arithmetic

/** Merge like terms and sort: the one place that builds a canonical Dim. */
function canonical(terms: Term[]): Dim {
  const byKey = new Map<string, Term>();
  for (const t of terms) {
    if (t.coef === 0) continue;
    const k = monoKey(t.atoms);
    const prev = byKey.get(k);
    if (prev) prev.coef += t.coef;
    else byKey.set(k, { coef: t.coef, atoms: t.atoms });
  }
  const out = [...byKey.values()].filter((t) => t.coef !== 0);
  out.sort(termOrder);
  return { terms: out };
}

export function addDim(a: Dim, b: Dim): Dim {
  return canonical([...a.terms.map(copyTerm), ...b.terms.map(copyTerm)]);
}

export function negDim(a: Dim): Dim {
  return canonical(a.terms.map((t) => ({ coef: -t.coef, atoms: t.atoms })));
}

export function subDim(a: Dim, b: Dim): Dim {
  return addDim(a, negDim(b));
}

export function scaleDim(a: Dim, k: number): Dim {
  return canonical(a.terms.map((t) => ({ coef: t.coef * k, atoms: t.atoms })));
}

function copyTerm(t: Term): Term {
  return { coef: t.coef, atoms: t.atoms };
}

export function mulDim(a: Dim, b: Dim): Dim {
  const parts: Term[] = [];
  for (const x of a.terms) for (const y of b.terms) parts.push(...mulTerms(x, y).terms);
  return canonical(parts);
}

/** Multiply two monomials, cancelling `num/den` atoms against their denominators. */
function mulTerms(x: Term, y: Term): Dim {
  const atoms = [...x.atoms, ...y.atoms].sort(atomOrder);
  return cancelDivs({ coef: x.coef * y.coef, atoms });
}

function cancelDivs(t: Term): Dim {
  for (let i = 0; i < t.atoms.length; i++) {
    const a = t.atoms[i];
    if (a.kind !== "div" || a.den.terms.length !== 1) continue;
    const den = a.den.terms[0];
    if (t.coef % den.coef !== 0) continue;
    const others = [...t.atoms.slice(0, i), ...t.atoms.slice(i + 1)];
    const rest = removeAtoms(others, den.atoms);
    if (!rest) continue;
    const k: Term = { coef: t.coef / den.coef, atoms: rest };
    return mulDim({ terms: [k] }, a.num);
  }
  return { terms: [t] };
}

/** `atoms` minus the multiset `remove`, or undefined when `remove` is not contained. */
function removeAtoms(atoms: Atom[], remove: Atom[]): Atom[] | undefined {
  const out = [...atoms];
  for (const r of remove) {
    const i = out.findIndex((a) => a.key === r.key);
    if (i < 0) return undefined;
    out.splice(i, 1);
  }
  return out;
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Exact quotient when every term of `a` is divisible by the monomial `m`. */
function divByMonomial(a: Dim, m: Term): Dim | undefined {
  const out: Term[] = [];
  for (const t of a.terms) {
    if (t.coef % m.coef !== 0) return undefined;
    const rest = removeAtoms(t.atoms, m.atoms);
    if (!rest) return undefined;
    out.push({ coef: t.coef / m.coef, atoms: rest });
  }
  return canonical(out);
}

/** `a / b`: exact when it simplifies (`(2*D)/2` = D, `(2*D+2)/(D+1)` = 2), else the opaque atom `a/b`. */
export function divDim(a: Dim, b: Dim): Dim {
  if (a.terms.length === 0) return ZERO;
  if (b.terms.length === 1) {
    const q = divByMonomial(a, b.terms[0]);
    if (q) return q;
  } else if (b.terms.length > 1) {
    const q = divByMonomial({ terms: [a.terms[0]] }, b.terms[0]);
    if (q && dimEquals(mulDim(q, b), a)) return q;
  }
  // reduce by the common integer factor and the common monomial factor of every term
  const all = [...a.terms, ...b.terms];
  let g = 0;
  for (const t of all) g = gcd(g, t.coef);
  let common: Atom[] = all[0]?.atoms ?? [];
  for (const t of all.slice(1)) common = intersectAtoms(common, t.atoms);
  const m: Term = { coef: g || 1, atoms: common };
  let num = divByMonomial(a, m) ?? a;
  let den = divByMonomial(b, m) ?? b;
  if (den.terms.length > 0 && den.terms[0].coef < 0) {
    num = negDim(num);
    den = negDim(den);
  }
  if (isConst(den) === 1) return num;
  const atom: Atom = { kind: "div", key: `(${dimKey(num)})/(${dimKey(den)})`, num, den };
  return { terms: [{ coef: 1, atoms: [atom] }] };
}

function intersectAtoms(a: Atom[], b: Atom[]): Atom[] {
  const rest = [...b];
  const out: Atom[] = [];
  for (const x of a) {
    const i = rest.findIndex((y) => y.key === x.key);
    if (i >= 0) {
      out.push(x);
      rest.splice(i, 1);
    }
  }
  return out;
}

export function sumDims(ds: Dim[]): Dim {
  return ds.reduce(addDim, ZERO);
}

export function productDims(ds: Dim[]): Dim {
  return ds.reduce(mulDim, ONE);
}

// ------------------------------------------------------------------ inspection

/** The integer value of a constant dim, else undefined. */
export function isConst(d: Dim): number | undefined {
  if (d.terms.length === 0) return 0;
  if (d.terms.length === 1 && d.terms[0].atoms.length === 0) return d.terms[0].coef;
  return undefined;
}

/** The atom when the dim is exactly one atom with coefficient 1 (`T`, a var, `D/H`). */
export function soleAtom(d: Dim): Atom | undefined {
  if (d.terms.length === 1 && d.terms[0].coef === 1 && d.terms[0].atoms.length === 1) return d.terms[0].atoms[0];
  return undefined;
}

/** Every atom mentioned, including those inside quotients. */
export function atomsOf(d: Dim, out: Map<string, Atom> = new Map()): Map<string, Atom> {
  for (const t of d.terms)
    for (const a of t.atoms) {
      if (a.kind === "div") {
        atomsOf(a.num, out);
        atomsOf(a.den, out);
      } else out.set(a.key, a);
    }
  return out;
}

export function hasVars(d: Dim): boolean {
  for (const a of atomsOf(d).values()) if (a.kind === "var") return true;
  return false;
}

// ------------------------------------------------------------------ substitution and evaluation

/** Replace sym/var atoms by dims; quotients are re-divided so they simplify when they can. */
export function substDim(d: Dim, f: (a: NamedAtom) => Dim | undefined): Dim {
  let changed = false;
  const parts: Dim[] = [];
  for (const t of d.terms) {
    let acc: Dim = constDim(t.coef);
    for (const a of t.atoms) {
      let r: Dim | undefined;
      if (a.kind === "div") {
        const num = substDim(a.num, f), den = substDim(a.den, f);
        if (num !== a.num || den !== a.den) r = divDim(num, den);
      } else r = f(a);
      if (r) changed = true;
      acc = mulDim(acc, r ?? { terms: [{ coef: 1, atoms: [a] }] });
    }
    parts.push(acc);
  }
  return changed ? sumDims(parts) : d;
}

/** The numeric value given values for the named sizes; undefined when one is missing. */
export function evalDim(d: Dim, value: (a: NamedAtom) => number | undefined): number | undefined {
  let total = 0;
  for (const t of d.terms) {
    let p = t.coef;
    for (const a of t.atoms) {
      let v: number | undefined;
      if (a.kind === "div") {
        const n = evalDim(a.num, value), m = evalDim(a.den, value);
        v = n === undefined || m === undefined ? undefined : n / m;
      } else v = value(a);
      if (v === undefined) return undefined;
      p *= v;
    }
    total += p;
  }
  return total;
}

// ------------------------------------------------------------------ printing

function printDiv(a: { num: Dim; den: Dim }): string {
  const n = printDim(a.num), d = printDim(a.den);
  const nSimple = a.num.terms.length === 1 && (a.num.terms[0].atoms.length + (a.num.terms[0].coef !== 1 ? 1 : 0)) <= 1;
  const dSimple = a.den.terms.length === 1 && (a.den.terms[0].atoms.length + (a.den.terms[0].coef !== 1 ? 1 : 0)) <= 1;
  return `${nSimple ? n : `(${n})`}/${dSimple ? d : `(${d})`}`;
}

function printTerm(t: Term, abs: boolean): string {
  const c = abs ? Math.abs(t.coef) : t.coef;
  const factors = t.atoms.map((a) => (a.kind === "div" && (t.atoms.length > 1 || c !== 1) ? `(${printDiv(a)})` : atomName(a)));
  if (factors.length === 0) return String(c);
  if (c === 1) return factors.join("*");
  if (c === -1) return `-${factors.join("*")}`;
  return `${c}*${factors.join("*")}`;
}

/** Readable text: `2*D`, `T-1`, `D/H`, `D*V+V`. */
export function printDim(d: Dim): string {
  if (d.terms.length === 0) return "0";
  let s = printTerm(d.terms[0], false);
  for (const t of d.terms.slice(1)) s += (t.coef < 0 ? "-" : "+") + printTerm(t, true);
  return s;
}
