// Wrong programs and the diagnostic each must produce: the code, where (line:col of the
// entry file), and what the message says. Each case is a small .weft snippet.
import { describe, expect, it } from "vitest";
import { Checker } from "../../compiler/check/checker.ts";
import { loadProgram, lowerFunction, MODELS_DIR } from "../../compiler/index.ts";
import { checkFiles, checkSource } from "./harness.ts";

interface Case {
  what: string;
  src: string;
  /** the diagnostic expected: code, 1-based line:col, fragments of the message */
  code: string;
  at: string;
  says: string[];
  hint?: string;
  severity?: "error" | "warning";
  /** line:col of the related notes, in order */
  related?: string[];
}

const LINEAR = `block Linear(I, O) {
  param w: f32[I, O] = glorot
  fn (x: f32[.., I]) -> f32[.., O] = x @ w
}`;

const cases: Case[] = [
  // ---------------------------------------------------------------- W01xx names
  {
    what: "an unknown fn name, with a did-you-mean",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] = sofmax(x, D)`,
    code: "W0101", at: "2:35", says: ["unknown name `sofmax`"], hint: "did you mean `softmax`?",
  },
  {
    what: "an undeclared dim used as an axis",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B] = sum(x, T)`,
    code: "W0101", at: "2:39", says: ["unknown name `T`"], hint: "declare it: `dim T`",
  },
  {
    what: "an unknown member of an instance",
    src: `dim B, D
${LINEAR}
block M(D) {
  lin = Linear(D, D)
  fn (x: f32[B, D]) -> f32[D, D] = lin.ww
}`,
    code: "W0102", at: "8:40", says: ["Linear(D, D) has no member `ww`"], hint: "did you mean `w`?",
  },
  {
    what: "two fns with one name",
    src: `dim D
fn f(x: f32[D]) -> f32[D] = x
fn f(x: f32[D]) -> f32[D] = -x`,
    code: "W0103", at: "3:4", says: ["`f` is already defined in this file"],
  },
  {
    what: "a block member defined twice",
    src: `block M(D) {
  param w: f32[D] = zeros
  param w: f32[D] = ones
}`,
    code: "W0103", at: "3:9", says: ["`w` is already defined in block M"],
  },
  {
    what: "mutual recursion",
    src: `dim D
fn ping(x: f32[D]) -> f32[D] = pong(x)
fn pong(x: f32[D]) -> f32[D] = ping(x)`,
    code: "W0106", at: "2:32", says: ["recursion is not allowed: ping → pong → ping"],
  },
  {
    what: "a block that contains itself",
    src: `dim D
block Tree(D) {
  left = Tree(D)
}`,
    code: "W0106", at: "3:10", says: ["recursion is not allowed: Tree → Tree"], hint: "a block cannot contain an instance of itself",
  },
  {
    what: "an undeclared dim in an annotation",
    src: `dim B
fn f(x: f32[B, Q]) -> f32[B, Q] = x`,
    code: "W0107", at: "2:16", says: ["unknown dim `Q`"], hint: "declare it: `dim Q`",
  },
  {
    what: "a fn name used as a parameter type",
    src: `dim D
fn g(x: f32[D]) -> f32[D] = x
fn f(x: f32[D], h: g) -> f32[D] = x`,
    code: "W0108", at: "3:20", says: ["`g` is a fn, not a block"],
  },
  // ---------------------------------------------------------------- W02xx types and shapes
  {
    what: "adding f32 and i32",
    src: `dim B, D
fn f(x: f32[B, D], i: i32[B, D]) -> f32[B, D] = x + i`,
    code: "W0201", at: "2:49", says: ["`+` needs operands of one dtype", "f32[B, D] and i32[B, D]"], hint: "convert with cast(x)",
  },
  {
    what: "a rank-1 argument where rank 2 is declared",
    src: `dim B, D
fn g(x: f32[B, D]) -> f32[B, D] = x
fn f(x: f32[D]) -> f32[B, D] = g(x)`,
    code: "W0202", at: "3:34", says: ["argument `x` of `g`: expected f32[B, D], found f32[D]", "rank 1 vs 2"],
  },
  {
    what: "broadcasting D against F (the example of the brief)",
    src: `dim B, T, D, F
fn f(x: f32[B, T, D], y: f32[B, F]) -> f32[B, T, D] = x + y`,
    code: "W0203", at: "2:55", says: ["cannot broadcast f32[B, T, D] with f32[B, F]: dim D vs F (at dim 3 of 3)"],
  },
  {
    what: "a missing new axis, with the fix suggested",
    src: `dim G, T
fn f(a: f32[G], r: f32[G, T]) -> f32[G, T] = r * a`,
    code: "W0203", at: "2:46", says: ["cannot broadcast f32[G, T] with f32[G]: dim T vs G"], hint: "insert `None` to broadcast: a[:, None]",
  },
  {
    what: "dims that are equal in value are still different dims",
    src: `dim B = 128, D = 128
fn f(x: f32[B, D], y: f32[B, B]) -> f32[B, D] = x + y`,
    code: "W0203", at: "2:49", says: ["dim D vs B"],
  },
  {
    what: "matmul with mismatched inner dims",
    src: `dim B, D, F
fn f(x: f32[B, D], w: f32[F, D]) -> f32[B, D] = x @ w`,
    code: "W0204", at: "2:49", says: ["matmul inner dims differ: f32[B, D] @ f32[F, D]: D vs F"], hint: "the right operand may need a transpose",
  },
  {
    what: "reducing over a dim the tensor does not have",
    src: `dim B, T, D
fn f(x: f32[B, D]) -> f32[B] = sum(x, T)`,
    code: "W0205", at: "2:39", says: ["f32[B, D] has no dim T"],
  },
  {
    what: "an axis name that appears twice",
    src: `dim T
fn f(x: f32[T, T]) -> f32[T] = sum(x, T)`,
    code: "W0205", at: "2:39", says: ["axis T is ambiguous: f32[T, T] has T at dims 1 and 2"],
  },
  {
    what: "too many arguments",
    src: `dim D
fn f(x: f32[D]) -> f32[D] = exp(x, x)`,
    code: "W0206", at: "2:36", says: ["exp takes 1 argument, found 2"],
  },
  {
    what: "an unknown named argument",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] = softmax(x, axs = D)`,
    code: "W0207", at: "2:46", says: ["softmax has no parameter `axs`"], hint: "did you mean `axis`?",
  },
  {
    what: "a missing argument",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, 2*D] = concat([x, x])`,
    code: "W0208", at: "2:43", says: ["missing argument `axis` of concat"],
  },
  {
    what: "a block constructed with too few dims",
    src: `dim D
${LINEAR}
block M(D) { lin = Linear(D) }`,
    code: "W0208", at: "6:26", says: ["Linear takes 2 dims (I, O), found 1"],
  },
  {
    what: "an unknown initialiser",
    src: `block M(D) {
  param w: f32[D] = xavier
}`,
    code: "W0209", at: "2:21", says: ["unknown initialiser `xavier`"], hint: "the initialisers are a number, zeros, ones, glorot, normal, uniform",
  },
  {
    what: "the return annotation disagrees with the body",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[D, B] = x`,
    code: "W0210", at: "2:35", says: ["f is declared to return f32[D, B], but this is f32[B, D]: dim B vs D (at dim 1 of 2)"],
  },
  {
    what: "a let annotation disagrees with the value",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B] {
  let s: f32[D] = sum(x, D)
  return s
}`,
    code: "W0210", at: "3:19", says: ["`s` is declared f32[D], but its value is f32[B]: dim B vs D"],
  },
  {
    what: "an instance passed where a different block is expected",
    src: `dim B, D
${LINEAR}
block Other(E) { fn (x: f32[B, E]) -> f32[B, E] = x }
fn use(x: f32[B, D], l: Linear) -> f32[B, D] = l(x)
block M {
  o = Other(D)
  fn (x: f32[B, D]) -> f32[B, D] = use(x, o)
}`,
    code: "W0211", at: "10:43", says: ["argument `l` of `use`: expected the instance Linear(", "found the instance Other(D)"],
  },
  {
    what: "if branches of different shapes",
    src: `dim B, D
fn f(x: f32[B, D], c = true) -> f32[B, D] = if c { x } else { sum(x, D) }`,
    code: "W0211", at: "2:45", says: ["the branches of `if` differ: f32[B, D] and f32[B]"],
  },
  {
    what: "if on a tensor",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] = if x > 0 { x } else { -x }`,
    code: "W0212", at: "2:38", says: ["`if` needs a compile-time condition, found the tensor bool[B, D]"], hint: "where(c, a, b)",
  },
  {
    what: "a for bound that is a tensor",
    src: `dim D
