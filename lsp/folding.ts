// Folding: items and `{ }` bodies that span lines, runs of comments, runs of imports.
import type { FoldingRange } from "vscode-languageserver";
import { FoldingRangeKind } from "vscode-languageserver";
import type { Program, Span } from "../grammar/ast.ts";
import { walk } from "./syntax.ts";

export function foldingRanges(program: Program, text: string): FoldingRange[] {
  const out: FoldingRange[] = [];
  const seen = new Set<number>();
  // keep a closing `}` visible: fold up to the line before it
  const add = (s: Span, kind?: FoldingRangeKind) => {
    const start = s.line - 1;
    let end = s.endLine - 1;
    if (text[s.end - 1] === "}" && /^\s*$/.test(text.slice(text.lastIndexOf("\n", s.end - 2) + 1, s.end - 1))) end--;
    if (end <= start || seen.has(start)) return;
    seen.add(start);
    out.push(kind ? { startLine: start, endLine: end, kind } : { startLine: start, endLine: end });
  };
  for (const item of program.items) {
    if (item.kind === "import") continue;
    add(item.span);
    for (const n of walk(item)) if (n !== item && "kind" in n && (n.kind === "block" || n.kind === "fn" || n.kind === "record" || n.kind === "list") && "span" in n) add(n.span);
  }
  // imports
  const imports = program.items.filter((i) => i.kind === "import");
  if (imports.length > 1) {
    const first = imports[0].span.line - 1;
    const last = imports[imports.length - 1].span.endLine - 1;
    if (last > first) out.push({ startLine: first, endLine: last, kind: FoldingRangeKind.Imports });
  }
  // comments: `/* */` over several lines, and runs of `//` lines
  const lines = text.split("\n");
  let run = -1;
  for (let i = 0; i <= lines.length; i++) {
    const isComment = i < lines.length && /^\s*\/\//.test(lines[i]);
    if (isComment && run < 0) run = i;
    if (!isComment && run >= 0) {
      if (i - 1 > run) out.push({ startLine: run, endLine: i - 1, kind: FoldingRangeKind.Comment });
      run = -1;
    }
  }
  for (const m of text.matchAll(/\/\*[\s\S]*?\*\//g)) {
    const start = text.slice(0, m.index).split("\n").length - 1;
    const end = start + m[0].split("\n").length - 1;
    if (end > start) out.push({ startLine: start, endLine: end, kind: FoldingRangeKind.Comment });
  }
  return out.sort((x, y) => x.startLine - y.startLine);
}
