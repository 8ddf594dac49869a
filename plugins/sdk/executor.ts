/**
 * Executors run one delegated task with hard limits and report what happened.
 *
 * A plugin is a factory `(init) => (components) => Executor`. The host calls
 * `start()` once, then `execute()` any number of times (concurrently), then
 * `stop()`. `execute` never throws for anything the task did (bad module,
 * trap, timeout, too much output): those are an `ExecFailure` with a stable
 * `reason`. It throws only for host-side misuse (not started, queue full).
 *
 * Contract version: part of PLUGIN_API_VERSION (sdk/plugin.ts). Adding a
 * failure reason or a task kind is a breaking change for hosts that switch on
 * them exhaustively, so it bumps the API version.
 */
import { GreyError } from "./errors.ts";
import type { HostComponents, PluginMeta } from "./plugin.ts";

/** Hard limits for one task. Each is enforced by the executor, not advisory. */
export interface ExecLimits {
  /** Wall-clock budget from the moment the task starts running. Then: killed, reason "timeout". */
  timeMs: number;
  /** Memory the task may use. Beyond: reason "memory" (how it is measured is per executor; see its README). */
  memoryBytes: number;
  /** Bytes the task may write as output. Beyond: stopped, reason "output-too-large". */
  outputBytes: number;
}

interface TaskBase {
  /** Caller's id, for logs and correlation only. */
  id: string;
  /** Handed to the task as its only input (stdin for both built-in executors). */
  input: Uint8Array;
  limits: ExecLimits;
}

/** A WebAssembly module (WASI preview1 command, see executor-wasm/README.md). */
export interface WasmTask extends TaskBase {
  kind: "wasm";
  module: Uint8Array;
}

/** A host command: absolute path plus arguments, run without a shell. */
export interface CommandTask extends TaskBase {
  kind: "command";
  command: { path: string; args: readonly string[] };
}

export type ExecTask = WasmTask | CommandTask;
export type ExecTaskKind = ExecTask["kind"];

export interface ExecUsage {
  /** CPU time (user + system) the task consumed. */
  cpuMs: number;
  /** Wall-clock time from start of the run to its end. */
  wallMs: number;
  /** Peak resident set of the process that ran the task, when the executor can measure it. */
  maxRssBytes?: number;
}

export interface ExecSuccess {
  ok: true;
  output: Uint8Array;
  usage: ExecUsage;
}

export type ExecFailureReason =
  /** Ran past `limits.timeMs`; it was killed. */
  | "timeout"
  /** Needed more than `limits.memoryBytes`. */
  | "memory"
  /** Trapped, exited non-zero, was killed by a signal, or its sandbox died. */
  | "crash"
  /** The task is not runnable as given: bad bytes, missing entry point, unknown imports, command not allowed, limits out of range. */
  | "invalid-module"
  /** Wrote more than `limits.outputBytes`. */
  | "output-too-large"
  /** This executor is switched off by configuration. */
  | "disabled"
  /** The caller's signal aborted the task. */
  | "aborted";

export const EXEC_FAILURE_REASONS: readonly ExecFailureReason[] = [
  "timeout", "memory", "crash", "invalid-module", "output-too-large", "disabled", "aborted",
];

export interface ExecFailure {
  ok: false;
  reason: ExecFailureReason;
  /** One human-readable line (may include a bounded tail of the task's stderr). */
  detail: string;
  usage?: ExecUsage;
}

export type ExecResult = ExecSuccess | ExecFailure;

export interface Executor extends PluginMeta {
  readonly kind: "executor";
  /** Task kinds this executor runs. A task of another kind fails with "invalid-module". */
  readonly accepts: readonly ExecTaskKind[];
  start(): Promise<void>;
  /** Stops accepting tasks, aborts running ones (they resolve "aborted"), frees children. Bounded. */
  stop(): Promise<void>;
  execute(task: ExecTask, options?: { signal?: AbortSignal }): Promise<ExecResult>;
}

export type ExecutorComponents = Pick<HostComponents, "logger">;
export type ExecutorFactory = (components: ExecutorComponents) => Executor;

/** `execute` called before `start` or after `stop`. */
export class ExecutorNotRunningError extends GreyError {
  constructor(plugin: string) {
    super("ERR_EXECUTOR_NOT_RUNNING", `executor ${plugin} is not started`);
  }
}

/** More tasks waiting than the executor's queue holds. The caller should retry later or elsewhere. */
export class ExecutorBusyError extends GreyError {
  constructor(plugin: string, readonly queued: number) {
    super("ERR_EXECUTOR_BUSY", `executor ${plugin}: ${queued} tasks already queued`);
  }
}

/** Checks limits a caller supplies; returns every problem (empty: valid). */
export function checkExecLimits(limits: ExecLimits, max: ExecLimits): string[] {
  const problems: string[] = [];
  for (const k of ["timeMs", "memoryBytes", "outputBytes"] as const) {
    const v = limits?.[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) problems.push(`limits.${k}: must be a positive integer`);
    else if (v > max[k]) problems.push(`limits.${k}: ${v} exceeds this executor's maximum ${max[k]}`);
  }
  return problems;
}
