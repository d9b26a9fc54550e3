// Diagnostics: the one way a stage reports a problem with the user's program.
// Stages never throw on user input; they collect Diagnostics. A thrown `InternalError`
// is a compiler bug and is reported as such.
import type { Span } from "../grammar/ast.ts";

export type Severity = "error" | "warning" | "info";

export interface Related {
  span: Span;
  message: string;
}

export interface Diagnostic {
  /** Stable code, `W0xxx` (see docs/errors.md). */
  code: string;
  severity: Severity;
  span: Span;
  message: string;
  hint?: string;
  related?: Related[];
}

export class InternalError extends Error {
  override name = "InternalError";
}

/** Thrown inside a stage to abandon the current construct; caught at a recovery point. */
export class UserError extends Error {
  constructor(readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

export function error(code: string, span: Span, message: string, extra: { hint?: string; related?: Related[] } = {}): Diagnostic {
  return { code, severity: "error", span, message, ...extra };
}

export function warning(code: string, span: Span, message: string, extra: { hint?: string; related?: Related[] } = {}): Diagnostic {
  return { code, severity: "warning", span, message, ...extra };
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === "error");
}

/** A span for things that have no source location (CLI flags, generated code). */
export function noSpan(file = "<command line>"): Span {
  return { file, start: 0, end: 0, line: 1, col: 1, endLine: 1, endCol: 1 };
}

/** `file:line:col: error[W0101]: message` plus the source line, a caret and the hint. */
export function formatDiagnostic(d: Diagnostic, source?: string, color = false): string {
  const c = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === "error" ? c("1;31", "error") : d.severity === "warning" ? c("1;33", "warning") : c("1;36", "info");
  const head = `${d.span.file}:${d.span.line}:${d.span.col}: ${sev}[${d.code}]: ${d.message}`;
  const lines = [head];
  if (source !== undefined) {
    const srcLine = source.split("\n")[d.span.line - 1];
    if (srcLine !== undefined) {
      const width = d.span.endLine === d.span.line ? Math.max(1, d.span.endCol - d.span.col) : Math.max(1, srcLine.length - d.span.col + 1);
      const gutter = String(d.span.line).padStart(4);
      lines.push(`${gutter} | ${srcLine}`);
      lines.push(`${" ".repeat(4)} | ${" ".repeat(Math.max(0, d.span.col - 1))}${c("1;31", "^".repeat(width))}`);
    }
  }
  for (const r of d.related ?? []) lines.push(`  ${r.span.file}:${r.span.line}:${r.span.col}: note: ${r.message}`);
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  return lines.join("\n");
}