fn f(x: f32[D], n: f32) -> f32[D] {
  var h = x
  for i in 0..n { h = h * 2 }
  return h
}`,
    code: "W0212", at: "4:15", says: ["a `for` bound must be a compile-time int", "found f32"],
  },
  {
    what: "assigning to a let",
    src: `dim D
fn f(x: f32[D]) -> f32[D] {
  let h = x
  h = h * 2
  return h
}`,
    code: "W0213", at: "4:3", says: ["cannot assign to `h`: it is a `let` binding"],
  },
  {
    what: "a var that changes shape",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] {
  var h = x
  h = sum(h, D)
  return h
}`,
    code: "W0213", at: "4:7", says: ["assignment changes the type of `h`: declared f32[B, D], assigned f32[B]"],
  },
  {
    what: "too many indices",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32 = x[0, 0, 0]`,
    code: "W0214", at: "2:29", says: ["too many indices for f32[B, D]: 3 indices for 2 dims"],
  },
  {
    what: "a reshape that changes the element count",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D, 2] = reshape(x, [B, D, 2])`,
    code: "W0215", at: "2:49", says: ["reshape changes the number of elements: f32[B, D] has B*D, [B, D, 2] has 2*B*D"],
  },
  {
    what: "grad of a non-scalar",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] = grad(sum(x, D), x)`,
    code: "W0216", at: "2:40", says: ["grad needs a scalar f32 to differentiate, found f32[B]"], hint: "reduce it first",
  },
  {
    what: "grad with respect to an expression",
    src: `dim B, D
