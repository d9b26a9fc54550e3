// Formatting: the same code as `weft fmt` (compiler/format.ts). A file with syntax errors is
// left as it is, as `weft fmt` does. The edit replaces only the span that changed, so the
// editor keeps the cursor and folds outside it.
import type { TextEdit } from "vscode-languageserver";
import { format } from "../compiler/format.ts";
import { hasErrors } from "../compiler/diagnostics.ts";
import { positionAt } from "./convert.ts";

export function formatting(text: string, file: string): TextEdit[] {
  const r = format(text, file);
  if (hasErrors(r.diagnostics) || r.text === text) return [];
  let start = 0;
  while (start < text.length && start < r.text.length && text[start] === r.text[start]) start++;
  let end = 0;
  while (end < text.length - start && end < r.text.length - start && text[text.length - 1 - end] === r.text[r.text.length - 1 - end]) end++;
  return [{ range: { start: positionAt(text, start), end: positionAt(text, text.length - end) }, newText: r.text.slice(start, r.text.length - end) }];
}
