/**
 * Entry of the runner child when the host runs from source (`bun agent/main.ts`,
 * `bun test`): process.execPath is then bun itself and needs a script. A
 * compiled host re-executes itself instead (see spawn.ts).
 */
import { maybeRunWasmChild } from "./child.ts";

if (await maybeRunWasmChild(process.argv)) process.exit(0);
console.error("runner-main.ts is started by the WASM executor only");
process.exit(2);
