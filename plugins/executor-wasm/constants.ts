/**
 * Bounds and defaults of the WebAssembly executor. Units last. Each says what
 * happens when it is reached.
 */

/** argv flag that turns the host binary into a WASM runner child. Internal: not a CLI command. */
export const WASM_CHILD_FLAG = "__grey-wasm-runner";

/** Largest per-task limits a caller may ask for. Above: the task fails "invalid-module". */
export const taskTimeMsMax = 10 * 60_000;
export const taskMemoryBytesMax = 1024 * 1024 * 1024;
export const taskOutputBytesMax = 16 * 1024 * 1024;
/** Largest module accepted. Larger: "invalid-module" without starting a child. */
export const moduleBytesMax = 32 * 1024 * 1024;
/** Largest input accepted. Larger: "invalid-module" without starting a child. */
export const inputBytesMax = 16 * 1024 * 1024;
/** Elements any table may grow to. Beyond: `table.grow` fails inside the module; larger initial: "memory". */
export const tableElementsMax = 1_000_000;
/** Bytes of the task's stderr kept for the failure detail. Beyond: dropped. */
export const stderrBytesMax = 2048;

/** Tasks running at once (one child each). */
export const concurrencyMaxDefault = 2;
/** Tasks waiting for a free child. Beyond: `execute` throws ExecutorBusyError. */
export const queuedTasksMaxDefault = 256;
/** Warm children are reused for this many tasks, then replaced (bounds heap drift). */
export const tasksPerChildMaxDefault = 1_000;
/** A child must report ready within this. Then: killed, task fails "crash". */
export const childReadyTimeoutMs = 10_000;
/** How often a runner checks that its parent is alive. Parent gone: the runner SIGKILLs itself. */
export const orphanCheckIntervalMs = 250;
/** Idle warm children exit after this. */
export const childIdleTimeoutMs = 60_000;

/**
 * RLIMIT_AS backstop for the child (via util-linux `prlimit`, when present):
 * the runtime's own address space plus a multiple of the largest task memory.
 * Coarse by nature (JSC sizes its reservations to the limit); the precise cap
 * is the rewritten module maximum. Reached: the child dies, task fails "memory"/"crash".
 */
export const childAddressSpaceBaseBytes = 1024 * 1024 * 1024;
export const childAddressSpacePerTaskByte = 4;
export const prlimitPathDefault = "/usr/bin/prlimit";
