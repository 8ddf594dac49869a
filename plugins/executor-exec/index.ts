/**
 * executor-exec: runs an allow-listed host command, without a shell, with an
 * empty (or configured) environment, stdin = task input, stdout = output.
 * Off unless configured `enabled: true` (every task then fails "disabled").
 *
 * Limits: wall clock (SIGKILL to the command's whole process group), output
 * (stopped at the first byte over), memory (RLIMIT_AS via util-linux
 * `prlimit`, when present; a command that hits it usually fails its
 * allocation and exits non-zero, so it is reported as "crash" with the limit
 * in the detail: the OS does not tell us why a process gave up).
 */
import { accessSync, constants as fsConstants, existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { Subprocess } from "bun";
import { ConfigError } from "../sdk/errors.ts";
import {
  checkExecLimits,
  ExecutorBusyError,
  ExecutorNotRunningError,
  type CommandTask,
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
  argBytesMax,
  argsMax,
  concurrencyMaxDefault,
  cwdDefault,
  inputBytesMax,
  prlimitPathDefault,
  queuedTasksMaxDefault,
  stderrTailBytesMax,
  taskMemoryBytesMax,
  taskOutputBytesMax,
  taskTimeMsMax,
} from "./constants.ts";

export interface ExecExecutorInit {
  /** Default false: running host commands is opt-in. */
  enabled?: boolean;
  /** Absolute paths of the commands tasks may run. Required (non-empty) when enabled. */
  allowedCommands?: readonly string[];
  /** The whole environment commands see. Default: empty. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  concurrency?: number;
  queuedTasksMax?: number;
  limitsMax?: Partial<ExecLimits>;
  /** util-linux prlimit for RLIMIT_AS; null: no memory cap. */
  prlimitPath?: string | null;
}

interface Resolved {
  enabled: boolean;
  allowed: ReadonlySet<string>;
  env: Record<string, string>;
  cwd: string;
  concurrency: number;
  queuedTasksMax: number;
  limitsMax: ExecLimits;
  prlimit: string | undefined;
}

function resolveInit(init: ExecExecutorInit): Resolved {
  const problems: string[] = [];
  const int = (path: string, v: number | undefined, dflt: number, max: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v <= 0 || v > max) problems.push(`executor-exec.${path}: must be an integer in 1..${max}`);
    return v;
  };
  const enabled = init.enabled ?? false;
  const allowed = init.allowedCommands ?? [];
  allowed.forEach((c, i) => {
    if (typeof c !== "string" || !isAbsolute(c)) problems.push(`executor-exec.allowedCommands[${i}]: must be an absolute path`);
  });
  if (enabled && allowed.length === 0) problems.push("executor-exec.allowedCommands: required when enabled (absolute paths)");
  for (const [k, v] of Object.entries(init.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof v !== "string" || v.includes("\0")) problems.push(`executor-exec.env.${k}: invalid variable`);
  }
  const cwd = init.cwd ?? cwdDefault;
  if (!isAbsolute(cwd)) problems.push("executor-exec.cwd: must be an absolute path");
  const prlimitPath = init.prlimitPath === undefined ? prlimitPathDefault : init.prlimitPath;
  const resolved: Resolved = {
    enabled,
    allowed: new Set(allowed),
    env: { ...init.env },
    cwd,
    concurrency: int("concurrency", init.concurrency, concurrencyMaxDefault, 1024),
    queuedTasksMax: int("queuedTasksMax", init.queuedTasksMax, queuedTasksMaxDefault, 1_000_000),
    limitsMax: {
      timeMs: int("limitsMax.timeMs", init.limitsMax?.timeMs, taskTimeMsMax, taskTimeMsMax),
      memoryBytes: int("limitsMax.memoryBytes", init.limitsMax?.memoryBytes, taskMemoryBytesMax, taskMemoryBytesMax),
      outputBytes: int("limitsMax.outputBytes", init.limitsMax?.outputBytes, taskOutputBytesMax, taskOutputBytesMax),
    },
    prlimit: prlimitPath && existsSync(prlimitPath) ? prlimitPath : undefined,
  };
  if (problems.length) throw new ConfigError(problems);
  return resolved;
}

const fail = (reason: ExecFailure["reason"], detail: string, usage?: ExecFailure["usage"]): ExecFailure => ({
  ok: false, reason, detail, ...(usage ? { usage } : {}),
});

