/**
 * executor-wasm: runs WASI command modules in runner children of the host
 * executable, with a wall-clock deadline (SIGKILL), a memory cap (the
 * module's memory maximum, rewritten; RLIMIT_AS as a backstop) and an output
 * cap. See README.md for the contract and what each limit means.
 */
import { ConfigError } from "../sdk/errors.ts";
import {
  checkExecLimits,
  ExecutorBusyError,
  ExecutorNotRunningError,
  type ExecFailure,
  type ExecLimits,
  type ExecResult,
  type ExecTask,
  type Executor,
  type ExecutorComponents,
} from "../sdk/executor.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { Slots } from "../sdk/slots.ts";
import {
  childAddressSpaceBaseBytes,
  childAddressSpacePerTaskByte,
  childIdleTimeoutMs,
  childReadyTimeoutMs,
  concurrencyMaxDefault,
  inputBytesMax,
  moduleBytesMax,
  prlimitPathDefault,
  queuedTasksMaxDefault,
  taskMemoryBytesMax,
  taskOutputBytesMax,
  taskTimeMsMax,
  tasksPerChildMaxDefault,
} from "./constants.ts";
import { RunnerChild } from "./runner.ts";
import { runnerCommand } from "./spawn.ts";

export { maybeRunWasmChild } from "./child.ts";
export { WASM_CHILD_FLAG } from "./constants.ts";

export interface WasmExecutorInit {
  /** Tasks running at once, one child each. */
  concurrency?: number;
  /** Tasks waiting for a child. Beyond: ExecutorBusyError. */
  queuedTasksMax?: number;
  /** Keep children between tasks (fast) or start one per task (strongest isolation). Default true. */
  reuseChildren?: boolean;
  /** Tasks one warm child runs before it is replaced. */
  tasksPerChildMax?: number;
  /** Largest limits a task may ask for. */
  limitsMax?: Partial<ExecLimits>;
  /** util-linux prlimit for the RLIMIT_AS backstop; null: no backstop. */
  prlimitPath?: string | null;
  /** Override the child command (tests, unusual packaging). Default: see spawn.ts. */
  runnerCommand?: string[];
}

interface Resolved {
  concurrency: number;
  queuedTasksMax: number;
  reuseChildren: boolean;
  tasksPerChildMax: number;
  limitsMax: ExecLimits;
  command: string[];
}

function resolveInit(init: WasmExecutorInit): Resolved {
  const problems: string[] = [];
  const int = (path: string, v: number | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v <= 0 || v > max) problems.push(`executor-wasm.${path}: must be an integer in 1..${max}`);
    return v;
  };
  const limitsMax: ExecLimits = {
    timeMs: int("limitsMax.timeMs", init.limitsMax?.timeMs, taskTimeMsMax, taskTimeMsMax),
    memoryBytes: int("limitsMax.memoryBytes", init.limitsMax?.memoryBytes, taskMemoryBytesMax, taskMemoryBytesMax),
    outputBytes: int("limitsMax.outputBytes", init.limitsMax?.outputBytes, taskOutputBytesMax, taskOutputBytesMax),
  };
  const resolved: Resolved = {
    concurrency: int("concurrency", init.concurrency, concurrencyMaxDefault, 256),
    queuedTasksMax: int("queuedTasksMax", init.queuedTasksMax, queuedTasksMaxDefault, 1_000_000),
    reuseChildren: init.reuseChildren ?? true,
    tasksPerChildMax: int("tasksPerChildMax", init.tasksPerChildMax, tasksPerChildMaxDefault),
    limitsMax,
    command:
      init.runnerCommand ??
      runnerCommand({
        prlimitPath: init.prlimitPath === undefined ? prlimitPathDefault : init.prlimitPath,
        addressSpaceBytes: childAddressSpaceBaseBytes + childAddressSpacePerTaskByte * limitsMax.memoryBytes,
      }),
  };
  if (problems.length) throw new ConfigError(problems);
  return resolved;
}

const fail = (reason: ExecFailure["reason"], detail: string, wallMs?: number): ExecFailure => ({
  ok: false,
  reason,
  detail,
  ...(wallMs === undefined ? {} : { usage: { cpuMs: 0, wallMs } }),
});

