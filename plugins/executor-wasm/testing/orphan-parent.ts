/** Starts a spinning task, prints the runner's pid, then waits to be SIGKILLed (orphan test). */
import { wasmExecutor } from "../index.ts";
import { testComponents } from "./components.ts";
import { fixtures } from "./wasm-builder.ts";

const ex = wasmExecutor({ reuseChildren: false })(testComponents);
await ex.start();
void ex.execute({ id: "orphan", kind: "wasm", module: fixtures.spin(), input: new Uint8Array(), limits: { timeMs: 600_000, memoryBytes: 1 << 24, outputBytes: 1024 } });
await Bun.sleep(300);
const pids = Bun.spawnSync(["pgrep", "-P", String(process.pid)]).stdout.toString().trim();
console.log(pids);
await Bun.sleep(600_000);
