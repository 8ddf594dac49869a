/**
 * grey-agent entry point. The same executable doubles as the sandbox child
 * that runs untrusted WebAssembly (spawned with an internal flag); that path
 * must not load libp2p and the rest of the agent, hence the dynamic import.
 */
import { maybeRunWasmChild } from "../plugins/executor-wasm/child.ts";

if (!(await maybeRunWasmChild(process.argv))) await import("./cli.ts");
