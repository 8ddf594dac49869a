/**
 * grey-agent entry point. The same executable doubles as the sandbox child
 * that runs untrusted WebAssembly (spawned with an internal flag); that path
 * must not load libp2p and the rest of the agent, hence the dynamic import.
 * `--version` is answered here as well, before any command module loads
 * (the same words runCli accepts).
 */
import { maybeRunWasmChild } from "../plugins/executor-wasm/child.ts";
import { versionLine } from "../plugins/host/cli.ts";

const first = process.argv[2];
if (first === "--version" || first === "-v" || first === "version") console.log(versionLine("grey-agent"));
else if (!(await maybeRunWasmChild(process.argv))) await import("./cli.ts");
