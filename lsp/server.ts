// The Weft language server (`weft lsp`): LSP over stdio on top of the fault-tolerant front
// end. Every feature reads one Analysis per document version (lsp/analysis.ts); this file
// only wires requests to the functions that answer them.
import { fileURLToPath } from "node:url";
import {
  CodeActionKind, createConnection, LSPErrorCodes, ProposedFeatures, ResponseError, TextDocuments, TextDocumentSyncKind,
  type Connection, type InitializeResult,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import * as path from "node:path";
import type { Analysis } from "./analysis.ts";
import { codeActions } from "./actions.ts";
import { complete } from "./completion.ts";
import { shownDiagnostics, toLspDiagnostic, uriToPath } from "./convert.ts";
import { foldingRanges } from "./folding.ts";
import { formatting } from "./formatting.ts";
import { hover } from "./hover.ts";
import { inlayHints } from "./inlay.ts";
import { type Navigator, RenameRefused, definition, prepareRename, references, rename } from "./navigate.ts";
import { legend, semanticTokens } from "./semantic.ts";
import { signatureHelp } from "./signature.ts";
import { documentSymbols, workspaceSymbols } from "./symbols.ts";
import { Workspace } from "./workspace.ts";

export const MODELS_DIR = fileURLToPath(new URL("../models", import.meta.url));

/** `initializationOptions` the server understands (all optional). */
export interface InitOptions {
  /** dim values, as `weft check --dim D=256` */
  dims?: Record<string, number>;
  /**
   * in a burst of edits, the most time to wait for it to end before diagnostics are computed
   * (ms); an edit that finds nothing pending is checked at once
   */
  debounceMs?: number;
}

function readOptions(v: unknown): InitOptions {
  const out: InitOptions = {};
  if (typeof v !== "object" || v === null) return out;
  if ("debounceMs" in v && typeof v.debounceMs === "number" && v.debounceMs >= 0) out.debounceMs = v.debounceMs;
  if ("dims" in v && typeof v.dims === "object" && v.dims !== null) {
    out.dims = {};
    for (const [k, n] of Object.entries(v.dims)) if (typeof n === "number" && Number.isInteger(n) && n > 0) out.dims[k] = n;
  }
  return out;
}

export interface ServerStreams {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/** Serve LSP until the client sends `exit` (the process then exits, as LSP requires). */
export function startServer(streams: ServerStreams = { input: process.stdin, output: process.stdout }): Promise<number> {
  const connection = createConnection(ProposedFeatures.all, streams.input, streams.output);
  const documents = new TextDocuments(TextDocument);
  let ws = new Workspace({ modelsDir: MODELS_DIR, roots: [], dims: {} });
  let debounceMs = 15;

  connection.onInitialize((params): InitializeResult => {
    const opts = readOptions(params.initializationOptions);
    const roots = params.workspaceFolders?.map((f) => uriToPath(f.uri)) ?? (params.rootUri ? [uriToPath(params.rootUri)] : []);
    ws = new Workspace({ modelsDir: MODELS_DIR, roots, dims: opts.dims ?? {} });
    if (opts.debounceMs !== undefined) debounceMs = opts.debounceMs;
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        hoverProvider: true,
        completionProvider: { triggerCharacters: [".", '"', "/", "["] },
        signatureHelpProvider: { triggerCharacters: ["(", ","], retriggerCharacters: [","] },
        definitionProvider: true,
        referencesProvider: true,
        renameProvider: { prepareProvider: true },
        documentSymbolProvider: true,
        workspaceSymbolProvider: true,
        semanticTokensProvider: { legend, full: true },
        foldingRangeProvider: true,
        documentFormattingProvider: true,
        inlayHintProvider: true,
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, CodeActionKind.RefactorRewrite] },
      },
      serverInfo: { name: "weft" },
    };
  });

  // ------------------------------------------------------------ diagnostics

  const timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** how long the last analysis and publication of each file took (ms) */
  const cost = new Map<string, number>();
  const publish = (file: string) => {
    const doc = ws.document(ws.uriOf(file)) ?? documents.get(ws.uriOf(file));
    if (!doc) return;
    const t0 = performance.now();
    const a = ws.analysis(file);
    const diagnostics = shownDiagnostics(a?.checked.diagnostics ?? [], file).map((d) => toLspDiagnostic(d, (f) => ws.uriOf(f)));
    void connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics });
    cost.set(file, performance.now() - t0);
  };
  // Debounced on both edges: a change that finds nothing pending (the previous one was checked
  // and published) is checked at once; one that comes while another still waits (a burst:
  // paste, fast typing, changes queued behind a long check) waits for the burst to end, but
  // no longer than `debounceMs`, nor than the file's last check took (re-checks are
  // incremental and mostly take a few ms: waiting longer would only add latency).
  const schedule = (file: string) => {
    const pending = timers.has(file);
    clearTimeout(timers.get(file));
    timers.set(
      file,
      setTimeout(() => {
        timers.delete(file);
        guard(connection, () => {
          publish(file);
          // importers of the edited file were invalidated with it
          for (const other of ws.stale()) if (!timers.has(other)) publish(other);
        }, undefined);
      }, pending ? Math.min(debounceMs, Math.ceil(cost.get(file) ?? debounceMs)) : 0),
    );
  };
  documents.onDidChangeContent((e) => {
    ws.update(e.document);
    schedule(uriToPath(e.document.uri));
  });
  documents.onDidClose((e) => {
    const file = uriToPath(e.document.uri);
    clearTimeout(timers.get(file));
    timers.delete(file);
    ws.close(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
    for (const other of ws.stale()) schedule(other);
  });
  connection.onDidChangeWatchedFiles((e) => {
    ws.filesChanged(e.changes.map((c) => uriToPath(c.uri)));
    for (const other of ws.stale()) schedule(other);
  });

  // ------------------------------------------------------------ requests

  /** The document's analysis at its current version, and an offset into it. */
  const at = (uri: string, pos?: { line: number; character: number }): { a: Analysis; offset: number } | undefined => {
    const doc = documents.get(uri);
    const file = uriToPath(uri);
    const a = ws.analysis(file);
    if (!a) return undefined;
    return { a, offset: pos && doc ? doc.offsetAt(pos) : 0 };
  };
  const nav: Navigator = {
    uriOf: (f) => ws.uriOf(f),
    allAnalyses: () => ws.allAnalyses(),
    editable: (f) => ws.openPaths().includes(f) || ws.options.roots.some((r) => !path.relative(r, f).startsWith("..")),
  };

  connection.onHover((p) => guard(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? hover(c.a, c.offset) ?? null : null;
  }, null));
  connection.onCompletion((p) => guard(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? complete(c.a, c.offset, { modelsDir: MODELS_DIR }) : [];
  }, []));
  connection.onSignatureHelp((p) => guard(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? signatureHelp(c.a, c.offset) ?? null : null;
  }, null));
  connection.onDefinition((p) => guard(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? definition(c.a, c.offset, nav) : [];
  }, []));
  connection.onReferences((p) => guard(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? references(c.a, c.offset, p.context.includeDeclaration, nav) : [];
  }, []));
  connection.onPrepareRename((p) => refusable(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? prepareRename(c.a, c.offset, nav) : null;
  }));
  connection.onRenameRequest((p) => refusable(connection, () => {
    const c = at(p.textDocument.uri, p.position);
    return c ? rename(c.a, c.offset, p.newName, nav) : null;
  }));
  connection.onDocumentSymbol((p) => guard(connection, () => {
    const c = at(p.textDocument.uri);
    return c ? documentSymbols(c.a) : [];
  }, []));
  connection.onWorkspaceSymbol((p) => guard(connection, () => workspaceSymbols(p.query, { files: () => ws.weftFiles(), text: (f) => ws.text(f), uriOf: (f) => ws.uriOf(f) }), []));
  connection.languages.semanticTokens.on((p) => guard(connection, () => {
    const c = at(p.textDocument.uri);
    return c ? semanticTokens(c.a) : { data: [] };
  }, { data: [] }));
  connection.onFoldingRanges((p) => guard(connection, () => {
    const c = at(p.textDocument.uri);
    return c ? foldingRanges(c.a.program, c.a.text) : [];
  }, []));
  connection.onDocumentFormatting((p) => guard(connection, () => {
    const doc = documents.get(p.textDocument.uri);
    return doc ? formatting(doc.getText(), uriToPath(doc.uri)) : [];
  }, []));
  connection.languages.inlayHint.on((p) => guard(connection, () => {
    const doc = documents.get(p.textDocument.uri);
    const c = at(p.textDocument.uri);
    return c && doc ? inlayHints(c.a, doc.offsetAt(p.range.start), doc.offsetAt(p.range.end)) : [];
  }, []));
  connection.onCodeAction((p) => guard(connection, () => {
    const doc = documents.get(p.textDocument.uri);
    const c = at(p.textDocument.uri);
    if (!c || !doc) return [];
    return codeActions(c.a, doc.offsetAt(p.range.start), doc.offsetAt(p.range.end), {
      uriOf: (f) => ws.uriOf(f),
      modelsDir: MODELS_DIR,
      files: () => ws.weftFiles(),
      text: (f) => ws.text(f),
    });
  }, []));

  documents.listen(connection);
  connection.listen();
  return new Promise<number>(() => {
    // the connection ends the process on `exit` (or when the client goes away)
  });
}

/** A request handler that fails reports the bug to the client's log and answers emptily. */
function guard<T>(connection: Connection, f: () => T, fallback: T): T {
  try {
    return f();
  } catch (e) {
    connection.console.error(`weft lsp: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return fallback;
  }
}

/** Like guard, but a refused rename goes back to the user as the request's error. */
function refusable<T>(connection: Connection, f: () => T): T | ResponseError<void> | null {
  try {
    return f();
  } catch (e) {
    if (e instanceof RenameRefused) return new ResponseError(LSPErrorCodes.RequestFailed, e.message);
    return guard(connection, () => {
      throw e;
    }, null);
  }
}
