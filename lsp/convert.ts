// Between the compiler's spans (offsets plus 1-based line/col, in UTF-16 units like LSP)
// and the protocol's ranges, and between file paths and URIs.
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as path from "node:path";
import type { Diagnostic as LspDiagnostic, DiagnosticRelatedInformation, Position, Range } from "vscode-languageserver";
import { DiagnosticSeverity, DiagnosticTag } from "vscode-languageserver";
import type { Span } from "../grammar/ast.ts";
import type { Diagnostic } from "../compiler/diagnostics.ts";
import { Code } from "../compiler/check/codes.ts";

export function toRange(s: Span): Range {
  return { start: { line: s.line - 1, character: s.col - 1 }, end: { line: s.endLine - 1, character: s.endCol - 1 } };
}


export function positionAt(text: string, offset: number): Position {
  let line = 0;
  let start = 0;
  for (let nl = text.indexOf("\n"); nl >= 0 && nl < offset; nl = text.indexOf("\n", nl + 1)) {
    line++;
    start = nl + 1;
  }
  return { line, character: offset - start };
}

/** Paths are what the compiler keys modules by; documents that are not files keep their URI. */
export function uriToPath(uri: string): string {
  return uri.startsWith("file:") ? path.normalize(fileURLToPath(uri)) : uri;
}

export function pathToUri(p: string): string {
  return path.isAbsolute(p) ? pathToFileURL(p).href : p;
}

const ERRORS_DOC = fileURLToPath(new URL("../docs/errors.md", import.meta.url));
let anchors: Map<string, string> | undefined;

/** The error index entry for a code: `docs/errors.md#w0101-unknown-name`. */
function docLink(code: string): string {
  if (!anchors) {
    anchors = new Map();
    let text = "";
    try {
      text = readFileSync(ERRORS_DOC, "utf8");
    } catch {
      // no docs next to the server: links go to the file
    }
    for (const m of text.matchAll(/^## (W\d{4})\b(.*)$/gm)) anchors.set(m[1], `${m[1]}${m[2]}`.trim().toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-"));
  }
  const anchor = anchors.get(code);
  return pathToFileURL(ERRORS_DOC).href + (anchor ? `#${anchor}` : "");
}

/** Extra data a diagnostic carries for code actions. */
export interface DiagnosticData {
  hint?: string;
}

export function toLspDiagnostic(d: Diagnostic, uriOf: (file: string) => string): LspDiagnostic {
  const related: DiagnosticRelatedInformation[] = (d.related ?? []).map((r) => ({ location: { uri: uriOf(r.span.file), range: toRange(r.span) }, message: r.message }));
  const data: DiagnosticData = d.hint ? { hint: d.hint } : {};
  const out: LspDiagnostic = {
    range: toRange(d.span),
    severity: d.severity === "error" ? DiagnosticSeverity.Error : d.severity === "warning" ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information,
    code: d.code,
    codeDescription: { href: docLink(d.code) },
    source: "weft",
    message: d.hint ? `${d.message}\nhint: ${d.hint}` : d.message,
    data,
  };
  if (related.length) out.relatedInformation = related;
  if (d.code === Code.Unused) out.tags = [DiagnosticTag.Unnecessary];
  return out;
}

/**
 * The diagnostics to show for a file. A name the parser had to invent (an empty name after
 * `m.` while typing) makes the checker report "no member ``"; with the syntax error already
 * shown, that report is noise.
 */
export function shownDiagnostics(ds: readonly Diagnostic[], file: string): Diagnostic[] {
  const own = ds.filter((d) => d.span.file === file);
  const syntax = own.some((d) => /^W000[1-4]$/.test(d.code));
  return syntax ? own.filter((d) => !d.message.includes("``")) : own;
}