fn f(x: f32[B, D]) -> f32[B, D] = grad(sum(x), x * 2)`,
    code: "W0216", at: "2:48", says: ["grad differentiates with respect to a name"],
  },
  {
    what: "an instance created inside a fn",
    src: `dim D
${LINEAR}
fn f(x: f32[D]) -> f32[D] = Linear(D, D)(x)`,
    code: "W0217", at: "6:29", says: ["instances are created only as block members"],
  },
  {
    what: "an unknown dtype",
    src: `dim D
fn f(x: f32[D]) -> f64 = x`,
    code: "W0218", at: "2:20", says: ["unknown dtype `f64`"],
  },
  {
    what: "a body with no value",
    src: `dim D
fn f(x: f32[D]) -> f32 { let _y = sum(x) }`,
    code: "W0219", at: "2:20", says: ["f has no value"],
  },
  {
    what: "a template fn that fails for the instance it is called with",
    src: `dim B, T, D
${LINEAR}
fn f(x: f32[B, T, D], l: Linear) -> f32[B, T, D] = l(x)
block Top(E) {
  lin = Linear(D, 2*D)
  fn (x: f32[B, T, D]) -> f32[B, T, D] = f(x, lin)
}`,
    code: "W0220", at: "9:42", says: ["`f` does not check with l: Linear(D, 2*D)", "f32[B, T, 2*D]"],
  },
  {
    what: "calling a block without a forward fn",
    src: `dim D
