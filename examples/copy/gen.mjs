// Generates the copy/reverse task: a source of 3–8 digits, and as target the digits
// reversed. Token ids: 0 padding, 1 BOS, 2 EOS, 3..12 the digits 0..9.
//   src  the digits
//   dec  BOS, then the reversed digits       (what the decoder reads)
//   out  the reversed digits, then EOS       (what it must predict, position by position)
// Seeded, so the files are reproducible. Run: node examples/copy/gen.mjs
import { writeFileSync } from "node:fs";

let s = 12345;
const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 16777216;
const BOS = 1, EOS = 2;
function record() {
  const n = 3 + Math.floor(rand() * 6);
  const src = Array.from({ length: n }, () => 3 + Math.floor(rand() * 10));
  const rev = [...src].reverse();
  return JSON.stringify({ src, dec: [BOS, ...rev], out: [...rev, EOS] });
}
const here = new URL(".", import.meta.url);
writeFileSync(new URL("train.jsonl", here), Array.from({ length: 2000 }, record).join("\n") + "\n");
writeFileSync(new URL("valid.jsonl", here), Array.from({ length: 128 }, record).join("\n") + "\n");
