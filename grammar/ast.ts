// The Weft abstract syntax tree. Every node carries a span; the parser is fault
// tolerant, so a tree may contain `ErrorExpr` / `ErrorStmt` where input was broken.

export interface Span {
  file: string;
  /** 0-based character offsets into the source, end exclusive. */
  start: number;
  end: number;
  /** 1-based line and column of `start`. */
  line: number;
  col: number;
  /** 1-based line and column of the position just after the last character. */
  endLine: number;
  endCol: number;
}

export interface Ident {
  kind: "ident";
  name: string;
  span: Span;
}

// ---------------------------------------------------------------- items

export type Item = ImportItem | DimItem | BlockItem | FnItem | TrainItem;

export interface Program {
  kind: "program";
  file: string;
  items: Item[];
  span: Span;
}

/** `import "std/nn"` or `import "./layers.weft" as L` */
export interface ImportItem {
  kind: "import";
  path: string;
  pathSpan: Span;
  alias?: Ident;
  span: Span;
  doc?: string;
}

/** `dim B, T = 64, D = 2*T` */
export interface DimItem {
  kind: "dim";
  decls: DimDecl[];
  span: Span;
  doc?: string;
}
export interface DimDecl {
  name: Ident;
  default?: Expr;
  span: Span;
}

/** `block Linear(I, O) { param w: f32[I, O] = glorot  ...  fn (x: f32[.., I]) -> f32[.., O] = x @ w }` */
export interface BlockItem {
  kind: "block";
  name: Ident;
  dims: Ident[];
  members: BlockMember[];
  span: Span;
  doc?: string;
}
export type BlockMember = ParamDecl | InstanceDecl | FnItem;

/** `param w: f32[I, O] = glorot` (init is an expression: `zeros`, `normal(0.02)`, ...) */
export interface ParamDecl {
  kind: "param";
  name: Ident;
  type: TypeExpr;
  init?: Expr;
  span: Span;
  doc?: string;
}
/** `ln = LayerNorm(D)`, `layers = repeat(L) Layer(D, F)`, `enc = frozen Enc(D)` */
export interface InstanceDecl {
  kind: "instance";
  name: Ident;
  value: Expr;
  span: Span;
  doc?: string;
}

/**
 * `fn name(params) -> T = expr` or `fn name(params) -> T { stmts }`.
 * Inside a block, the unnamed `fn (x: ...) -> ... = ...` is the forward (name undefined).
 * A signature with no body (`fn grad_match(g: f32[N, P], K = 16) -> i32[K]`) has body undefined.
 */
export interface FnItem {
  kind: "fn";
  name?: Ident;
  params: Param[];
  ret?: TypeExpr;
  body?: Expr | BlockStmt;
  span: Span;
  doc?: string;
}
export interface Param {
  name: Ident;
  type?: TypeExpr;
  default?: Expr;
  span: Span;
}

/** `train demo { model = Mlp(D) \n loss = ... }` — fields separated by newlines or commas. */
export interface TrainItem {
  kind: "train";
  name: Ident;
  fields: Field[];
  span: Span;
  doc?: string;
}
export interface Field {
  name: Ident;
  value: Expr;
  span: Span;
}

// ---------------------------------------------------------------- types

export type TypeExpr = TensorTypeExpr | NamedTypeExpr | TupleTypeExpr;

/** `f32` (scalar, dims undefined), `f32[B, T, D]`, `f32[.., I]`, `i32[_]`, `f32[2*D]` */
export interface TensorTypeExpr {
  kind: "tensorType";
  dtype: Ident; // f32 | f16 | i32 | bool — validated by the checker, not the parser
  dims?: DimExpr[];
  span: Span;
}
export type DimExpr = RestDim | InferDim | Expr;
/** `..` — any number of leading dims; in an index (`x[.., 0]`), every axis the other items do not address */
export interface RestDim {
  kind: "restDim";
  span: Span;
}
/** `_` — a dim to infer */
export interface InferDim {
  kind: "inferDim";
  span: Span;
}
/** A block type used as a parameter type: `a: Linear`, `layers: repeat Layer` */
export interface NamedTypeExpr {
  kind: "namedType";
  name: Ident;
  /** qualifier for imported names: `L.Linear` → qualifier L, name Linear */
  qualifier?: Ident;
  repeat: boolean;
  span: Span;
}
/** `(f32[B], f32[B])` */
export interface TupleTypeExpr {
  kind: "tupleType";
  items: TypeExpr[];
  span: Span;
}

// ---------------------------------------------------------------- statements

export type Stmt = LetStmt | VarStmt | AssignStmt | ForStmt | ReturnStmt | ExprStmt | ErrorStmt;