block Params(D) { param w: f32[D] = zeros }
block M(D) {
  p = Params(D)
  fn (x: f32[D]) -> f32[D] = p(x)
}`,
    code: "W0221", at: "5:30", says: ["Params(D) cannot be called: block Params has no forward fn"],
  },
  {
    what: "the arguments of one `..` whose leading dims do not broadcast",
    src: `dim B, T, D
fn add(a: f32[.., D], b: f32[.., D]) -> f32[.., D] = a + b
fn f(x: f32[B, T, D], y: f32[B, D]) = add(x, y)`,
    code: "W0203", at: "3:46", says: ["the leading dims `..` of `add`'s arguments do not broadcast: `a` has [B, T], `b` has [B]: dim T vs B"],
    related: ["2:8", "2:23"],
  },
  {
    what: "a call whose result's symbolic leading dims turn out not to broadcast",
    src: `dim B, T, D
fn addpe(x: f32[.., D], pe: f32[T, D]) = x + pe
fn f(x: f32[B, 4, D], pe: f32[T, D]) = addpe(x, pe)`,
    code: "W0203", at: "3:40", says: ["the result of `addpe` has leading dims that do not broadcast here: [B, 4] with [T]: dim 4 vs T"],
  },
  {
    what: "a block's dim passed where the global dim it shadows is declared",
    src: `dim B, D
fn norm(x: f32[B, D]) -> f32[B, D] = x
block M(D) {
  fn (x: f32[B, D]) -> f32[B, D] = norm(x)
}`,
    code: "W0203", at: "4:41",
    says: ["argument `x` of `norm`: expected f32[B, D], found f32[B, D]: dim D vs D (at dim 2 of 2); block M's dim `D` shadows the global dim `D`"],
    hint: "rename the block's dim", related: ["2:9", "3:9", "1:8"],
  },
  {
    what: "a broadcast between a block's dim and the global dim it shadows",
    src: `dim B, D
fn bias() -> f32[D] = zeros([D])
block M(D) {
  fn (x: f32[B, D]) -> f32[B, D] = x + bias()
}`,
    code: "W0203", at: "4:36", says: ["cannot broadcast f32[B, D] with f32[D]: dim D vs D (at dim 2 of 2); block M's dim `D` shadows the global dim `D`"],
    related: ["4:7", "3:9", "1:8"],
  },
  {
    what: "a declared `..` return where the leading dims are a broadcast",
    src: `dim B, D
fn f(x: f32[.., D], y: f32[B, D]) -> f32[.., D] = x + y`,
    code: "W0210", at: "2:51", says: ["f is declared to return f32[.., D], but this is f32[..broadcast(.., [B]), D] (leading dims ..broadcast(.., [B]) vs ..)"],
  },
  {
    what: "a `..` argument shorter than its known trailing dims",
    src: `dim T, D
fn g(x: f32[.., T, D]) -> f32[.., D] = sum(x, T)
fn f(x: f32[D]) -> f32 = sum(g(x))`,
    code: "W0202", at: "3:32", says: ["argument `x` of `g`: expected f32[.., T, D], found f32[D] (rank 1 vs 2+)"],
  },
  {
    what: "indexing a tensor with unknown leading dims from the left",
    src: `dim D
fn f(x: f32[.., D]) = x[:, 0]`,
    code: "W0214", at: "2:23", says: ["cannot index f32[.., D] from the left: its leading dims `..` are unknown"], hint: "index its trailing dims after `..`: x[.., 0]",
    related: ["2:6"],
  },
  {
    what: "an index item before `..` on a tensor with unknown leading dims",
    src: `dim T, D
fn f(x: f32[.., T, D]) = x[0, .., 0]`,
    code: "W0214", at: "2:28", says: ["cannot index f32[.., T, D] from the left: items before `..` would address its unknown leading dims"],
  },
  {
    what: "more indices after `..` than known trailing dims",
    src: `dim T, D
