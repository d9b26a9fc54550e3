import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { parse } from "./grammar/index.ts";
import { IncrementalParser } from "./lsp/incremental.ts";
function weftFiles(dir: string): string[] { return readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? (e.name === "node_modules" || e.name.startsWith(".") ? [] : weftFiles(join(dir, e.name))) : e.name.endsWith(".weft") ? [join(dir, e.name)] : []); }
const files = weftFiles(".").map((f) => ({ name: f, text: readFileSync(f, "utf8") }));
const show = (r: unknown) => JSON.stringify(r);
const alphabet = ["a", "x", " ", "\n", "{", "}", "(", ")", "[", "]", '"', "/", "*", ",", "=", "+", "fn ", "let ", "block ", "dim ", "///", "1", "\nfn g() -> f32 = 1.0\n", "\n/// d\n", "import ", "train t {", ":", "."];
const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 5 }), ins: fc.constantFrom(...alphabet) });
let whole = 0, total = 0;
for (const seed of (process.argv[2] ?? "1,2,3,4,5,6").split(",").map(Number)) {
  const r = fc.check(fc.property(fc.constantFrom(...files), fc.array(edit, { minLength: 1, maxLength: 10 }), (file, edits) => {
    const inc = new IncrementalParser(file.name); let text = file.text; inc.parse(text);
    for (const e of edits) { const at = e.at % (text.length + 1); text = text.slice(0, at) + e.ins + text.slice(at + e.del); const got = inc.parse(text); total++; if (inc.stats.parsed === inc.stats.chunks && inc.stats.chunks > 1) whole++; if (show(got) !== show(parse(text, file.name))) return false; }
    return true; }), { numRuns: 300, seed });
  console.log("seed", seed, r.failed ? "FAILED " + JSON.stringify(r.counterexample).slice(0, 300) + " ... " + JSON.stringify(r.counterexample?.[1]) : "ok");
}
console.log("full reparses", whole, "of", total);
