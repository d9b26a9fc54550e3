// Symbolic dims: polynomials with integer coefficients in a canonical form, with opaque
// quotients that cancel against their denominators.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Dim, addDim, constDim, dimEquals, divDim, evalDim, isConst, mulDim, printDim, subDim, substDim, symDim,
} from "../../compiler/check/dims.ts";
import { printDims } from "../../compiler/check/types.ts";
import { type Shape, Unifier } from "../../compiler/check/unify.ts";

const B = symDim("B"), T = symDim("T"), D = symDim("D"), H = symDim("H"), V = symDim("V");
const n = constDim;

describe("normal form", () => {
  it("2*D, D+D and D*2 are one dim", () => {
    expect(dimEquals(mulDim(n(2), D), addDim(D, D))).toBe(true);
    expect(dimEquals(mulDim(D, n(2)), addDim(D, D))).toBe(true);
    expect(printDim(addDim(D, D))).toBe("2*D");
  });

  it("terms merge and cancel", () => {
    expect(printDim(subDim(addDim(D, T), D))).toBe("T");
    expect(isConst(subDim(D, D))).toBe(0);
    expect(printDim(addDim(mulDim(D, V), V))).toBe("D*V+V");
  });

  it("prints readably: constants last, minus signs, products", () => {
    expect(printDim(subDim(T, n(1)))).toBe("T-1");
    expect(printDim(addDim(mulDim(n(2), D), n(1)))).toBe("2*D+1");
    expect(printDim(subDim(n(0), D))).toBe("-D");
    expect(printDim(mulDim(D, D))).toBe("D*D");
    expect(printDim(mulDim(B, T))).toBe("B*T");
  });
});

describe("division", () => {
  it("simplifies when exact", () => {
    expect(printDim(divDim(mulDim(n(2), D), n(2)))).toBe("D");
    expect(printDim(divDim(mulDim(D, H), H))).toBe("D");
    expect(printDim(divDim(n(12), n(4)))).toBe("3");
    expect(printDim(divDim(addDim(mulDim(n(2), D), n(2)), addDim(D, n(1))))).toBe("2");
  });

  it("is an opaque atom otherwise, printed as written", () => {
    expect(printDim(divDim(D, H))).toBe("D/H");
    expect(printDim(divDim(addDim(D, n(1)), n(2)))).toBe("(D+1)/2");
    expect(printDim(mulDim(n(2), divDim(D, H)))).toBe("2*(D/H)");
  });

  it("reduces common factors, so (2*D)/(2*H) is D/H", () => {
    expect(dimEquals(divDim(mulDim(n(2), D), mulDim(n(2), H)), divDim(D, H))).toBe(true);
  });

  it("cancels against its denominator: H*(D/H) = D", () => {
    expect(printDim(mulDim(H, divDim(D, H)))).toBe("D");
    // the element count of a head split: B*T*H*(D/H) = B*T*D
    const split = [B, T, H, divDim(D, H)].reduce(mulDim);
    expect(dimEquals(split, mulDim(mulDim(B, T), D))).toBe(true);
  });
});

describe("substitution and evaluation", () => {
  it("substitutes names and re-simplifies quotients", () => {
    const d = divDim(D, H);
    expect(printDim(substDim(d, (a) => (a.key === "D" ? mulDim(n(4), H) : undefined)))).toBe("4");
    expect(printDim(substDim(d, (a) => (a.key === "H" ? n(2) : undefined)))).toBe("D/2");
  });

  it("evaluates with values for the names", () => {
    const vals: Record<string, number> = { D: 128, H: 4, T: 64 };
    expect(evalDim(addDim(divDim(D, H), subDim(T, n(1))), (a) => vals[a.key])).toBe(32 + 63);
    expect(evalDim(D, () => undefined)).toBeUndefined();
  });
});