fn f(x: f32[.., T, D]) = x[.., 0, 0, 0]`,
    code: "W0214", at: "2:26", says: ["too many indices after `..` for f32[.., T, D]: 3 indices for its 2 known trailing dims"],
  },
  {
    what: "two `..` in one index",
    src: `dim B, T, D
fn f(x: f32[B, T, D]) = x[.., 0, ..]`,
    code: "W0214", at: "2:34", says: ["an index has at most one `..`"],
  },
  {
    what: "a constant index out of range",
    src: `fn f(x: f32[4]) -> f32 = x[4]`,
    code: "W0214", at: "1:28", says: ["index 4 is out of range for dim 4 = 4"],
  },
  {
    what: "an empty slice",
    src: `dim T
fn f(x: f32[T]) -> f32[0] = x[3:3]`,
    code: "W0214", at: "2:31", says: ["the slice 3:3 of dim T is empty"],
  },
  {
    what: "an integer axis inside the unknown leading dims",
    src: `dim D
fn f(x: f32[.., D]) = sum(x, 0)`,
    code: "W0205", at: "2:30", says: ["axis 0 of f32[.., D] is inside the unknown leading dims `..`"], hint: "name the axis",
  },
  {
    what: "a named axis that may be among the unknown leading dims",
    src: `dim B, D
fn f(x: f32[.., D]) = sum(x, B)`,
    code: "W0205", at: "2:30", says: ["f32[.., D] has no dim B"], hint: "the axis may be among the leading dims `..`",
  },
  {
    what: "calling a repeat instead of one of its instances",
    src: `dim D
${LINEAR}
block S(L) {
  layers = repeat(L) Linear(D, D)
  fn (x: f32[D]) -> f32[D] = layers(x)
}`,
    code: "W0221", at: "8:30", says: ["repeat(L) Linear(D, D) is a stack of instances; call one of them: layers[i](x)"],
  },
  {
    what: "if on a compile-time int",
    src: `dim D
fn f(x: f32[D], k = 2) -> f32[D] = if k { x } else { -x }`,
    code: "W0212", at: "2:39", says: ["`if` needs a compile-time flag", "found the compile-time int k"],
  },
  // ---------------------------------------------------------------- W03xx train jobs
  {
    what: "a misspelt train field",
    src: `dim D
train t {
  loss = 1.0 * sum(ones([D]))
  stpes = 5
}`,
    code: "W0301", at: "4:3", says: ["unknown train field `stpes`"], hint: "did you mean `steps`?", severity: "warning",
  },
  {
    what: "a train job without a loss",
    src: `train t { batch = 8 }`,
    code: "W0302", at: "1:7", says: ["train job t has no `loss`"],
  },
  {
    what: "a model that is not an instance",
    src: `train t {
  model = 3
  loss = sum(ones([4]))
}`,
    code: "W0303", at: "2:11", says: ["model must be an instance"],
  },
  {
    what: "a batch size that is not a positive integer",
    src: `train t {
  loss = sum(ones([4]))
  batch = 0
}`,
    code: "W0303", at: "3:11", says: ["batch must be a positive integer, found `0`"],
  },
  {
    what: "an unknown optimizer",
    src: `train t {
  loss = sum(ones([4]))
  optimizer = adamx(lr = 1e-3)
}`,
    code: "W0304", at: "3:15", says: ["unknown optimizer `adamx`"], hint: "did you mean `adam`?",
  },
  {
    what: "an unknown optimizer argument",
    src: `train t {
  loss = sum(ones([4]))
  optimizer = sgd(lr = 0.1, momentum = 0.9, beta1 = 0.9)
}`,
    code: "W0305", at: "3:45", says: ["sgd has no argument `beta1`"],
  },
  {
    what: "a loss that is not a scalar",
    src: `dim B
train t {
  loss = ones([B])
}`,
    code: "W0306", at: "3:10", says: ["the loss must be a float scalar (f32 or f16), found f32[B]"], hint: "mean(...)",
  },
  // ---------------------------------------------------------------- W04xx warnings
  {
    what: "a block dim that shadows a global dim the block's code uses",
    src: `dim B, D
