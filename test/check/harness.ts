// Test helpers: check in-memory sources and look up the inferred type of a piece of text.
import { check, type CheckOptions, type CheckResult } from "../../compiler/check/index.ts";
import { printType } from "../../compiler/check/types.ts";
import { formatDiagnostic, type Diagnostic } from "../../compiler/diagnostics.ts";
import { loadModules } from "../../compiler/modules.ts";

export interface Checked extends CheckResult {
  sources: Record<string, string>;
  errors: Diagnostic[];
  warnings: Diagnostic[];
  /** every diagnostic as `line:col code message` (entry file) */
  lines: string[];
  /** printed type of the expression whose source text is exactly `text` (the nth occurrence, 0-based; -1 for the last) */
  typeOf(text: string, nth?: number): string;
  /** formatted report, for failing assertions */
  report(): string;
}

export function checkFiles(files: Record<string, string>, entry = "main.weft", opts?: CheckOptions): Checked {
  const mods = loadModules(entry, { readFile: (p) => files[p], modelsDir: "models" });
  const r = check(mods, opts);
  const src = files[entry] ?? "";
  return {
    ...r,
    sources: files,
    errors: r.diagnostics.filter((d) => d.severity === "error"),
    warnings: r.diagnostics.filter((d) => d.severity === "warning"),
    lines: r.diagnostics.map((d) => `${d.span.line}:${d.span.col} ${d.code} ${d.message}`),
    typeOf(text: string, nth = 0) {
      const hits: { start: number; t: string }[] = [];
      for (const [node, t] of r.types) {
        const span = (node as { span?: { file: string; start: number; end: number } }).span;
        if (!span || span.file !== entry) continue;
        if (src.slice(span.start, span.end) === text) hits.push({ start: span.start, t: printType(t) });
      }
      const starts = [...new Set(hits.map((h) => h.start))].sort((a, b) => a - b);
      const at = starts[nth < 0 ? starts.length + nth : nth];
      if (at === undefined) throw new Error(`no typed node with text ${JSON.stringify(text)}`);
      return hits.find((h) => h.start === at)!.t;
    },
    report() {
      return r.diagnostics.map((d) => formatDiagnostic(d, files[d.span.file])).join("\n");
    },
  };
}

export function checkSource(src: string, opts?: CheckOptions): Checked {
  return checkFiles({ "main.weft": src }, "main.weft", opts);
}
