// The server's view of the files: open documents (their in-memory text wins over the disk),
// the workspace's other `.weft` files, and one Analysis per file and version. A change to a
// file drops every analysis that loaded it, so importers are re-checked too. An open document
// is re-checked incrementally (compiler/check/incremental.ts): only the items an edit affected.
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { TextDocument } from "vscode-languageserver-textdocument";
import type { ModuleHost } from "../compiler/modules.ts";
import { IncrementalChecker } from "../compiler/check/incremental.ts";
import { Analysis, analyse } from "./analysis.ts";
import { pathToUri, uriToPath } from "./convert.ts";
import { ModuleLoader } from "./modules.ts";

export interface WorkspaceOptions {
  modelsDir: string;
  /** workspace folders, searched for references, renames and workspace symbols */
  roots: string[];
  /** dim values, as `weft check --dim` */
  dims: Record<string, number>;
}

const MAX_FILES = 2000;
const SKIP_DIRS = new Set(["node_modules", ".git", "runs", "dist", "out"]);

export class Workspace {
  private readonly docs = new Map<string, TextDocument>();
  private readonly analyses = new Map<string, Analysis>();
  private files?: string[];
  private readonly loader = new ModuleLoader();
  /** by open document: its checker, which keeps what it found for the next version */
  private readonly checkers = new Map<string, IncrementalChecker>();
  readonly host: ModuleHost;

  constructor(readonly options: WorkspaceOptions) {
    this.host = {
      modelsDir: options.modelsDir,
      readFile: (p) => {
        const doc = this.docs.get(p);
        if (doc) return doc.getText();
        try {
          return readFileSync(p, "utf8");
        } catch {
          return undefined;
        }
      },
    };
  }

  // ------------------------------------------------------------ documents

  /** A document was opened or edited: forget what depended on its old text. */
  update(doc: TextDocument): void {
    const p = uriToPath(doc.uri);
    this.docs.set(p, doc);
    this.changed(p);
  }

  close(uri: string): void {
    const p = uriToPath(uri);
    this.docs.delete(p);
    this.checkers.delete(p);
    this.loader.forget(p);
    this.changed(p);
  }

  /** Files changed on disk (or appeared, or went). */
  filesChanged(paths: string[]): void {
    this.files = undefined;
    for (const p of paths) this.changed(p);
  }

  private changed(p: string): void {
    for (const [k, a] of this.analyses) if (k === p || a.modules.modules.has(p) || a.modules.diagnostics.some((d) => d.code === "W0104")) this.analyses.delete(k);
  }

  document(uri: string): TextDocument | undefined {
    return this.docs.get(uriToPath(uri));
  }

  openPaths(): string[] {
    return [...this.docs.keys()];
  }

  /** Open documents whose current analysis is gone (they load a file that changed). */
  stale(): string[] {
    return this.openPaths().filter((p) => !this.analyses.has(p));
  }

  uriOf(file: string): string {
    return this.docs.get(file)?.uri ?? pathToUri(file);
  }

  text(file: string): string | undefined {
    return this.host.readFile(file);
  }

  // ------------------------------------------------------------ analyses

  /** The analysis of a file at its current text (an open document's, or the disk's). */
  analysis(file: string): Analysis | undefined {
    const doc = this.docs.get(file);
    const version = doc?.version ?? -1;
    const cached = this.analyses.get(file);
    if (doc && cached?.version === version) return cached;
    const text = this.host.readFile(file);
    if (text === undefined) return undefined;
    // a file that is not open is re-read: it may have changed on disk unannounced
    if (!doc && cached?.version === -1 && cached.text === text) return cached;
    let checker = this.checkers.get(file);
    if (doc && !checker) this.checkers.set(file, (checker = new IncrementalChecker({ dims: this.options.dims })));
    const a = analyse(file, version, text, this.host, this.options.dims, this.loader, checker);
    this.analyses.set(file, a);
    return a;
  }

  /** Whether the analysis of an open document is up to date. */
  fresh(file: string): boolean {
    const a = this.analyses.get(file);
    return !!a && a.version === (this.docs.get(file)?.version ?? -1);
  }

  /** Every `.weft` file of the workspace folders, and the open documents. */
  weftFiles(): string[] {
    if (!this.files) {
      const out: string[] = [];
      const visit = (dir: string) => {
        if (out.length >= MAX_FILES) return;
        let entries;
        try {
          entries = readdirSync(dir, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          if (e.isDirectory()) {
            if (!SKIP_DIRS.has(e.name) && !e.name.startsWith(".")) visit(path.join(dir, e.name));
          } else if (e.name.endsWith(".weft") && out.length < MAX_FILES) out.push(path.join(dir, e.name));
        }
      };
      this.options.roots.forEach(visit);
      this.files = out;
    }
    return [...new Set([...this.openPaths(), ...this.files])];
  }

  /** Analyses of every file a workspace-wide question must look at. */
  allAnalyses(): Analysis[] {
    const out: Analysis[] = [];
    for (const f of this.weftFiles()) {
      const a = this.analysis(f);
      if (a) out.push(a);
    }
    return out;
  }
}