fn width() -> f32[D] = zeros([D])
block M(D) {
  fn (x: f32[B, D]) -> f32[B, D] = x * sum(width())
}`,
    code: "W0403", at: "3:9",
    says: ["block M's dim `D` shadows the global dim `D`, which `width` is typed with: inside M they are different dims"],
    hint: "rename the block's dim (`block M(D2)`), or drop it and use the global `D`", related: ["1:8", "4:44"], severity: "warning",
  },
  {
    what: "an unused let",
    src: `dim D
fn f(x: f32[D]) -> f32[D] {
  let y = x * 2
  return x
}`,
    code: "W0401", at: "3:7", says: ["`y` is never used"], hint: "`_y`", severity: "warning",
  },
  {
    what: "a let that shadows a parameter",
    src: `dim D
fn f(x: f32[D]) -> f32[D] {
  let x = exp(x)
  return x
}`,
    code: "W0402", at: "3:7", says: ["`x` shadows the parameter `x`"], severity: "warning",
  },
];

describe("wrong programs and their diagnostics", () => {
  for (const c of cases) {
    it(`${c.code}: ${c.what}`, () => {
      const r = checkSource(c.src);
      const d = r.diagnostics.find((x) => x.code === c.code);
      expect(d, `no ${c.code} in:\n${r.report()}`).toBeDefined();
      expect(`${d!.span.line}:${d!.span.col}`).toBe(c.at);
      for (const s of c.says) expect(d!.message).toContain(s);
      if (c.hint) expect(d!.hint).toContain(c.hint);
      if (c.related) expect((d!.related ?? []).map((x) => `${x.span.line}:${x.span.col}`)).toEqual(c.related);
      expect(d!.severity).toBe(c.severity ?? "error");
    });
  }

  it("the snippets have no errors beyond the one expected (no cascades)", () => {
    for (const c of cases) {
      const r = checkSource(c.src);
      const codes = r.errors.map((d) => d.code);
      expect(codes.filter((x) => x !== c.code), `${c.what}:\n${r.report()}`).toEqual([]);
    }
  });
});

describe("diagnostics across files and from the command line", () => {
  it("W0104: an import that is not found lists the paths tried", () => {
    const r = checkFiles({ "main.weft": 'import "std/attention"\n' });
    const d = r.diagnostics.find((x) => x.code === "W0104")!;
    expect(`${d.span.line}:${d.span.col}`).toBe("1:8");
    expect(d.message).toBe('cannot find "std/attention"');
    expect(d.hint).toBe("looked for models/std/attention.weft and std/attention.weft");
  });

  it("W0105: an import cycle shows the cycle", () => {
    const r = checkFiles({ "main.weft": 'import "./a"\n', "a.weft": 'import "./b"\n', "b.weft": 'import "./a"\n' });
    const d = r.diagnostics.find((x) => x.code === "W0105")!;
    expect(d.span.file).toBe("b.weft");
    expect(d.message).toBe("import cycle: a.weft → b.weft → a.weft");
  });

  it("W0109: the same name from two unqualified imports is ambiguous", () => {
    const r = checkFiles({
      "main.weft": 'import "./a"\nimport "./b"\ndim D\nfn f(x: f32[D]) -> f32[D] = g(x)\n',
      "a.weft": "dim D\nfn g(x: f32[D]) -> f32[D] = x\n",
      "b.weft": "dim D\nfn g(x: f32[D]) -> f32[D] = -x\n",
    });
    const d = r.diagnostics.find((x) => x.code === "W0109")!;
    expect(`${d.span.line}:${d.span.col}`).toBe("4:29");
    expect(d.message).toBe('`g` is defined in "a.weft" and "b.weft"');
  });

  it("W0110: --dim for a dim that does not exist", () => {
    const r = checkSource("dim D = 64\n", { dims: { DD: 128 } });
    const d = r.diagnostics.find((x) => x.code === "W0110")!;
    expect(d.message).toBe("--dim DD=128: there is no dim DD");
    expect(d.hint).toBe("did you mean `D`?");
  });

  it("W0111: an entry fn that does not exist", () => {
    const host = { modelsDir: MODELS_DIR, readFile: (p: string) => (p === "/virtual/t.weft" ? "dim D\nfn f(x: f32[D]) -> f32[D] = x\n" : undefined) };
    const l = lowerFunction(loadProgram("/virtual/t.weft", { host }), "g", new Map());
    const d = l.ok ? undefined : l.diagnostics[0];
    expect(d?.code).toBe("W0111");
    expect(`${d?.span.line}:${d?.span.col}`).toBe("1:1");
    expect(d?.message).toBe("no fn named 'g' in /virtual/t.weft");
    expect(d?.hint).toBe("its fns: f");
  });

  it("W0999: an internal failure becomes one diagnostic, and checking goes on", () => {
    const ck = new Checker(new Map());
    const span = { file: "main.weft", start: 0, end: 1, line: 1, col: 1, endLine: 1, endCol: 2 };
    ck.guard(span, "fn f", () => {
      throw new Error("boom");
    });
    expect(ck.diagnostics).toHaveLength(1);
    expect(ck.diagnostics[0].code).toBe("W0999");
    expect(ck.diagnostics[0].message).toBe("internal error while checking fn f: boom");
  });
});

describe("fault tolerance", () => {
  it("reports every error in a file, one per broken fn", () => {
    const r = checkSource(`dim B, D, F
