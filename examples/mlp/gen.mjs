// Generates the MLP example's data: points on three interleaved spirals, labelled by
// spiral, with a little noise. Deterministic (fixed seed), so the file can be regenerated.
//   node examples/mlp/gen.mjs > examples/mlp/train.jsonl
let s = 12345;
const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
const lines = [];
const perClass = 200;
for (let c = 0; c < 3; c++) {
  for (let i = 0; i < perClass; i++) {
    const r = i / perClass;
    const t = c * 4 + r * 4 + (rand() - 0.5) * 0.4;
    const x = [r * Math.sin(t), r * Math.cos(t)].map((v) => Math.round(v * 1e4) / 1e4);
    lines.push(JSON.stringify({ x, y: c }));
  }
}
process.stdout.write(lines.join("\n") + "\n");
