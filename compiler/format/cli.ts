// `weft fmt FILE... [--check] [--write]`: the formatter on files.
//
// - one FILE, no flag: print the formatted text to stdout;
// - --write: rewrite every FILE that is not formatted (atomically: a temporary file in the
//   same folder, renamed over it);
// - --check: change nothing; list the FILEs that are not formatted, exit 1 if there are any.
// A folder stands for the .weft files under it. A file with syntax errors is never
// rewritten: its diagnostics are printed and the exit code is 1.
// Exit codes: 0 ok, 1 unformatted files (--check) or syntax errors, 2 usage, 3 a bug in weft fmt.
import { chmodSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { formatDiagnostic, hasErrors } from "../diagnostics.ts";
import { format } from "../format.ts";

export const FMT_HELP = `usage: weft fmt FILE... [--check | --write]

Formats Weft files in the canonical style (docs: compiler/format.ts). A FILE may be a
folder: every .weft file under it.
  (no flag)   print the formatted text of the one FILE to stdout
  --write     rewrite each FILE that is not formatted (atomically)
  --check     rewrite nothing; list the FILEs that are not formatted
A file with syntax errors is left as it is and its errors are printed.
Exit: 0 ok, 1 files not formatted (--check) or syntax errors, 2 usage error.`;

function weftFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  const out: string[] = [];
  for (const e of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name.startsWith(".") || e.name === "node_modules") continue;
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...weftFiles(p));
    else if (e.isFile() && e.name.endsWith(".weft")) out.push(p);
  }
  return out;
}

/** Writes `text` to `file` by renaming a temporary file over it, keeping the file's mode. */
export function writeAtomic(file: string, text: string): void {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.fmt.tmp`);
  try {
    writeFileSync(tmp, text);
    chmodSync(tmp, statSync(file).mode & 0o7777);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function fmtCmd(paths: string[], options: { check?: boolean; write?: boolean }): number {
  const usage = (message: string) => {
    process.stderr.write(`weft fmt: ${message}\n(see 'weft fmt --help')\n`);
    return 2;
  };
  if (!paths.length) return usage("give at least one FILE");
  if (options.check && options.write) return usage("give --check or --write, not both");
  const files = paths.flatMap(weftFiles);
  const toStdout = !options.check && !options.write;
  if (toStdout && (files.length !== 1 || paths.length !== 1)) return usage(`printing to stdout takes one FILE, got ${files.length}; use --write or --check for several`);
  const color = process.stderr.isTTY === true && !process.env.NO_COLOR;
  let broken = 0;
  let internal = 0;
  const changed: string[] = [];
  for (const file of files) {
    const source = readFileSync(file, "utf8");
    const r = format(source, file);
    for (const d of r.diagnostics) process.stderr.write(formatDiagnostic(d, source, color) + "\n");
    if (r.diagnostics.some((d) => d.code === "W0999")) internal++;
    else if (hasErrors(r.diagnostics)) broken++;
    if (toStdout) {
      process.stdout.write(r.text);
      continue;
    }
    if (r.text === source) continue;
    changed.push(file);
    if (options.write) writeAtomic(file, r.text);
    else process.stdout.write(file + "\n");
  }
  if (!toStdout) {
    const n = (k: number) => `${k} file${k === 1 ? "" : "s"}`;
    const what = options.write ? `${n(changed.length)} reformatted, ${n(files.length - changed.length - broken - internal)} already formatted` : changed.length ? `${n(changed.length)} not formatted` : `${n(files.length - broken - internal)} formatted`;
    process.stderr.write(`weft fmt: ${what}${broken ? `, ${n(broken)} with syntax errors left as they are` : ""}\n`);
  }
  if (internal) return 3;
  return broken || (options.check && changed.length) ? 1 : 0;
}