export function wasmExecutor(init: WasmExecutorInit = {}) {
  const cfg = resolveInit(init);
  return (components: ExecutorComponents): Executor => {
    const { logger } = components;
    const name = "executor-wasm";
    let running = false;
    let stopping = new AbortController();
    const idle: RunnerChild[] = [];
    const live = new Set<RunnerChild>();
    const idleTimers = new Map<RunnerChild, ReturnType<typeof setTimeout>>();

    const spawnChild = (): RunnerChild => {
      const c = new RunnerChild(cfg.command, childReadyTimeoutMs);
      live.add(c);
      void c.exited.then(() => live.delete(c));
      return c;
    };

    const takeChild = (): RunnerChild => {
      while (idle.length) {
        const c = idle.pop()!;
        clearTimeout(idleTimers.get(c));
        idleTimers.delete(c);
        if (c.alive) return c;
      }
      return spawnChild();
    };

    const giveBack = (c: RunnerChild): void => {
      if (!running || !cfg.reuseChildren || !c.alive || c.tasksRun >= cfg.tasksPerChildMax) return c.kill();
      const t = setTimeout(() => {
        idleTimers.delete(c);
        const i = idle.indexOf(c);
        if (i >= 0) idle.splice(i, 1);
        c.kill();
      }, childIdleTimeoutMs);
      t.unref?.();
      idleTimers.set(c, t);
      idle.push(c);
    };

    const slots = new Slots(cfg.concurrency, cfg.queuedTasksMax, (queued) => new ExecutorBusyError(name, queued));
    const acquire = (signal: AbortSignal) => slots.acquire(signal);
    const release = () => slots.release();

    const check = (task: ExecTask): ExecFailure | undefined => {
      if (task?.kind !== "wasm") return fail("invalid-module", `executor-wasm runs wasm tasks, not ${String(task?.kind)}`);
      if (!(task.module instanceof Uint8Array)) return fail("invalid-module", "module must be bytes");
      if (task.module.byteLength > moduleBytesMax) return fail("invalid-module", `module of ${task.module.byteLength} bytes exceeds ${moduleBytesMax}`);
      if (!(task.input instanceof Uint8Array)) return fail("invalid-module", "input must be bytes");
      if (task.input.byteLength > inputBytesMax) return fail("invalid-module", `input of ${task.input.byteLength} bytes exceeds ${inputBytesMax}`);
      const problems = checkExecLimits(task.limits, cfg.limitsMax);
      if (problems.length) return fail("invalid-module", problems.join("; "));
      return undefined;
    };

    async function runOn(child: RunnerChild, task: ExecTask & { kind: "wasm" }, signal: AbortSignal): Promise<ExecResult> {
      if (!(await readyUnlessAborted(child, signal))) {
        child.kill();
        return signal.aborted ? fail("aborted", "aborted while starting the runner") : fail("crash", "runner child did not start");
      }
      const started = performance.now();
      const ev = await child.run(
        { module: task.module, input: task.input, memoryBytes: task.limits.memoryBytes, outputBytes: task.limits.outputBytes },
        task.limits.timeMs,
        signal,
      );
      const wallMs = performance.now() - started;
      switch (ev.kind) {
        case "timeout":
          return fail("timeout", `killed after ${task.limits.timeMs} ms`, wallMs);
        case "aborted":
          return fail("aborted", stopping.signal.aborted ? "executor stopped" : "aborted by caller", wallMs);
        case "died":
          return fail("crash", ev.detail, wallMs);
        case "result": {
          const m = ev.message;
          const usage = { cpuMs: m.cpuMs, wallMs, maxRssBytes: m.maxRssBytes };
          if (!m.outcome.ok) return { ok: false, reason: m.outcome.reason, detail: m.outcome.detail, usage };
          if (m.outcome.output.byteLength > task.limits.outputBytes) {
            child.kill();
            return fail("output-too-large", "runner returned more output than allowed", wallMs);
          }
          return { ok: true, output: m.outcome.output, usage };
        }
      }
    }

    return {
      name,
      kind: "executor",
      apiVersion: PLUGIN_API_VERSION,
      accepts: ["wasm"],

      async start() {
        if (running) return;
        stopping = new AbortController();
        running = true;
        logger.debug("executor-wasm started", { command: cfg.command.join(" "), concurrency: cfg.concurrency });
      },

      async stop() {
        if (!running) return;
        running = false;
        stopping.abort();
        for (const t of idleTimers.values()) clearTimeout(t);
        idleTimers.clear();
        idle.length = 0;
        const children = [...live];
        for (const c of children) c.kill();
        await Promise.all(children.map((c) => c.exited));
      },

      async execute(task, options = {}) {
        if (!running) throw new ExecutorNotRunningError(name);
        const bad = check(task);
        if (bad) return bad;
        const signal = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal;
        if (signal.aborted) return fail("aborted", "aborted before start");
        if (!(await acquire(signal))) return fail("aborted", "aborted while queued");
        const child = takeChild();
        try {
          const result = await runOn(child, task as ExecTask & { kind: "wasm" }, signal);
          if (!result.ok) logger.debug("wasm task failed", { id: task.id, reason: result.reason, detail: result.detail });
          return result;
        } finally {
          giveBack(child);
          release();
        }
      },
    };
  };
}

/** Resolves the child's readiness, or false as soon as `signal` aborts (listener removed either way). */
function readyUnlessAborted(child: RunnerChild, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    void child.ready.then((ok) => {
      signal.removeEventListener("abort", onAbort);
      resolve(ok);
    });
  });
}
