import { compileJob } from "./bench/weft.ts";
import { TB } from "./bench/models.ts";
import { PORTABLE } from "./runtime/profile.ts";
const prof = { ...PORTABLE, kind: "cpu" as const, features: ["subgroups"], subgroupMinSize: 8 };
const { bundle } = compileJob("transformer.weft", "block_step", [{ name: "x", shape: [TB.T, TB.D], dtype: "f32" }], undefined, prof);
const k = bundle.kernels.find((k) => k.name === process.argv[2])!;
console.log(k.wgsl, k.params);
