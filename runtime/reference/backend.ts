// The reference back end: the float64 interpreter behind the Backend interface. Params
// and state persist between runs; `updates` replace them after each run, as the GPU
// bundle's copies do.
import type { Backend, HostArray } from "../backend.ts";
import { interpret, type RefGraph, type RefNode } from "./interpret.ts";
import type { RefTensor } from "./tensor.ts";
import { roundF16 } from "../f16.ts";

export type Evaluators = ReadonlyMap<string, (inputs: readonly RefTensor[], attrs: RefNode["attrs"], out: RefNode["type"]) => RefTensor>;

export interface RefProgram extends RefGraph {
  /** source name → node id of every input, param and state */
  readonly sources: ReadonlyMap<string, number>;
}

export class ReferenceBackend implements Backend {
  readonly name = "reference (CPU, float64)";
  private readonly values = new Map<string, RefTensor>();

  constructor(
    private readonly program: RefProgram,
    private readonly evaluate: Evaluators,
    private readonly updates: ReadonlyMap<string, number> = new Map(),
  ) {}

  write(name: string, data: HostArray): void {
    const id = this.program.sources.get(name);
    if (id === undefined) throw new Error(`the program has no input, parameter or state named '${name}'`);
    const shape = this.program.nodes[id].type.shape;
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`'${name}' needs ${n} values, got ${data.length}`);
    // an f16 source holds halves, as it would on the device
    const values = Float64Array.from(data);
    this.values.set(name, { shape: [...shape], data: this.program.nodes[id].type.dtype === "f16" ? roundF16(values) : values });
  }

  async run(read: readonly string[] = []): Promise<Map<string, HostArray>> {
    const outputs = new Map<string, number>(this.program.outputs);
    for (const [name, id] of this.updates) outputs.set(`\u0000update:${name}`, id);
    const res = interpret({ nodes: this.program.nodes, outputs }, this.values, this.evaluate);
    const out = new Map<string, HostArray>();
    for (const name of read) {
      const v = res.get(name) ?? this.values.get(name);
      if (!v) throw new Error(`nothing named '${name}' to read`);
      out.set(name, v.data.slice());
    }
    for (const name of this.updates.keys()) this.values.set(name, res.get(`\u0000update:${name}`)!);
    return out;
  }

  async read(names: readonly string[]): Promise<Map<string, HostArray>> {
    const out = new Map<string, HostArray>();
    for (const n of names) {
      const v = this.values.get(n);
      if (!v) throw new Error(`nothing named '${n}' to read`);
      out.set(n, v.data.slice());
    }
    return out;
  }

  destroy(): void {
    this.values.clear();
  }
}
