// Builds train.jsonl and valid.jsonl from sonnets.txt: windows of T+1 = 65 characters
// (the model reads 64 and predicts each next one), every 16 characters; the last
// sonnet is held out for evaluation. Run: node examples/charlm/gen.mjs
import { readFileSync, writeFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const text = readFileSync(new URL("sonnets.txt", here), "utf8");
const split = text.lastIndexOf("\nCXXX\n");
const windows = (s, len, stride) => {
  const out = [];
  for (let i = 0; i < s.length - 1; i += stride) out.push(s.slice(i, i + len));
  return out;
};
const lines = (xs) => xs.map((t) => JSON.stringify({ text: t })).join("\n") + "\n";
writeFileSync(new URL("train.jsonl", here), lines(windows(text.slice(0, split), 65, 16)));
writeFileSync(new URL("valid.jsonl", here), lines(windows(text.slice(split), 65, 32)));
