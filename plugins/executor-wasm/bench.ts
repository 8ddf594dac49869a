/**
 * Median latency of one tiny task ("hello" WASI command), side by side in one run:
 *   cold child per task   wasmExecutor({ reuseChildren: false })
 *   warm reused child     wasmExecutor()  (default)
 *   in-process runWasi    our WASI shim, no child (unsafe: cannot stop a loop)
 *   bare instantiate      WebAssembly.instantiate + _start, no limits at all
 *
 *   bun plugins/executor-wasm/bench.ts [--cold N] [--warm N]
 */
import type { Executor, WasmTask } from "../sdk/executor.ts";
import { wasmExecutor } from "./index.ts";
import { testComponents } from "./testing/components.ts";
import { fixtures } from "./testing/wasm-builder.ts";
import { runWasi } from "./wasi.ts";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const coldN = arg("--cold", 100);
const warmN = arg("--warm", 2_000);

const module = fixtures.hello();
const limits = { timeMs: 5_000, memoryBytes: 16 * 1024 * 1024, outputBytes: 4096 };
const task: WasmTask = { id: "bench", kind: "wasm", module, input: new Uint8Array(), limits };

function stats(samples: number[]): { median: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p99: s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]! };
}

async function time(n: number, fn: () => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function viaExecutor(ex: Executor, n: number): Promise<number[]> {
  await ex.start();
  await ex.execute(task); // warm-up (spawns the first warm child)
  const samples = await time(n, async () => {
    const r = await ex.execute(task);
    if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
  });
  await ex.stop();
  return samples;
}

const rows: [string, number, number[]][] = [];
rows.push(["cold child per task", coldN, await viaExecutor(wasmExecutor({ reuseChildren: false, concurrency: 1 })(testComponents), coldN)]);
rows.push(["warm reused child", warmN, await viaExecutor(wasmExecutor({ concurrency: 1 })(testComponents), warmN)]);
rows.push(["in-process runWasi (no child)", warmN, await time(warmN, () => runWasi(module, new Uint8Array(), limits))]);
let sink = 0;
rows.push([
  "bare WebAssembly.instantiate",
  warmN,
  await time(warmN, async () => {
    const { instance } = await WebAssembly.instantiate(module, {
      wasi_snapshot_preview1: { fd_read: () => 0, fd_write: () => (sink++, 0), proc_exit: () => {} },
    });
    (instance.exports._start as () => void)();
  }),
]);

console.log(`bun ${Bun.version} ${process.platform}-${process.arch}; task: WASI "hello" (${module.byteLength} bytes)`);
console.log("variant                          tasks   median ms   p99 ms");
for (const [name, n, samples] of rows) {
  const s = stats(samples);
  console.log(`${name.padEnd(32)} ${String(n).padStart(5)}   ${s.median.toFixed(3).padStart(9)}   ${s.p99.toFixed(3).padStart(6)}`);
}
process.exit(0);
