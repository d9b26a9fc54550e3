// A real LSP client for the tests: spawns `weft lsp` and speaks JSON-RPC to it over stdio,
// as VS Code does. Test sources mark cursor positions inline with `<|>`.
import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import {
  CodeActionRequest, CompletionRequest, DocumentFormattingRequest, DefinitionRequest, DidChangeTextDocumentNotification, DidCloseTextDocumentNotification,
  DidOpenTextDocumentNotification, DocumentSymbolRequest, ExitNotification, FoldingRangeRequest, HoverRequest, InitializedNotification,
  InitializeRequest, InlayHintRequest, PrepareRenameRequest, PublishDiagnosticsNotification, ReferencesRequest, RenameRequest,
  SemanticTokensRequest, ShutdownRequest, SignatureHelpRequest, WorkspaceSymbolRequest,
  type CodeAction, type Command, type CompletionItem, type CompletionList, type Diagnostic, type DocumentSymbol, type FoldingRange,
  type Hover, type InitializeResult, type InlayHint, type Location, type Position, type PublishDiagnosticsParams, type Range,
  type SemanticTokens, type SignatureHelp, type SymbolInformation, type TextEdit, type WorkspaceEdit, type WorkspaceSymbol,
} from "vscode-languageserver-protocol";

export const ROOT = resolve(import.meta.dirname, "../..");

/** Source with `<|>` markers → the text without them and each marker's offset. */
export function marked(src: string): { text: string; cursors: number[] } {
  const cursors: number[] = [];
  let text = "";
  let i = 0;
  for (let at = src.indexOf("<|>"); at >= 0; at = src.indexOf("<|>", i)) {
    text += src.slice(i, at);
    cursors.push(text.length);
    i = at + 3;
  }
  return { text: text + src.slice(i), cursors };
}

export function positionOf(text: string, offset: number): Position {
  const before = text.slice(0, offset);
  const line = before.split("\n").length - 1;
  return { line, character: offset - (before.lastIndexOf("\n") + 1) };
}

export function offsetOf(text: string, p: Position): number {
  const lines = text.split("\n");
  let o = 0;
  for (let i = 0; i < p.line; i++) o += lines[i].length + 1;
  return o + p.character;
}

export function uriOf(path: string): string {
  return pathToFileURL(path).href;
}

/** Apply edits (non-overlapping) to a text, as an editor would. */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const sorted = [...edits].sort((a, b) => offsetOf(text, b.range.start) - offsetOf(text, a.range.start));
  let out = text;
  for (const e of sorted) out = out.slice(0, offsetOf(out, e.range.start)) + e.newText + out.slice(offsetOf(out, e.range.end));
  return out;
}

export function textOf(text: string, r: Range): string {
  return text.slice(offsetOf(text, r.start), offsetOf(text, r.end));
}

export interface Doc {
  uri: string;
  text: string;
  version: number;
  /** cursor positions of the `<|>` markers */
  at: Position[];
}

export class LspClient {
  private readonly published = new Map<string, PublishDiagnosticsParams[]>();
  private readonly waiters: { uri: string; version?: number; done: (p: PublishDiagnosticsParams) => void }[] = [];
  readonly stderr: string[] = [];
  initialized!: InitializeResult;

  private constructor(
    private readonly proc: ChildProcess,
    readonly conn: MessageConnection,
  ) {
    conn.onNotification(PublishDiagnosticsNotification.type, (p) => {
      const list = this.published.get(p.uri) ?? [];
      list.push(p);
      this.published.set(p.uri, list);
      for (const w of [...this.waiters]) {
        if (w.uri === p.uri && (w.version === undefined || p.version === w.version)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.done(p);
        }
      }
    });
  }