describe("algebra (property tests)", () => {
  const atom = fc.constantFrom(B, T, D, H, V);
  const dim: fc.Arbitrary<Dim> = fc.letrec<{ d: Dim }>((tie) => ({
    d: fc.oneof(
      { depthSize: "small" },
      atom,
      fc.integer({ min: -5, max: 5 }).map(n),
      fc.tuple(tie("d"), tie("d")).map(([a, b]) => addDim(a, b)),
      fc.tuple(tie("d"), tie("d")).map(([a, b]) => mulDim(a, b)),
    ),
  })).d;
  const vals: Record<string, number> = { B: 3, T: 5, D: 7, H: 2, V: 11 };
  const ev = (d: Dim) => evalDim(d, (a) => vals[a.key]);

  it("addition and multiplication commute", () => {
    fc.assert(fc.property(dim, dim, (a, b) => dimEquals(addDim(a, b), addDim(b, a)) && dimEquals(mulDim(a, b), mulDim(b, a))));
  });

  it("multiplication distributes over addition", () => {
    fc.assert(fc.property(dim, dim, dim, (a, b, c) => dimEquals(mulDim(a, addDim(b, c)), addDim(mulDim(a, b), mulDim(a, c)))));
  });

  it("the normal form keeps the value", () => {
    fc.assert(fc.property(dim, dim, (a, b) => ev(mulDim(a, b)) === ev(a)! * ev(b)! && ev(subDim(a, b)) === ev(a)! - ev(b)!));
  });

  it("an exact quotient times the divisor is the dividend", () => {
    fc.assert(fc.property(dim, atom, (a, b) => dimEquals(divDim(mulDim(a, b), b), a)));
  });
});

describe("leading dims that broadcast symbolically", () => {
  const shape = (s: Shape) => printDims(s);
  it("a `..` against known leading dims is a broadcast rest, the same whichever side it is on", () => {
    const u = new Unifier();
    const r = u.freshRest();
    const a = u.broadcast({ rest: r, dims: [D] }, { dims: [T, D] });
    const b = u.broadcast({ dims: [T, D] }, { rest: r, dims: [D] });
    if (!("shape" in a) || !("shape" in b)) throw new Error("expected a broadcast");
    expect(shape(a.shape)).toBe("[..broadcast(.., [T]), D]");
    expect(a.shape.rest?.key).toBe(b.shape.rest?.key);
    // once `..` is known the broadcast is decided (NumPy: [B, T] with [T] is [B, T]; [] with [T] is [T])
    u.bindRestVar(r, { dims: [B, T] });
    expect(shape(u.resolveShape(a.shape))).toBe("[B, T, D]");
  });

  it("a broadcast of a broadcast flattens, and equal parts merge", () => {
    const u = new Unifier();
    const r = u.freshRest(), s = u.freshRest();
    const ab = u.broadcast({ rest: r, dims: [] }, { rest: s, dims: [] });
    if (!("shape" in ab)) throw new Error("expected a broadcast");
    const again = u.broadcast(ab.shape, { rest: r, dims: [] });
    if (!("shape" in again)) throw new Error("expected a broadcast");
    expect(again.shape.rest?.key).toBe(ab.shape.rest?.key);
    expect(again.shape.rest?.parts).toHaveLength(2);
  });

  // NumPy's rule, written out: align on the right, a missing dim or a 1 stretches.
  const numpy = (a: number[], b: number[]): number[] | undefined => {
    const n = Math.max(a.length, b.length);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
      if (x !== y && x !== 1 && y !== 1) return undefined;
      out.push(Math.max(x, y));
    }
    return out;
  };
  const lead = fc.array(fc.constantFrom(1, 2, 3), { maxLength: 3 });

  it("binding the rest decides the broadcast as NumPy would, or reports the conflict", () => {
    fc.assert(
      fc.property(lead, lead, (pa, pb) => {
        const u = new Unifier();
        const r = u.freshRest();
        const out = u.broadcast({ rest: r, dims: [D] }, { dims: [...pb.map(n), D] });
        if (!("shape" in out)) return false;
        u.bindRestVar(r, { dims: pa.map(n) });
        const want = numpy(pa, pb);
        if (!want) return u.leadingConflict(out.shape) !== undefined;
        return u.leadingConflict(out.shape) === undefined && shape(u.resolveShape(out.shape)) === shape({ dims: [...want.map(n), D] });
      }),
    );
  });
});
