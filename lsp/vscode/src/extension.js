// The VS Code side of Weft: start `weft lsp` and hand the editor to it. Everything a user
// sees (diagnostics, hover, completion, ...) is the server's; this file only finds it.
// Plain JavaScript, bundled with vscode-languageclient by esbuild (see package.json).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

/** @type {LanguageClient | undefined} */
let client;

/**
 * How to run the server: the configured command, else the workspace's own Weft checkout
 * (bin/weft.mjs) or its installed package (node_modules/.bin/weft), else `weft` on the PATH.
 * @returns {import("vscode-languageclient/node").ServerOptions}
 */
function serverOptions() {
  const configured = vscode.workspace.getConfiguration("weft").get("server.path", "");
  const folders = (vscode.workspace.workspaceFolders || []).map((f) => f.uri.fsPath);
  const candidates = configured ? [configured] : folders.flatMap((f) => [path.join(f, "bin", "weft.mjs"), path.join(f, "node_modules", ".bin", "weft")]);
  const found = candidates.find((c) => fs.existsSync(c)) || configured || "weft";
  // a JavaScript entry runs in the extension host's Node; an executable runs as is
  if (/\.(mjs|cjs|js)$/.test(found)) return { module: found, args: ["lsp"], transport: TransportKind.stdio };
  return { command: found, args: ["lsp"], transport: TransportKind.stdio, options: { shell: process.platform === "win32" } };
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  const config = vscode.workspace.getConfiguration("weft");
  client = new LanguageClient(
    "weft",
    "Weft",
    serverOptions(),
    {
      documentSelector: [{ language: "weft" }],
      synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.weft") },
      initializationOptions: { dims: config.get("dims", {}), debounceMs: config.get("diagnostics.debounceMs", 15) },
    },
  );
  context.subscriptions.push(
    vscode.commands.registerCommand("weft.restartServer", async () => {
      if (client) await client.restart();
    }),
  );
  await client.start();
}

async function deactivate() {
  if (client) await client.stop();
}

module.exports = { activate, deactivate };
