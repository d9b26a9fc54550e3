// `map(f, args…, over=N)`: f is lowered ONCE, on one example, into a graph of its own,
// and the batching transform (compiler/autodiff/batch.ts) turns that graph into nodes of
// the program's graph that compute all N examples at once. So the graph of a map does not
// grow with N, and grad inside f (per-example gradients) is one batched graph.
//
// In the per-example graph every tensor f can see from outside — a sliced argument, an
// unsliced one, a parameter of an instance passed in — is a placeholder source that
// stands for its value in the program's graph (sliced arguments: batched along the
// mapped axis; the rest: unbatched, computed once).
import type { Span } from "../../grammar/ast.ts";
import { Code } from "../check/codes.ts";
import { Graph, type SourceRole } from "../ir/graph.ts";
import { batchGraph, type Batched } from "../autodiff/batch.ts";
import type { Lowering } from "./lower.ts";
import { describe, type Instance, type TensorValue, type Value } from "./values.ts";

/** Names placeholders apart across nested maps (they never reach the program's graph). */
let maps = 0;

export function lowerMap(l: Lowering, f: Value, args: readonly Value[], over: { value: number; label: string }, span: Span, fSpan: Span): Value {
  const n = over.value;
  const mapped = args.map((a) => (a.kind === "tensor" ? a.labels.indexOf(over.label) : -1));
  if (mapped.every((m) => m < 0)) l.fail(span, `no argument of map has an axis named ${over.label}`, Code.TypeMismatch, "annotate the arguments' types so their axes have names");
  if (f.kind !== "fn" && f.kind !== "instance") return l.fail(fSpan, `map applies a fn or an instance, found ${describe(f)}`, Code.TypeMismatch);

  const outer = l.g;
  const sub = new Graph();
  const env = new Map<number, Batched>();
  const prefix = `%map${maps++}`;
  let count = 0;
  const placeholder = (id: number, bdim: number | null): number => {
    const node = outer.node(id);
    const t = node.type;
    const role = node.op === "input" || node.op === "param" || node.op === "state" ? (node.op as SourceRole) : undefined;
    // An unsliced source keeps its name, so that f's own uses of it (the training step
    // that keys dropout) are the same node.
    const p = bdim === null && role
      ? sub.source(role, String(node.attrs.name), t)
      : sub.source(role === "input" ? "input" : "param", `${prefix}.${count++}`, { shape: t.shape.filter((_, k) => k !== bdim), dtype: t.dtype });
    env.set(p, { id, bdim });
    return p;
  };
  const whole = new Map<number, number>();
  const instances = new Map<Instance, Instance>();
  const importInstance = (inst: Instance): Instance => {
    const hit = instances.get(inst);
    if (hit) return hit;
    const copy: Instance = { ...inst, members: new Map() };
    instances.set(inst, copy);
    for (const [k, m] of inst.members) copy.members.set(k, importValue(m));
    return copy;
  };
  const importValue = (v: Value): Value => {
    switch (v.kind) {
      case "tensor": {
        let p = whole.get(v.id);
        if (p === undefined) whole.set(v.id, (p = placeholder(v.id, null)));
        return { kind: "tensor", id: p, labels: v.labels };
      }
      case "tuple":
      case "list":
        return { ...v, items: v.items.map(importValue) };
      case "record":
        return { ...v, fields: new Map([...v.fields].map(([k, x]) => [k, importValue(x)])) };
      case "instance":
        return { kind: "instance", inst: importInstance(v.inst) };
      case "instances":
        return { kind: "instances", items: v.items.map(importInstance) };
      case "fn":
        return v.self ? { ...v, self: importInstance(v.self) } : v;
      default:
        return v;
    }
  };

  // Lower f on one example.
  const leaves: TensorValue[] = [];
  const result = l.within(sub, () => {
    const xs = args.map((a, i): Value => {
      const ax = mapped[i];
      if (ax < 0 || a.kind !== "tensor") return importValue(a);
      return { kind: "tensor", id: placeholder(a.id, ax), labels: a.labels.filter((_, k) => k !== ax) };
    });
    const r = f.kind === "fn"
      ? l.callFn(f.fn, f.module, f.self ? l.instanceScope(importInstance(f.self)) : undefined, xs, new Map(), span)
      : l.callInstance(importInstance(f.inst), xs, new Map(), span);
    const collect = (v: Value): Value => {
      if (v.kind === "tuple" || v.kind === "list") return { ...v, items: v.items.map(collect) };
      if (v.kind === "record") return { ...v, fields: new Map([...v.fields].map(([k, x]) => [k, collect(x)])) };
      if (v.kind !== "tensor" && v.kind !== "number" && v.kind !== "bool") l.fail(span, `map: the fn must return tensors (or tuples of them), found ${describe(v)}`, Code.TypeMismatch);
      const t = l.tensor(v, span);
      leaves.push(t);
      return t;
    };
    return collect(r);
  });

  // Batch it into the program's graph: one batched node per node of f.
  const ids = batchGraph(sub, l.g, env, leaves.map((t) => t.id), n);
  const out = new Map(leaves.map((t, i) => [t, ids[i]]));
  const rebuild = (v: Value): Value => {
    if (v.kind === "tuple" || v.kind === "list") return { ...v, items: v.items.map(rebuild) };
    if (v.kind === "record") return { ...v, fields: new Map([...v.fields].map(([k, x]) => [k, rebuild(x)])) };
    const t = v as TensorValue;
    return { kind: "tensor", id: out.get(t)!, labels: [over.label, ...t.labels] };
  };
  return rebuild(result);
}