fn a(x: f32[B, D], y: f32[B, F]) -> f32[B, D] = x + y
fn b(x: f32[B, D]) -> f32[B] = sum(x, F)
fn c(x: f32[B, D]) -> f32[B, D] = x @ x
fn d(x: f32[B, D]) -> f32[B, D] = gelu(x)`);
    expect(r.errors.map((d) => `${d.span.line} ${d.code}`)).toEqual(["2 W0203", "3 W0205", "4 W0204"]);
  });

  it("an expression with an error does not cascade into its users", () => {
    const r = checkSource(`dim B, D
fn f(x: f32[B, D]) -> f32[B, D] {
  let y = nope(x)
  let z = y * 2 + sum(y, D)
  return z @ y
}`);
    expect(r.errors.map((d) => d.code)).toEqual(["W0101"]);
  });

  it("a parse error leaves the rest of the file checked", () => {
    const r = checkSource(`dim B, D
fn broken(x: f32[B, D]) -> f32[B, D] = x +
fn ok(x: f32[B, D]) -> f32[B] = sum(x, Q)`);
    expect(r.errors.some((d) => d.code.startsWith("W000"))).toBe(true);
    expect(r.errors.some((d) => d.code === "W0101" && d.span.line === 3)).toBe(true);
  });
});

describe("templates checked on their own (never called)", () => {
  const lin = `dim B, D, F
${LINEAR}
`;
  it("an instance's dims are unknowns: what fits some instance is accepted", () => {
    // l.I must be D and l.O must be D (or 1): Linear(D, D) fits
    const r = checkSource(`${lin}fn residual(x: f32[B, D], l: Linear) -> f32[B, D] = x + l(x)`);
    expect(r.report()).toBe("");
    expect(r.typeOf("l(x)")).toBe("f32[B, D]");
  });

  it("what fits no instance is an error in the template itself", () => {
    // l cannot take both f32[B, D] and f32[B, F]
    const r = checkSource(`${lin}fn both(x: f32[B, D], y: f32[B, F], l: Linear) -> f32[B, l.O] = l(x) + l(y)`);
    expect(r.errors.map((d) => `${d.span.line}:${d.span.col} ${d.code}`)).toEqual(["6:74 W0203"]);
    expect(r.errors[0].message).toBe("argument `x` of Linear's forward fn: expected f32[.., D], found f32[B, F]: dim F vs D (at dim 2 of 2)");
  });
});

