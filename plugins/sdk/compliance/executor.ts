/**
 * Compliance suite for executor plugins. An implementation runs it in a few
 * lines from its own test file:
 *
 *   executorCompliance("executor-wasm", () => wasmExecutor()(components), {
 *     echo: (input, limits) => ({ id: "echo", kind: "wasm", module: ECHO, input, limits }),
 *     ...
 *   });
 *
 * The suite cannot know how to express "copy stdin to stdout" for every kind
 * of executor, so the plugin supplies four tasks; the suite checks what the
 * contract in sdk/executor.ts promises about them, including the negative
 * cases: runaway tasks are killed and the executor keeps working, output and
 * limits are enforced, bad tasks are refused with a reason, not a throw.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ExecutorNotRunningError, type ExecLimits, type ExecResult, type ExecTask, type Executor } from "../executor.ts";
import { PLUGIN_API_VERSION } from "../plugin.ts";

export interface ComplianceTasks {
  /** Copies its input to its output. */
  echo(input: Uint8Array, limits: ExecLimits): ExecTask;
  /** Never finishes on its own (and ignores its input). */
  spin(limits: ExecLimits): ExecTask;
  /** Writes output without end. */
  flood(limits: ExecLimits): ExecTask;
  /** Cannot be run at all (bad module, unknown command...). */
  invalid(limits: ExecLimits): ExecTask;
}

export interface ComplianceOptions {
  /** Budget for "a runaway task is stopped" assertions (timeout + kill + report). */
  killSlackMs?: number;
}

const limits: ExecLimits = { timeMs: 5_000, memoryBytes: 64 * 1024 * 1024, outputBytes: 1024 * 1024 };
const bytes = (s: string) => new TextEncoder().encode(s);

function expectFailure(r: ExecResult, reason: string): void {
  expect(r.ok ? "ok" : r.reason).toBe(reason);
  if (!r.ok) expect(typeof r.detail).toBe("string");
}

export function executorCompliance(
  name: string,
  makeExecutor: () => Executor | Promise<Executor>,
  tasks: ComplianceTasks,
  options: ComplianceOptions = {},
): void {
  const slackMs = options.killSlackMs ?? 2_000;

  describe(`executor compliance: ${name}`, () => {
    let ex: Executor;
    beforeAll(async () => {
      ex = await makeExecutor();
      await ex.start();
    });
    afterAll(async () => {
      await ex.stop();
    });

    test("declares itself as an executor of this plugin API", () => {
      expect(ex.kind).toBe("executor");
      expect(ex.apiVersion).toBe(PLUGIN_API_VERSION);
      expect(ex.name.length).toBeGreaterThan(0);
      expect(ex.accepts.length).toBeGreaterThan(0);
    });

    test("happy path: output is the task's output, usage is reported", async () => {
      const input = bytes("grey federation compliance ✓");
      const r = await ex.execute(tasks.echo(input, limits));
      if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
      expect(r.output).toEqual(input);
      expect(r.usage.wallMs).toBeGreaterThanOrEqual(0);
      expect(r.usage.cpuMs).toBeGreaterThanOrEqual(0);
    });

    test("tasks run concurrently without mixing their outputs", async () => {
      const inputs = [0, 1, 2, 3, 4].map((i) => bytes(`task-${i}-`.repeat(100 * (i + 1))));
      const rs = await Promise.all(inputs.map((input) => ex.execute(tasks.echo(input, limits))));
      rs.forEach((r, i) => expect(r.ok && r.output).toEqual(inputs[i]!));
    });

    test("timeout: a runaway task is killed and the executor keeps working", async () => {
      const started = performance.now();
      const r = await ex.execute(tasks.spin({ ...limits, timeMs: 300 }));
      expectFailure(r, "timeout");
      expect(performance.now() - started).toBeLessThan(300 + slackMs);
      const after = await ex.execute(tasks.echo(bytes("still here"), limits));
      expect(after.ok).toBe(true);
    });

    test("bad input: an unrunnable task fails with invalid-module", async () => {
      expectFailure(await ex.execute(tasks.invalid(limits)), "invalid-module");
    });

    test("bad input: limits that are not positive integers are refused", async () => {
      for (const bad of [{ ...limits, timeMs: 0 }, { ...limits, memoryBytes: -1 }, { ...limits, outputBytes: 1.5 }]) {
        expectFailure(await ex.execute(tasks.echo(bytes("x"), bad)), "invalid-module");
      }
    });

    test("abort: the caller's signal stops a running task", async () => {
      const ac = new AbortController();
      const started = performance.now();
      setTimeout(() => ac.abort(), 100);
      const r = await ex.execute(tasks.spin(limits), { signal: ac.signal });
      expectFailure(r, "aborted");
      expect(performance.now() - started).toBeLessThan(100 + slackMs);
      expectFailure(await ex.execute(tasks.echo(bytes("x"), limits), { signal: AbortSignal.abort() }), "aborted");
    });

    test("output cap: a task writing without end is stopped", async () => {
      expectFailure(await ex.execute(tasks.flood({ ...limits, outputBytes: 4096 })), "output-too-large");
    });

    test("output cap: output one byte over the limit is refused, at the limit accepted", async () => {
      const input = new Uint8Array(2048).fill(0x61);
      expectFailure(await ex.execute(tasks.echo(input, { ...limits, outputBytes: 2047 })), "output-too-large");
      const r = await ex.execute(tasks.echo(input, { ...limits, outputBytes: 2048 }));
      expect(r.ok && r.output.byteLength).toBe(2048);
    });
  });

  describe(`executor compliance: ${name} lifecycle`, () => {
    test("execute before start throws ExecutorNotRunningError", async () => {
      const ex = await makeExecutor();
      await expect(ex.execute(tasks.echo(bytes("x"), limits))).rejects.toBeInstanceOf(ExecutorNotRunningError);
    });

    test("stop aborts running tasks, is bounded, and later execute throws", async () => {
      const ex = await makeExecutor();
      await ex.start();
      const running = ex.execute(tasks.spin(limits));
      await Bun.sleep(100);
      const started = performance.now();
      await ex.stop();
      expectFailure(await running, "aborted");
      expect(performance.now() - started).toBeLessThan(slackMs);
      await expect(ex.execute(tasks.echo(bytes("x"), limits))).rejects.toBeInstanceOf(ExecutorNotRunningError);
      await ex.stop();
    });
  });
}
