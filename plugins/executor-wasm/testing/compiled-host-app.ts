/** Runs a few tasks through the executor from inside a compiled binary and prints the results as JSON. */
import { wasmExecutor } from "../index.ts";
import { runnerCommand } from "../spawn.ts";
import { testComponents } from "./components.ts";
import { fixtures } from "./wasm-builder.ts";

const limits = { timeMs: 2_000, memoryBytes: 8 * 1024 * 1024, outputBytes: 4096 };
const ex = wasmExecutor()(testComponents);
await ex.start();
const run = async (module: Uint8Array, over = {}) => {
  const r = await ex.execute({ id: "c", kind: "wasm", module, input: new TextEncoder().encode("from the compiled host"), limits: { ...limits, ...over } });
  return r.ok ? { ok: true, output: new TextDecoder().decode(r.output) } : { ok: false, reason: r.reason };
};
const results = {
  command: runnerCommand({ prlimitPath: null }),
  echo: await run(fixtures.echo()),
  spin: await run(fixtures.spin(), { timeMs: 200 }),
  grow: await run(fixtures.grow()),
  after: await run(fixtures.hello()),
};
await ex.stop();
console.log(JSON.stringify(results));
process.exit(0);