export function execExecutor(init: ExecExecutorInit = {}) {
  const cfg = resolveInit(init);
  return (components: ExecutorComponents): Executor => {
    const name = "executor-exec";
    let running = false;
    let stopping = new AbortController();
    const inflight = new Set<Promise<unknown>>();

    const slots = new Slots(cfg.concurrency, cfg.queuedTasksMax, (queued) => new ExecutorBusyError(name, queued));
    const acquire = (signal: AbortSignal) => slots.acquire(signal);
    const release = () => slots.release();

    const check = (task: ExecTask): ExecFailure | undefined => {
      if (task?.kind !== "command") return fail("invalid-module", `executor-exec runs command tasks, not ${String(task?.kind)}`);
      const { path, args } = task.command ?? {};
      if (typeof path !== "string" || !cfg.allowed.has(path)) return fail("invalid-module", `command ${String(path)} is not in allowedCommands`);
      if (!isExecutable(path)) return fail("invalid-module", `command ${path} does not exist or is not executable`);
      if (!Array.isArray(args) || args.length > argsMax) return fail("invalid-module", `args must be an array of at most ${argsMax} strings`);
      for (const a of args) {
        if (typeof a !== "string" || a.includes("\0") || Buffer.byteLength(a) > argBytesMax) return fail("invalid-module", `each argument must be a string of at most ${argBytesMax} bytes without NUL`);
      }
      if (!(task.input instanceof Uint8Array) || task.input.byteLength > inputBytesMax) return fail("invalid-module", `input must be bytes, at most ${inputBytesMax}`);
      const problems = checkExecLimits(task.limits, cfg.limitsMax);
      if (problems.length) return fail("invalid-module", problems.join("; "));
      return undefined;
    };

    async function run(task: CommandTask, signal: AbortSignal): Promise<ExecResult> {
      const { limits } = task;
      const argv = [task.command.path, ...task.command.args];
      const cmd = cfg.prlimit ? [cfg.prlimit, `--as=${limits.memoryBytes}`, "--", ...argv] : argv;
      const started = performance.now();
      let proc: Subprocess<Uint8Array, "pipe", "pipe">;
      try {
        proc = Bun.spawn(cmd, { stdin: task.input, stdout: "pipe", stderr: "pipe", env: cfg.env, cwd: cfg.cwd, detached: true });
      } catch (err) {
        return fail("invalid-module", `cannot start ${task.command.path}: ${(err as Error).message}`);
      }
      let stopped: "timeout" | "aborted" | "output-too-large" | undefined;
      const killGroup = (why: typeof stopped) => {
        stopped ??= why;
        try {
          process.kill(-proc.pid, "SIGKILL");
        } catch {
          proc.kill("SIGKILL");
        }
      };
      const timer = setTimeout(() => killGroup("timeout"), limits.timeMs);
      const onAbort = () => killGroup("aborted");
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const [output, stderr] = await Promise.all([
          readCapped(proc.stdout, limits.outputBytes, () => killGroup("output-too-large")),
          readTail(proc.stderr, stderrTailBytesMax),
          proc.exited,
        ]);
        const ru = proc.resourceUsage();
        const usage = {
          cpuMs: ru ? Number(ru.cpuTime.total) / 1000 : 0,
          wallMs: performance.now() - started,
          ...(ru ? { maxRssBytes: ru.maxRSS } : {}),
        };
        if (stopped === "timeout") return fail("timeout", `killed after ${limits.timeMs} ms`, usage);
        if (stopped === "aborted") return fail("aborted", stopping.signal.aborted ? "executor stopped" : "aborted by caller", usage);
        if (stopped === "output-too-large") return fail("output-too-large", `output exceeds ${limits.outputBytes} bytes`, usage);
        const tail = stderr ? `; stderr: ${stderr}` : "";
        if (proc.signalCode) return fail("crash", `killed by ${proc.signalCode} (RLIMIT_AS ${cfg.prlimit ? limits.memoryBytes : "unset"})${tail}`, usage);
        if (proc.exitCode !== 0) return fail("crash", `exit code ${proc.exitCode}${tail}`, usage);
        return { ok: true, output, usage };
      } finally {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        // A command's leftover background children die with it.
        try {
          process.kill(-proc.pid, "SIGKILL");
        } catch {
          // Group already gone.
        }
      }
    }

    return {
      name,
      kind: "executor",
      apiVersion: PLUGIN_API_VERSION,
      accepts: ["command"],

      async start() {
        if (running) return;
        stopping = new AbortController();
        running = true;
        if (cfg.enabled && !cfg.prlimit) components.logger.warn("executor-exec: prlimit not found, commands run without a memory cap");
      },

      async stop() {
        if (!running) return;
        running = false;
        stopping.abort();
        await Promise.allSettled([...inflight]);
      },

      async execute(task, options = {}) {
        if (!running) throw new ExecutorNotRunningError(name);
        if (!cfg.enabled) return fail("disabled", "executor-exec is disabled (set enabled: true and allowedCommands)");
        const bad = check(task);
        if (bad) return bad;
        const signal = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal;
        if (signal.aborted) return fail("aborted", "aborted before start");
        if (!(await acquire(signal))) return fail("aborted", "aborted while queued");
        const p = run(task as CommandTask, signal);
        inflight.add(p);
        try {
          return await p;
        } finally {
          inflight.delete(p);
          release();
        }
      },
    };
  };
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Reads a stream up to `max` bytes; one byte more calls `onOverflow` and stops keeping data. */
async function readCapped(stream: ReadableStream<Uint8Array>, max: number, onOverflow: () => void): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    if (total + chunk.byteLength > max) {
      onOverflow();
      total = max + 1;
      break;
    }
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  if (total > max) return new Uint8Array();
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

async function readTail(stream: ReadableStream<Uint8Array>, max: number): Promise<string> {
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) tail = (tail + decoder.decode(chunk, { stream: true })).slice(-max);
  return tail.replace(/\s+/g, " ").trim();
}
