// Importing this module registers every primitive.
import "./elementwise.ts";
import "./structural.ts";
import "./indexing.ts";
import "./scan.ts";
import "./random.ts";
import "./special.ts";
import "./select.ts";
import { allOps, type OpDef } from "./registry.ts";
import type { RefTensor } from "../../runtime/reference/tensor.ts";
import type { Attrs, TensorType } from "../ir/graph.ts";

export { getOp, allOps, defineOp, OpTypeError } from "./registry.ts";
export type { OpDef, Lowering, ExprContext, VjpArgs } from "./registry.ts";

export type Evaluate = (inputs: readonly RefTensor[], attrs: Attrs, out: TensorType) => RefTensor;

/** The float64 evaluation of every primitive, for the reference interpreter. */
export function evaluators(): Map<string, Evaluate> {
  return new Map(allOps().map((op: OpDef) => [op.name, op.evaluate]));
}
