// Diagnostic codes of the module loader and the checker. docs/errors.md explains each one
// with an example; a test keeps the two in step.

export const Code = {
  // W00xx: syntax (the parser's own codes are W0001–W0004; this one is for the
  // lowering meeting a piece of the tree the parser could not build)
  ParseError: "W0001",

  // W01xx: names, resolution, imports
  UnknownName: "W0101",
  UnknownMember: "W0102",
  Duplicate: "W0103",
  ImportNotFound: "W0104",
  ImportCycle: "W0105",
  Recursion: "W0106",
  UnknownDim: "W0107",
  NotABlock: "W0108",
  Ambiguous: "W0109",
  UnknownDimOverride: "W0110",

  // W02xx: types and shapes
  DtypeMismatch: "W0201",
  RankMismatch: "W0202",
  DimMismatch: "W0203",
  MatmulInner: "W0204",
  Axis: "W0205",
  Arity: "W0206",
  UnknownNamedArg: "W0207",
  MissingArg: "W0208",
  BadInit: "W0209",
  Annotation: "W0210",
  TypeMismatch: "W0211",
  NotCompileTime: "W0212",
  Assign: "W0213",
  Index: "W0214",
  Reshape: "W0215",
  Grad: "W0216",
  InstanceHere: "W0217",
  UnknownDtype: "W0218",
  NoValue: "W0219",
  Instantiation: "W0220",
  NotCallable: "W0221",

  // W03xx: train jobs
  TrainField: "W0301",
  TrainMissing: "W0302",
  TrainValue: "W0303",
  UnknownOptimizer: "W0304",
  OptimizerArg: "W0305",
  Loss: "W0306",

  // W04xx: warnings
  Unused: "W0401",
  Shadow: "W0402",
  DimShadow: "W0403",

  Internal: "W0999",
} as const;

export type CodeName = keyof typeof Code;
