// Data: JSONL fields → batch.<field>; text through a tokenizer; integer sequences padded
// with masks; and errors that name the file and line (or the job's field).
import { describe, expect, it, afterAll } from "vitest";
import { DataError, evalBatches, readJsonl } from "../../runtime/data.ts";
import { bpeTokenizer, bytesTokenizer, charTokenizer, charVocabulary, tokenizerFromJson, TokenizerError } from "../../runtime/tokenize.ts";
import { cleanup, LINREG, lowerError, lowerFile, writeJob } from "./helpers.ts";

afterAll(cleanup);

const texts = ["Hello, world!", "naïve café — 東京 🙂", "", "tab\tand\nnewline", "<|endoftext|> is text here"];

describe("tokenizers round-trip", () => {
  it("bytes: UTF-8, vocabulary 256", () => {
    const t = bytesTokenizer();
    expect(t.vocabSize).toBe(256);
    expect(t.encode("é")).toEqual([0xc3, 0xa9]);
    for (const s of texts) expect(t.decode(t.encode(s))).toBe(s);
  });

  it("chars: the sorted code points of the data; an unknown character is an error", () => {
    const vocab = charVocabulary(texts);
    expect(vocab).toEqual([...new Set(texts.join(""))].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    expect(vocab).toContain("🙂"); // a code point, not a UTF-16 half
    const t = charTokenizer(vocab);
    for (const s of texts) expect(t.decode(t.encode(s))).toBe(s);
    expect(() => t.encode("Z")).toThrow(TokenizerError);
    expect(() => t.encode("Z")).toThrow(/'?"Z"'? \(U\+005A\) is not in the vocabulary/);
    expect(tokenizerFromJson(JSON.parse(JSON.stringify(t.toJSON()))).encode("Hello")).toEqual(t.encode("Hello"));
  });

  it("bpe: GPT-2's r50k_base from gpt-tokenizer (no download), with its known ids", () => {
    const t = bpeTokenizer();
    expect(t.vocabSize).toBe(50257);
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    for (const s of texts) expect(t.decode(t.encode(s))).toBe(s);
    expect(tokenizerFromJson({ kind: "bpe", encoding: "r50k_base" }).encode(" the")).toEqual([262]);
  });
});

describe("reading JSONL", () => {
  it("text through a tokenizer becomes padded ids and a mask", () => {
    const d = readJsonl("t.jsonl", { text: '{"s": "abc"}\n{"s": "ba"}\n', tokenizer: "chars" });
    expect(d.fields).toEqual([
      { name: "s", shape: [3], dtype: "i32", mask: "s_mask", vocab: 3 },
      { name: "s_mask", shape: [3], dtype: "f32" },
    ]);
    expect([...d.columns.get("s")!]).toEqual([0, 1, 2, 1, 0, 0]);
    expect([...d.columns.get("s_mask")!]).toEqual([1, 1, 1, 1, 1, 0]);
    expect(d.tokenizer?.decode([2, 1, 0])).toBe("cba");
  });

  it("integer lists of different lengths are padded to `pad`, with a mask", () => {
    const d = readJsonl("t.jsonl", { text: '{"src": [5, 6, 7], "y": 1}\n{"src": [8], "y": 0}\n', pad: 4 });
    expect(d.fields.map((f) => [f.name, f.shape, f.dtype])).toEqual([
      ["src", [4], "i32"],
      ["src_mask", [4], "f32"],
      ["y", [], "i32"],
    ]);
    expect([...d.columns.get("src")!]).toEqual([5, 6, 7, 0, 8, 0, 0, 0]);
    expect([...d.columns.get("src_mask")!]).toEqual([1, 1, 1, 0, 1, 0, 0, 0]);
  });

  it("a sequence longer than the declared length names the line", () => {
    expect(() => readJsonl("t.jsonl", { text: '{"s": "ab"}\n\n{"s": "abcde"}\n', tokenizer: "bytes", pad: 4 })).toThrow("t.jsonl:3: field s has 5 tokens, more than the declared length 4 (pad = 4)");
  });

  it("an evaluation set reuses the training set's vocabulary and length", () => {
    const train = readJsonl("train.jsonl", { text: '{"s": "abc"}\n{"s": "b"}\n', tokenizer: "chars" });
    const ev = readJsonl("valid.jsonl", { text: '{"s": "cab"}\n', like: train });
    expect([...ev.columns.get("s")!]).toEqual([2, 0, 1]);
    expect(() => readJsonl("valid.jsonl", { text: '{"s": "ab"}\n{"s": "abca"}\n', like: train })).toThrow("valid.jsonl:2: field s has 4 tokens, more than 3, the longest in the training data");
    expect(() => readJsonl("valid.jsonl", { text: '{"s": "ax"}\n', like: train })).toThrow(/valid\.jsonl:1: field s: the character "x"/);
  });

  it("errors: a missing file, a malformed line, text without a tokenizer", () => {
    expect(() => readJsonl("/no/such/file.jsonl")).toThrow("cannot read data file /no/such/file.jsonl: no such file");
    expect(() => readJsonl("d.jsonl", { text: '{"x": 1}\n{"x": \n' })).toThrow(/^d\.jsonl:2: not valid JSON/);
    expect(() => readJsonl("d.jsonl", { text: '{"x": 1}\n{"x": [1, 2]}\n' })).toThrow("d.jsonl:2: field x has shape [2], but [] on line 1");
    expect(() => readJsonl("d.jsonl", { text: '{"s": "hi"}\n' })).toThrow(DataError);
    expect(() => readJsonl("d.jsonl", { text: '{"s": "hi"}\n' })).toThrow('d.jsonl:1: field s holds text; give the job a tokenizer: jsonl("...", tokenizer = "chars")');
  });

  it("evaluation batches cover the set in file order, wrapping the last", () => {
    const d = readJsonl("d.jsonl", { text: [1, 2, 3, 4, 5].map((x) => `{"x": ${x}}`).join("\n") });
    expect(evalBatches(d, 2).map((b) => [...b.get("x")!])).toEqual([[1, 2], [3, 4], [5, 1]]);
  });
});

describe("data in a train job", () => {
  const lm = (data: string, dims = "dim B, T, V, D = 8") => `import "std/nn"
${dims}
block Tiny(V, D) {
  param table: f32[V, D] = normal(0.1)
  head = Linear(D, V)
  fn (ids: i32[B, T]) -> f32[B, T, V] = head(gather(table, ids, 0))
}
train lm {
  model = Tiny(V, D)
  loss = mean(cross_entropy(model(batch.text), batch.text))
  data = ${data}
  batch = 2
  steps = 1
}
`;
  const TEXT = '{"text": "hello"}\n{"text": "help"}\n';

  it("vocab = V takes the tokenizer's size; pad = T sets the length", () => {
    const j = lowerFile(writeJob(lm('jsonl("t.jsonl", tokenizer = "chars", vocab = V, pad = T)', "dim B, T = 6, V, D = 8"), { "t.jsonl": TEXT }));
    expect(j.lowered.lowering.boundDims().get("V")).toBe(5); // e h l o p
    expect(j.lowered.job.spec.params.find((p) => p.path === "model.table")!.shape).toEqual([5, 8]);
    expect(j.lowered.job.spec.fields.map((f) => [f.input, f.dtype])).toEqual([
      ["batch.text", "i32"],
      ["batch.text_mask", "f32"],
    ]);
    expect(j.lowered.graph.type(j.lowered.graph.sources.get("batch.text")!).shape).toEqual([2, 6]);
  });

  it("a dim that disagrees with the tokenizer is an error at the jsonl call", () => {
    const msg = lowerError(writeJob(lm('jsonl("t.jsonl", tokenizer = "bytes", vocab = V)', "dim B, T, V = 100, D = 8"), { "t.jsonl": TEXT }));
    expect(msg).toContain("dim V is 100, but the bytes tokenizer has 256 ids");
  });

  it("a field the data does not have is named with the data file and its fields", () => {
    const src = lm('jsonl("t.jsonl", tokenizer = "bytes", vocab = V)').replace("cross_entropy(model(batch.text), batch.text)", "cross_entropy(model(batch.txt), batch.text)");
    const msg = lowerError(writeJob(src, { "t.jsonl": TEXT }));
    expect(msg).toMatch(/t\.jsonl has no field 'txt' \(its fields: text, text_mask\)/);
    expect(msg).toContain("batch.text");
  });

  it("an unknown tokenizer or jsonl setting is an error", () => {
    expect(lowerError(writeJob(lm('jsonl("t.jsonl", tokenizer = "words")'), { "t.jsonl": TEXT }))).toContain('tokenizer is one of "bytes", "chars", "bpe"');
    expect(lowerError(writeJob(lm('jsonl("t.jsonl", shuffle = 1)'), { "t.jsonl": TEXT }))).toContain("jsonl takes a file and the settings tokenizer, pad, vocab");
  });

  it("numbers and fixed arrays keep their shapes (the linear-regression data)", () => {
    const d = readJsonl("linreg.jsonl", { text: LINREG });
    expect(d.fields).toEqual([
      { name: "x", shape: [3], dtype: "f32" },
      { name: "y", shape: [2], dtype: "f32" },
    ]);
  });
});