export interface BlockStmt {
  kind: "block";
  stmts: Stmt[];
  span: Span;
}
/** `let y = e`, `let y: f32[B] = e`, `let (a, b) = e` */
export interface LetStmt {
  kind: "let";
  target: Pattern;
  type?: TypeExpr;
  value: Expr;
  span: Span;
}
/** `var h = e` */
export interface VarStmt {
  kind: "var";
  target: Pattern;
  type?: TypeExpr;
  value: Expr;
  span: Span;
}
/** `h = e` (only to a `var`) */
export interface AssignStmt {
  kind: "assign";
  target: Ident;
  value: Expr;
  span: Span;
}
/** `for i in 0..L { ... }` */
export interface ForStmt {
  kind: "for";
  variable: Ident;
  start: Expr;
  end: Expr;
  body: BlockStmt;
  span: Span;
}
export interface ReturnStmt {
  kind: "return";
  value: Expr;
  span: Span;
}
/** An expression in statement position; the last one of a block is its value. */
export interface ExprStmt {
  kind: "exprStmt";
  expr: Expr;
  span: Span;
}
export interface ErrorStmt {
  kind: "errorStmt";
  span: Span;
}

export type Pattern = Ident | TuplePattern;
export interface TuplePattern {
  kind: "tuplePattern";
  items: Pattern[];
  span: Span;
}

// ---------------------------------------------------------------- expressions

export type Expr =
  | NumberLit
  | StringLit
  | BoolLit
  | NoneLit
  | Ident
  | BinaryExpr
  | UnaryExpr
  | CallExpr
  | MemberExpr
  | IndexExpr
  | IfExpr
  | ListExpr
  | TupleExpr
  | RecordExpr
  | RepeatExpr
  | FrozenExpr
  | FromExpr
  | ParenExpr
  | BlockExpr
  | ErrorExpr;

export interface NumberLit {
  kind: "number";
  value: number;
  /** true when written without '.', 'e' or 'E' (`3` vs `3.0`) */
  isInt: boolean;
  text: string;
  span: Span;
}
export interface StringLit {
  kind: "string";
  value: string;
  span: Span;
}
export interface BoolLit {
  kind: "bool";
  value: boolean;
  span: Span;
}
/** `None` — only meaningful inside an index, `x[:, None]` */
export interface NoneLit {
  kind: "none";
  span: Span;
}

export type BinaryOp =
  | "||" | "&&"
  | "==" | "!=" | "<" | "<=" | ">" | ">="
  | "+" | "-"
  | "*" | "/" | "%"
  | "@"
  | "**";

export interface BinaryExpr {
  kind: "binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
  opSpan: Span;
  span: Span;
}
export interface UnaryExpr {
  kind: "unary";
  op: "-" | "!";
  operand: Expr;
  span: Span;
}
export interface Arg {
  name?: Ident; // named argument `axis=T`
  value: Expr;
  span: Span;
}
export interface CallExpr {
  kind: "call";
  callee: Expr;
  args: Arg[];
  /** span of the `(...)` argument list */
  argsSpan: Span;
  span: Span;
}
/** `batch.src`, `model.decoder`, `L.Linear` */
export interface MemberExpr {
  kind: "member";
  object: Expr;
  name: Ident;
  span: Span;
}
export type IndexItem = Expr | SliceItem | RestDim;
/** `a:b:c` inside brackets; each part optional (`:`, `0:T-1`, `::2`) */
export interface SliceItem {
  kind: "slice";
  start?: Expr;
  end?: Expr;
  step?: Expr;
  span: Span;
}
/** `x[i]`, `x[:, 0:T-1]`, `x[:, None]`, `x[.., 0]`, `layers[i]` */
export interface IndexExpr {
  kind: "index";
  object: Expr;
  indices: IndexItem[];
  span: Span;
}
/** `if c { a } else if d { b } else { c }` as an expression */
export interface IfExpr {
  kind: "if";
  cond: Expr;
  then: BlockStmt;
  else?: BlockStmt | IfExpr;
  span: Span;
}
/** `[a, b]` */
export interface ListExpr {
  kind: "list";
  items: Expr[];
  span: Span;
}
/** `(a, b)` — two or more items */
export interface TupleExpr {
  kind: "tuple";
  items: Expr[];
  span: Span;
}
/** `{ every = 100, data = jsonl("valid.jsonl") }` */
export interface RecordExpr {
  kind: "record";
  fields: Field[];
  span: Span;
}
/** `repeat(L) Layer(D, F)` */
export interface RepeatExpr {
  kind: "repeat";
  count: Expr;
  body: Expr;
  span: Span;
}
/** `frozen Lm(V, D)` */
export interface FrozenExpr {
  kind: "frozen";
  body: Expr;
  span: Span;
}
/** `Lm(V, D) from "sft.safetensors"` */
export interface FromExpr {
  kind: "from";
  body: Expr;
  path: StringLit;
  span: Span;
}
/** `(e)` — kept so spans and the formatter see the parentheses */
export interface ParenExpr {
  kind: "paren";
  expr: Expr;
  span: Span;
}
/** `{ stmts; value }` used as an expression (the branches of `if` use BlockStmt directly) */
export interface BlockExpr {
  kind: "blockExpr";
  block: BlockStmt;
  span: Span;
}
/** Placeholder where the parser recovered from an error. */
export interface ErrorExpr {
  kind: "error";
  span: Span;
}