  static async start(opts: { root?: string; init?: object } = {}): Promise<LspClient> {
    // the arguments VS Code's client passes
    const proc = spawn(process.execPath, [resolve(ROOT, "bin/weft.mjs"), "lsp", "--stdio", `--clientProcessId=${process.pid}`], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    const client = new LspClient(proc, conn);
    proc.stderr!.on("data", (d: Buffer) => client.stderr.push(d.toString()));
    conn.listen();
    client.initialized = await conn.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      rootUri: opts.root ? uriOf(opts.root) : null,
      workspaceFolders: opts.root ? [{ uri: uriOf(opts.root), name: "test" }] : null,
      capabilities: {},
      initializationOptions: { debounceMs: 5, ...opts.init },
    });
    await conn.sendNotification(InitializedNotification.type, {});
    return client;
  }

  async stop(): Promise<void> {
    const exited = new Promise<void>((ok) => {
      if (this.proc.exitCode !== null) ok();
      else this.proc.once("exit", () => ok());
    });
    try {
      await this.conn.sendRequest(ShutdownRequest.type);
      await this.conn.sendNotification(ExitNotification.type);
    } catch {
      this.proc.kill();
    }
    await exited;
    this.conn.dispose();
  }

  /** Open a document from marked source (the markers become `doc.at`). */
  async open(path: string, src: string): Promise<Doc> {
    const { text, cursors } = marked(src);
    const doc: Doc = { uri: uriOf(path), text, version: 1, at: cursors.map((c) => positionOf(text, c)) };
    await this.conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri: doc.uri, languageId: "weft", version: 1, text } });
    return doc;
  }

  async close(doc: Doc): Promise<void> {
    await this.conn.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri: doc.uri } });
  }

  /** An incremental change: replace `range` (or insert at a position) with `text`. */
  async edit(doc: Doc, range: Range, text: string): Promise<void> {
    doc.version++;
    doc.text = applyEdits(doc.text, [{ range, newText: text }]);
    await this.conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri: doc.uri, version: doc.version }, contentChanges: [{ range, text }] });
  }

  /** Replace the whole document with marked source, as an incremental change of everything. */
  async replace(doc: Doc, src: string): Promise<void> {
    const { text, cursors } = marked(src);
    const end = positionOf(doc.text, doc.text.length);
    await this.edit(doc, { start: { line: 0, character: 0 }, end }, text);
    doc.at = cursors.map((c) => positionOf(text, c));
  }

  /** The diagnostics published for the document's current version (waits for them). */
  diagnostics(doc: Doc, timeoutMs = 30_000): Promise<Diagnostic[]> {
    const got = this.published.get(doc.uri)?.find((p) => p.version === doc.version);
    if (got) return Promise.resolve(got.diagnostics);
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no diagnostics for ${doc.uri} v${doc.version}; server stderr:\n${this.stderr.join("")}`)), timeoutMs);
      this.waiters.push({ uri: doc.uri, version: doc.version, done: (p) => (clearTimeout(timer), ok(p.diagnostics)) });
    });
  }

  /** The last diagnostics published for a URI, waiting for a first publication. */
  latestDiagnostics(uri: string): PublishDiagnosticsParams[] {
    return this.published.get(uri) ?? [];
  }

  waitDiagnostics(uri: string, timeoutMs = 30_000): Promise<PublishDiagnosticsParams> {
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`no diagnostics for ${uri}`)), timeoutMs);
      this.waiters.push({ uri, done: (p) => (clearTimeout(timer), ok(p)) });
    });
  }

  hover(doc: Doc, at: Position): Promise<Hover | null> {
    return this.conn.sendRequest(HoverRequest.type, { textDocument: { uri: doc.uri }, position: at });
  }

  /** Hover text (markdown) or "" */
  async hoverText(doc: Doc, at: Position): Promise<string> {
    const h = await this.hover(doc, at);
    if (!h) return "";
    const c = h.contents;
    return typeof c === "object" && "kind" in c ? c.value : JSON.stringify(c);
  }

  async completion(doc: Doc, at: Position): Promise<CompletionItem[]> {
    const r: CompletionItem[] | CompletionList | null = await this.conn.sendRequest(CompletionRequest.type, { textDocument: { uri: doc.uri }, position: at });
    return !r ? [] : Array.isArray(r) ? r : r.items;
  }

  signature(doc: Doc, at: Position): Promise<SignatureHelp | null> {
    return this.conn.sendRequest(SignatureHelpRequest.type, { textDocument: { uri: doc.uri }, position: at });
  }

  async definition(doc: Doc, at: Position): Promise<Location[]> {
    const r = await this.conn.sendRequest(DefinitionRequest.type, { textDocument: { uri: doc.uri }, position: at });
    if (!r) return [];
    const list = Array.isArray(r) ? r : [r];
    return list.map((x) => ("targetUri" in x ? { uri: x.targetUri, range: x.targetSelectionRange } : x));
  }

  async references(doc: Doc, at: Position, includeDeclaration = true): Promise<Location[]> {
    return (await this.conn.sendRequest(ReferencesRequest.type, { textDocument: { uri: doc.uri }, position: at, context: { includeDeclaration } })) ?? [];
  }

  prepareRename(doc: Doc, at: Position) {
    return this.conn.sendRequest(PrepareRenameRequest.type, { textDocument: { uri: doc.uri }, position: at });
  }

  rename(doc: Doc, at: Position, newName: string): Promise<WorkspaceEdit | null> {
    return this.conn.sendRequest(RenameRequest.type, { textDocument: { uri: doc.uri }, position: at, newName });
  }

  async documentSymbols(doc: Doc): Promise<DocumentSymbol[]> {
    const r = await this.conn.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri: doc.uri } });
    return (r ?? []).filter((s): s is DocumentSymbol => "selectionRange" in s);
  }

  async workspaceSymbols(query: string): Promise<(SymbolInformation | WorkspaceSymbol)[]> {
    return (await this.conn.sendRequest(WorkspaceSymbolRequest.type, { query })) ?? [];
  }

  async semanticTokens(doc: Doc): Promise<SemanticTokens> {
    return (await this.conn.sendRequest(SemanticTokensRequest.type, { textDocument: { uri: doc.uri } })) ?? { data: [] };
  }

  async folding(doc: Doc): Promise<FoldingRange[]> {
    return (await this.conn.sendRequest(FoldingRangeRequest.type, { textDocument: { uri: doc.uri } })) ?? [];
  }

  async formatting(doc: Doc): Promise<TextEdit[]> {
    return (await this.conn.sendRequest(DocumentFormattingRequest.type, { textDocument: { uri: doc.uri }, options: { tabSize: 2, insertSpaces: true } })) ?? [];
  }

  async inlayHints(doc: Doc): Promise<InlayHint[]> {
    const end = positionOf(doc.text, doc.text.length);
    return (await this.conn.sendRequest(InlayHintRequest.type, { textDocument: { uri: doc.uri }, range: { start: { line: 0, character: 0 }, end } })) ?? [];
  }

  async codeActions(doc: Doc, range: Range, diagnostics: Diagnostic[] = []): Promise<CodeAction[]> {
    const r: (Command | CodeAction)[] | null = await this.conn.sendRequest(CodeActionRequest.type, { textDocument: { uri: doc.uri }, range, context: { diagnostics } });
    return (r ?? []).filter((x): x is CodeAction => "title" in x && !("command" in x && typeof x.command === "string"));
  }
}

/** The edits of a workspace edit for one document. */
export function editsFor(edit: WorkspaceEdit | null, uri: string): TextEdit[] {
  return edit?.changes?.[uri] ?? [];
}

/** Decoded semantic tokens: the text, its type and modifiers, and where it is (1-based line). */
export function decodeTokens(text: string, tokens: SemanticTokens, legend: { tokenTypes: string[]; tokenModifiers: string[] }): { text: string; type: string; mods: string[]; line: number }[] {
  const lines = text.split("\n");
  const out: { text: string; type: string; mods: string[]; line: number }[] = [];
  let line = 0;
  let col = 0;
  for (let i = 0; i < tokens.data.length; i += 5) {
    const [dl, dc, len, type, mods] = tokens.data.slice(i, i + 5);
    line += dl;
    col = dl ? dc : col + dc;
    out.push({ text: lines[line].slice(col, col + len), type: legend.tokenTypes[type], mods: legend.tokenModifiers.filter((_, k) => mods & (1 << k)), line: line + 1 });
  }
  return out;
}
