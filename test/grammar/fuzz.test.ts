// Fuzzing: the parser never throws, never hangs, and always returns a well-formed result,
// on random token soup and on mutated LANGUAGE.md examples.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse } from "../../grammar/index.ts";
import { lex } from "../../grammar/lexer.ts";
import { languageExamples } from "./fixtures.ts";
import { badSpans } from "./show.ts";

const keywords = "import as dim block param fn let var return for in if else train frozen repeat true false None from training".split(" ");
const punctuation = ["->", "..", ".", ",", ":", ";", "(", ")", "[", "]", "{", "}", "**", "*", "/", "%", "@", "+", "-", "==", "!=", "<=", ">=", "<", ">", "=", "!", "&&", "||"];
const atoms = ["x", "f32", "i32", "Layer", "_", "L", "3", "0.5", "1e-4", "2.5E+3", '"s"', '"a\\"b"', '"std/nn"'];
const oddities = ["//", "/*", "*/", "///", '"', "'", "#", "$", "&", "|", "\\", "é", "\t", "\r\n", "0..4", "1.", "\u0000"];
const vocabulary = [...keywords, ...punctuation, ...atoms, ...oddities];
const separator = fc.constantFrom(" ", "\n", "", "  ");

const examples = Object.values(languageExamples);
const CASES = Number(process.env.WEFT_FUZZ_CASES ?? 1000);
const BUDGET_MS = 2000;

/** Parses and checks the result; any failure names the input. */
function check(source: string): void {
  try {
    const t0 = performance.now();
    const { program, diagnostics } = parse(source, "fuzz.weft");
    const ms = performance.now() - t0;
    expect(ms, "time").toBeLessThan(BUDGET_MS);
    expect(program.kind).toBe("program");
    expect(badSpans(program, source), "node spans").toEqual([]);
    for (const d of diagnostics) {
      expect(["W0001", "W0002", "W0003", "W0004"]).toContain(d.code);
      expect(d.message.length).toBeGreaterThan(0);
      expect(d.span.start <= d.span.end && d.span.end <= source.length, `diagnostic span ${JSON.stringify(d.span)}`).toBe(true);
    }
  } catch (e) {
    throw new Error(`input ${JSON.stringify(source)}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type Mutation = { kind: "deleteChars" | "insertChars" | "duplicateChars" | "deleteToken" | "insertToken" | "duplicateToken"; at: number; size: number; text: string };

function mutate(source: string, m: Mutation): string {
  const pos = Math.floor(m.at * (source.length + 1));
  switch (m.kind) {
    case "deleteChars": return source.slice(0, pos) + source.slice(pos + m.size);
    case "insertChars": return source.slice(0, pos) + m.text + source.slice(pos);
    case "duplicateChars": return source.slice(0, pos + m.size) + source.slice(pos, pos + m.size) + source.slice(pos + m.size);
    default: {
      const tokens = lex(source).tokens;
      if (tokens.length === 0) return source;
      const t = tokens[Math.floor(m.at * tokens.length)];
      const start = t.startOffset;
      const end = start + t.image.length;
      if (m.kind === "deleteToken") return source.slice(0, start) + source.slice(end);
      if (m.kind === "duplicateToken") return source.slice(0, end) + " " + t.image + source.slice(end);
      return source.slice(0, start) + m.text + " " + source.slice(start);
    }
  }
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom("deleteChars", "insertChars", "duplicateChars", "deleteToken", "insertToken", "duplicateToken"),
  at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  size: fc.integer({ min: 1, max: 12 }),
  text: fc.constantFrom(...vocabulary),
});

describe("parser fuzzing", () => {
  it(`random token streams (${CASES} cases)`, () => {
    const stream = fc.array(fc.tuple(fc.constantFrom(...vocabulary), separator), { maxLength: 80 }).map((parts) => parts.map(([t, s]) => t + s).join(""));
    fc.assert(fc.property(stream, (source) => check(source)), { numRuns: CASES });
  });

  it(`mutated LANGUAGE.md examples (${CASES} cases)`, () => {
    const mutated = fc
      .tuple(fc.integer({ min: 0, max: examples.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 6 }))
      .map(([i, ms]) => ms.reduce(mutate, examples[i]));
    fc.assert(fc.property(mutated, (source) => check(source)), { numRuns: CASES });
  });

  it("pathological inputs", () => {
    for (const source of [
      "",
      "\n\n",
      "/*",
      '"',
      "///",
      "(".repeat(3000),
      "{".repeat(3000),
      "fn f() = " + "-".repeat(3000) + "x",
      "fn f() = " + "a + ".repeat(3000) + "b",
      "fn f() { " + "let a = 1\n".repeat(2000) + "}",
      "fn f(" + "x: f32, ".repeat(1000),
      examples.join("\n").repeat(5),
      "\u0000\uffff\ud800",
    ]) check(source);
  });
});
