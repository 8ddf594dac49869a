import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { executorCompliance } from "../sdk/compliance/executor.ts";
import { ExecutorBusyError, type ExecLimits, type Executor, type WasmTask } from "../sdk/executor.ts";
import { wasmExecutor } from "./index.ts";
import { testComponents } from "./testing/components.ts";
import { fixtures } from "./testing/wasm-builder.ts";

const MiB = 1024 * 1024;
const limits: ExecLimits = { timeMs: 5_000, memoryBytes: 16 * MiB, outputBytes: MiB };
const task = (module: Uint8Array, over: Partial<WasmTask> = {}): WasmTask => ({ id: "t", kind: "wasm", module, input: new Uint8Array(), limits, ...over });

const complianceTasks = {
  echo: (input: Uint8Array, l: ExecLimits) => task(fixtures.echo(), { input, limits: l }),
  spin: (l: ExecLimits) => task(fixtures.spin(), { limits: l }),
  flood: (l: ExecLimits) => task(fixtures.flood(), { limits: l }),
  invalid: (l: ExecLimits) => task(fixtures.garbage(), { limits: l }),
};
executorCompliance("executor-wasm (warm children)", () => wasmExecutor()(testComponents), complianceTasks);
executorCompliance("executor-wasm (child per task)", () => wasmExecutor({ reuseChildren: false })(testComponents), complianceTasks);

describe("executor-wasm", () => {
  let ex: Executor;
  beforeAll(async () => {
    ex = wasmExecutor({ concurrency: 2 })(testComponents);
    await ex.start();
  });
  afterAll(() => ex.stop());

  test("a `loop br 0` module is SIGKILLed at its deadline; the next task reuses a fresh child", async () => {
    const started = performance.now();
    const r = await ex.execute(task(fixtures.spin(), { limits: { ...limits, timeMs: 200 } }));
    const elapsed = performance.now() - started;
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(elapsed).toBeLessThan(1_000);
    const next = await ex.execute(task(fixtures.hello()));
    expect(next.ok && new TextDecoder().decode(next.output)).toBe("hello");
  });

  test("growing memory past the cap fails with reason memory", async () => {
    const r = await ex.execute(task(fixtures.grow(), { limits: { ...limits, memoryBytes: 8 * MiB } }));
    expect(r).toMatchObject({ ok: false, reason: "memory" });
    expect(!r.ok && r.usage?.maxRssBytes).toBeGreaterThan(0);
  });

  test("initial memory over the cap fails with reason memory", async () => {
    expect(await ex.execute(task(fixtures.bigMemory(512), { limits: { ...limits, memoryBytes: 8 * MiB } }))).toMatchObject({ ok: false, reason: "memory" });
  });

  test.each([
    ["garbage bytes", fixtures.garbage()],
    ["no _start", fixtures.noStart()],
    ["non-WASI import", fixtures.foreignImport()],
  ])("%s: invalid-module", async (_n, module) => {
    expect(await ex.execute(task(module))).toMatchObject({ ok: false, reason: "invalid-module" });
  });

  test("traps, stack overflow and non-zero exit are crashes with a detail", async () => {
    expect(await ex.execute(task(fixtures.trap()))).toMatchObject({ ok: false, reason: "crash" });
    expect(await ex.execute(task(fixtures.recurse()))).toMatchObject({ ok: false, reason: "crash" });
    const r = await ex.execute(task(fixtures.exit(7)));
    expect(r).toMatchObject({ ok: false, reason: "crash" });
    expect(!r.ok && r.detail).toContain("exit code 7; stderr: oops");
  });

  test("a task of another kind, oversize limits and oversize modules are refused without a child", async () => {
    expect(await ex.execute({ id: "c", kind: "command", command: { path: "/bin/true", args: [] }, input: new Uint8Array(), limits }))
      .toMatchObject({ ok: false, reason: "invalid-module" });
    expect(await ex.execute(task(fixtures.hello(), { limits: { ...limits, memoryBytes: 64 * 1024 * MiB } }))).toMatchObject({ ok: false, reason: "invalid-module" });
    expect(await ex.execute(task(new Uint8Array(33 * MiB)))).toMatchObject({ ok: false, reason: "invalid-module" });
  });

  test("usage reports cpu, wall time and the runner's peak RSS", async () => {
    const r = await ex.execute(task(fixtures.hello()));
    if (!r.ok) throw new Error(r.detail);
    expect(r.usage.cpuMs).toBeGreaterThanOrEqual(0);
    expect(r.usage.wallMs).toBeGreaterThan(0);
    expect(r.usage.maxRssBytes).toBeGreaterThan(1 * MiB);
  });
});

describe("executor-wasm failure of the runner itself", () => {
  test("a runner that dies at start is a crash, not a dead host", async () => {
    const ex = wasmExecutor({ runnerCommand: [process.execPath, "-e", "process.exit(3)"] })(testComponents);
    await ex.start();
    const r = await ex.execute(task(fixtures.hello()));
    expect(r).toMatchObject({ ok: false, reason: "crash" });
    await ex.stop();
  });

  test("a runner killed mid-task is a crash", async () => {
    const ex = wasmExecutor({ reuseChildren: false })(testComponents);
    await ex.start();
    const pending = ex.execute(task(fixtures.spin()));
    await Bun.sleep(300);
    const ps = Bun.spawnSync(["pgrep", "-f", "-P", String(process.pid), "__grey-wasm-runner"]).stdout.toString().trim().split("\n").filter(Boolean);
    for (const pid of ps) process.kill(Number(pid), "SIGKILL");
    const r = await pending;
    expect(r).toMatchObject({ ok: false, reason: "crash" });
    expect(!r.ok && r.detail).toContain("SIGKILL");
    await ex.stop();
  });

  test("a full queue throws ExecutorBusyError", async () => {
    const ex = wasmExecutor({ concurrency: 1, queuedTasksMax: 1 })(testComponents);
    await ex.start();
    const a = ex.execute(task(fixtures.spin(), { limits: { ...limits, timeMs: 300 } }));
    const b = ex.execute(task(fixtures.hello()));
    await expect(ex.execute(task(fixtures.hello()))).rejects.toBeInstanceOf(ExecutorBusyError);
    expect(await a).toMatchObject({ reason: "timeout" });
    expect((await b).ok).toBe(true);
    await ex.stop();
  });

  test("bad configuration is reported with every problem", () => {
    expect(() => wasmExecutor({ concurrency: 0, limitsMax: { timeMs: -1 } })).toThrow(/concurrency.*limitsMax.timeMs|limitsMax.timeMs.*concurrency/);
  });
});
