// The VS Code extension's TextMate grammar, run by the same engine VS Code uses
// (vscode-textmate + vscode-oniguruma). Every `.weft` file in the repository is tokenised and
// compared with Weft's own lexer and parser: each keyword, number, comment and dim must get
// the expected scope.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import textmate from "vscode-textmate";
import oniguruma from "vscode-oniguruma";
import { parse } from "../../grammar/index.ts";
import * as T from "../../grammar/lexer.ts";
import { ROOT } from "./client.ts";
import { walk } from "../../lsp/syntax.ts";
import type { TensorTypeExpr } from "../../grammar/ast.ts";

const require = createRequire(import.meta.url);
const GRAMMAR = join(ROOT, "lsp/vscode/syntaxes/weft.tmLanguage.json");

async function loadGrammar(): Promise<textmate.IGrammar> {
  const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({ createOnigScanner: (p: string[]) => new oniguruma.OnigScanner(p), createOnigString: (s: string) => new oniguruma.OnigString(s) }),
    loadGrammar: async (scope: string) => (scope === "source.weft" ? textmate.parseRawGrammar(readFileSync(GRAMMAR, "utf8"), GRAMMAR) : null),
  });
  const g = await registry.loadGrammar("source.weft");
  if (!g) throw new Error("grammar did not load");
  return g;
}

/** The scopes of every character of `text`, by offset. */
function scopesOf(g: textmate.IGrammar, text: string): string[][] {
  const out: string[][] = [];
  let rule = textmate.INITIAL;
  for (const line of text.split("\n")) {
    const r = g.tokenizeLine(line, rule);
    for (const t of r.tokens) for (let i = t.startIndex; i < Math.min(t.endIndex, line.length); i++) out.push(t.scopes);
    out.push(["(newline)"]);
    rule = r.ruleStack;
  }
  return out;
}

function weftFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? (e.name === "node_modules" || e.name.startsWith(".") ? [] : weftFiles(join(dir, e.name))) : e.name.endsWith(".weft") ? [join(dir, e.name)] : [],
  );
}

const KEYWORDS = new Set(["Import", "As", "Dim", "Block", "Param", "Fn", "Let", "Var", "Return", "For", "In", "If", "Else", "Train", "Frozen", "Repeat"]);
const CONSTANTS = new Set(["True", "False", "None"]);

/** What the lexer and parser say each position is: the scope prefix the grammar must give it. */
function expectations(text: string, file: string): { at: number; what: string; scope: string }[] {
  const out: { at: number; what: string; scope: string }[] = [];
  const lexed = T.lex(text);
  const covered = new Uint8Array(text.length);
  for (const t of [...lexed.tokens, ...lexed.docs]) covered.fill(1, t.startOffset, t.startOffset + t.image.length);
  for (const t of lexed.tokens) {
    const name = t.tokenType.name;
    if (KEYWORDS.has(name)) out.push({ at: t.startOffset, what: t.image, scope: "keyword." });
    else if (CONSTANTS.has(name)) out.push({ at: t.startOffset, what: t.image, scope: "constant.language." });
    else if (name === "NumberLit") out.push({ at: t.startOffset, what: t.image, scope: "constant.numeric." });
  }
  for (const d of lexed.docs) out.push({ at: d.startOffset, what: d.image, scope: "comment.line.documentation." });
  // what no token covers and is not blank is a comment
  for (let i = 0; i < text.length; i++) if (!covered[i] && !/\s/.test(text[i])) out.push({ at: i, what: text.slice(i, i + 10), scope: "comment." });
  // dims: declared by `dim`, a block's constructor dims, and names inside tensor annotations
  const { program } = parse(text, file);
  for (const item of program.items) {
    if (item.kind === "dim") for (const d of item.decls) out.push({ at: d.name.span.start, what: d.name.name, scope: "entity.name.type.dim." });
    if (item.kind === "block") for (const d of item.dims) out.push({ at: d.span.start, what: d.name, scope: "entity.name.type.dim." });
  }
  for (const n of walk(program)) {
    if (!("kind" in n) || n.kind !== "tensorType") continue;
    for (const d of (n as TensorTypeExpr).dims ?? []) {
      if (d.kind === "call") continue; // sizeof(m.head): not dims inside
      for (const x of walk(d)) if ("kind" in x && x.kind === "ident" && "name" in x) out.push({ at: x.span.start, what: String(x.name), scope: "entity.name.type.dim." });
    }
  }
  return out;
}

describe("TextMate grammar", async () => {
  const grammar = await loadGrammar();
  const files = weftFiles(ROOT);

  it("finds the repository's .weft files", () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  it.each(files.map((f) => [f.slice(ROOT.length + 1), f]))("scopes keywords, dims, numbers and comments in %s", (_, file) => {
    const text = readFileSync(file, "utf8");
    const scopes = scopesOf(grammar, text);
    const wrong = expectations(text, file)
      .filter((e) => !scopes[e.at]?.some((s) => s.startsWith(e.scope)))
      .map((e) => `${e.what} @${e.at}: wanted ${e.scope}*, got ${scopes[e.at]?.join(" ")}`);
    expect(wrong).toEqual([]);
  });

  it("scopes the forms of a small program", () => {
    const text = `/* block
comment */ import "std/nn" as nn
dim B, T = 64, D = 2*T
block L(I, O) { param w: f32[I, O] = glorot }
fn f(x: f32[.., I], k = 1e-4) -> f32[_] = flatten(x) // done
`;
    const scopes = scopesOf(grammar, text);
    const at = (s: string, nth = 0) => {
      let i = -1;
      for (let k = 0; k <= nth; k++) i = text.indexOf(s, i + 1);
      return scopes[i].slice(1).join(" ");
    };
    expect(at("comment */")).toBe("comment.block.weft");
    expect(at('"std/nn"')).toBe("string.quoted.double.weft punctuation.definition.string.begin.weft");
    expect(at("nn", 1)).toBe("variable.other.weft");
    expect(at("T", 1)).toBe("entity.name.type.dim.weft");
    expect(at("64")).toBe("constant.numeric.integer.weft");
    expect(at("1e-4")).toBe("constant.numeric.float.weft");
    expect(at("L(")).toBe("entity.name.type.class.weft");
    expect(at("f32")).toBe("support.type.primitive.weft");
    expect(at("..")).toBe("keyword.operator.rest.weft");
    expect(at("_]")).toBe("entity.name.type.dim.infer.weft");
    expect(at("flatten")).toBe("support.function.builtin.weft");
    expect(at("f(")).toBe("entity.name.function.weft");
    expect(at("// done")).toBe("comment.line.double-slash.weft");
  });
});
