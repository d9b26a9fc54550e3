// Tokenizers turn a JSONL string field into an i32 sequence (`batch.text`, with
// `batch.text_mask`), and `weft sample` turns ids back into text. Three kinds:
//   bytes  the UTF-8 bytes, vocabulary 256 — nothing to learn, nothing to save
//   chars  one id per Unicode code point seen in the training data, sorted (so the same
//          data always gives the same ids); saved beside checkpoints as tokenizer.json
//   bpe    GPT-2's byte-level BPE (r50k_base, 50257 ids) from the npm package
//          `gpt-tokenizer`, which ships its merge table: nothing is downloaded.
import { createRequire } from "node:module";

export type TokenizerKind = "bytes" | "chars" | "bpe";
export const TOKENIZERS: readonly TokenizerKind[] = ["bytes", "chars", "bpe"];

export class TokenizerError extends Error {
  override name = "TokenizerError";
}

/** What a tokenizer saves: enough to rebuild it without the data. */
export type TokenizerJson = { kind: "bytes" } | { kind: "chars"; chars: string[] } | { kind: "bpe"; encoding: "r50k_base" };

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  /** ids of `text`; throws TokenizerError naming a character outside the vocabulary */
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  toJSON(): TokenizerJson;
}

const utf8 = new TextEncoder();

export function bytesTokenizer(): Tokenizer {
  const dec = new TextDecoder("utf-8", { fatal: false });
  return {
    kind: "bytes",
    vocabSize: 256,
    encode: (text) => Array.from(utf8.encode(text)),
    decode: (ids) => dec.decode(Uint8Array.from(ids, (i) => i & 255)),
    toJSON: () => ({ kind: "bytes" }),
  };
}

export function charTokenizer(chars: readonly string[]): Tokenizer {
  const ids = new Map(chars.map((c, i) => [c, i]));
  if (ids.size !== chars.length) throw new TokenizerError("a character vocabulary lists a character twice");
  return {
    kind: "chars",
    vocabSize: chars.length,
    encode(text) {
      const out: number[] = [];
      for (const c of text) {
        const id = ids.get(c);
        if (id === undefined) throw new TokenizerError(`the character ${JSON.stringify(c)} (U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}) is not in the vocabulary built from the training data`);
        out.push(id);
      }
      return out;
    },
    decode: (xs) => xs.map((i) => chars[i] ?? "\uFFFD").join(""),
    toJSON: () => ({ kind: "chars", chars: [...chars] }),
  };
}

/** The character vocabulary of some texts: every code point, sorted by code point. */
export function charVocabulary(texts: Iterable<string>): string[] {
  const seen = new Set<string>();
  for (const t of texts) for (const c of t) seen.add(c);
  return [...seen].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
}

interface BpeModule {
  encode(text: string, opts?: { allowedSpecial?: Set<string>; disallowedSpecial?: Set<string> }): number[];
  decode(ids: Iterable<number>): string;
  vocabularySize: number;
}
let bpe: BpeModule | undefined;

/** GPT-2's BPE. The table (~1 MB of JS) is loaded on first use, synchronously. */
export function bpeTokenizer(): Tokenizer {
  // createRequire keeps the load synchronous: the compiler asks for a data file's fields
  // (and so its vocabulary size) in the middle of lowering, which is synchronous.
  bpe ??= createRequire(import.meta.url)("gpt-tokenizer/cjs/encoding/r50k_base") as BpeModule;
  const m = bpe;
  return {
    kind: "bpe",
    vocabSize: m.vocabularySize,
    // Special tokens in the data (`<|endoftext|>`) are text, not control tokens.
    encode: (text) => m.encode(text, { allowedSpecial: new Set(), disallowedSpecial: new Set() }),
    decode: (ids) => m.decode(ids),
    toJSON: () => ({ kind: "bpe", encoding: "r50k_base" }),
  };
}

export function tokenizerFromJson(j: unknown): Tokenizer {
  const o = j as Partial<Record<string, unknown>> | null;
  if (o && o.kind === "bytes") return bytesTokenizer();
  if (o && o.kind === "bpe") return bpeTokenizer();
  if (o && o.kind === "chars" && Array.isArray(o.chars) && o.chars.every((c) => typeof c === "string")) return charTokenizer(o.chars as string[]);
  throw new TokenizerError(`not a tokenizer description: ${JSON.stringify(j)?.slice(0, 60)}`);
}

/** A tokenizer by name; `chars` needs the texts its vocabulary is built from. */
export function makeTokenizer(kind: TokenizerKind, texts: () => Iterable<string>): Tokenizer {
  if (kind === "bytes") return bytesTokenizer();
  if (kind === "bpe") return bpeTokenizer();
  return charTokenizer(charVocabulary(texts()));
}
