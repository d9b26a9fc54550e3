// `weft fmt` on every .weft file of the repository and every code block of LANGUAGE.md:
// formatting is idempotent, keeps the tree (positions aside) and keeps every comment in
// order; and, with a comment put in every gap between two tokens of a program, it still is.
import { describe, expect, it } from "vitest";
import { format } from "../../compiler/format.ts";
import { parse } from "../../grammar/index.ts";
import { lex } from "../../grammar/lexer.ts";
import { languageBlocks, repoWeftFiles, stripPositions } from "./helpers.ts";

/** The comments of a Weft file, read independently of the formatter: strings skipped. */
function comments(source: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < source.length; ) {
    if (source[i] === '"') {
      i++;
      while (i < source.length && source[i] !== '"' && source[i] !== "\n") i += source[i] === "\\" ? 2 : 1;
      i++;
    } else if (source.startsWith("//", i)) {
      const end = source.indexOf("\n", i);
      out.push(source.slice(i, end < 0 ? source.length : end));
      i = end < 0 ? source.length : end;
    } else if (source.startsWith("/*", i)) {
      const end = source.indexOf("*/", i + 2) + 2;
      out.push(source.slice(i, end));
      i = end;
    } else i++;
  }
  return out.map((c) => c.replace(/\r/g, "").replace(/[ \t]+$/gm, ""));
}

function checkFormatting(name: string, source: string): string {
  const original = parse(source, name);
  const once = format(source, name);
  if (original.diagnostics.some((d) => d.severity === "error")) {
    // a broken file comes back as it is, with the parser's diagnostics
    expect(once.text).toBe(source);
    expect(once.diagnostics).toEqual(original.diagnostics);
    return once.text;
  }
  expect(once.diagnostics, once.diagnostics.map((d) => d.message).join("\n")).toEqual([]);
  const twice = format(once.text, name);
  expect(twice.text, "format(format(x)) == format(x)").toBe(once.text);
  const reparsed = parse(once.text, name);
  expect(reparsed.diagnostics).toEqual([]);
  expect(stripPositions(reparsed.program)).toEqual(stripPositions(original.program));
  expect(comments(once.text)).toEqual(comments(source));
  return once.text;
}

describe("weft fmt on the repository's .weft files", () => {
  const files = repoWeftFiles();
  it("finds them", () => {
    expect(files.size).toBeGreaterThan(15);
    expect([...files.keys()]).toContain("models/std/nn.weft");
  });
  for (const [path, source] of files) {
    it(`${path}: idempotent, same tree, same comments`, () => {
      const text = checkFormatting(path, source);
      if (text === source && parse(source, path).diagnostics.length) return;
      // the width is kept wherever the code can break (only comments and strings may overflow)
      const long = text.split("\n").filter((l) => l.length > 100 && !/\/\/|\/\*|"/.test(l));
      expect(long).toEqual([]);
      expect(text.endsWith("\n") && !text.endsWith("\n\n")).toBe(true);
      expect(text.split("\n").filter((l) => /[ \t]$/.test(l))).toEqual([]);
    });
  }
});

describe("weft fmt on LANGUAGE.md's code blocks", () => {
  for (const [name, source] of languageBlocks()) {
    it(`${name}: idempotent, same tree, same comments`, () => {
      checkFormatting(name, source);
    });
  }
});

// Every construct of the language, with awkward layout, for the comment test below.
const SAMPLE = `import "std/nn" as nn
dim B, T = 64, D = 2*T
block Model(V, D) {
  enc = frozen Enc(D) from "enc.safetensors"; layers = repeat(2) nn.Linear(D, D)
  param w: f32[D, D] = normal(0.02)
  fn (x: i32[B, T], h: repeat Layer) -> (f32[B, T, V], f32[B]) = (x, sum(x, T))
}
fn f(x: f32[B, .., D], y: f32[_], k = 2) -> f32[B] {
  let (a, b) = (x @ w + b, -y ** 2)
  var h: f32[B] = { let t = a * 2; t }
  for i in 0..len(h) - 1 { h = h + g(a[:, i, None], axis = T) }
  h = if training { x[1::2] } else if !ok { -h } else { h }
  return mean(h * (1 - h) / 3, B) >= 0 && true || None
}
fn sig(g: f32[N, P], K = 16) -> i32[K]
train job {
  model = Model(V, D), loss = f(model)
  eval = { every = 100, data = jsonl("v.jsonl") }
}
`;

describe("weft fmt keeps a comment put anywhere", () => {
  const tokens = lex(SAMPLE).tokens;
  const baseline = stripPositions(parse(SAMPLE, "sample.weft").program);
  const kinds: [string, (k: number) => string][] = [
    ["an end-of-line // comment", (k) => ` // c${k}\n`],
    ["an own-line // comment", (k) => `\n// c${k}\n`],
    ["an inline /* */ comment", (k) => ` /* c${k} */ `],
    ["own-line comments around a blank line", (k) => `\n/* c${k}\n   more */\n\n// d${k}\n`],
  ];
  for (const [what, make] of kinds) {
    it(`${what}, before each token`, () => {
      let tried = 0;
      for (let i = 0; i <= tokens.length; i++) {
        const at = i < tokens.length ? tokens[i].startOffset : SAMPLE.length;
        const source = SAMPLE.slice(0, at) + make(i) + SAMPLE.slice(at);
        const parsed = parse(source, "sample.weft");
        // a line break before `(`, `[` or `-` can start a new statement: such a spot is skipped
        if (parsed.diagnostics.length || JSON.stringify(stripPositions(parsed.program)) !== JSON.stringify(baseline)) continue;
        tried++;
        const once = format(source, "sample.weft");
        const where = `comment before token ${i} ('${tokens[i]?.image ?? "end of file"}')`;
        expect(once.diagnostics.map((d) => d.message), where).toEqual([]);
        expect(format(once.text, "sample.weft").text, `${where}: not idempotent`).toBe(once.text);
        expect(comments(once.text), where).toEqual(comments(source));
        expect(stripPositions(parse(once.text, "sample.weft").program), where).toEqual(baseline);
      }
      expect(tried).toBeGreaterThan(tokens.length / 2);
    });
  }
});
