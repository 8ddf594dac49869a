/**
 * Bounds and defaults of the command executor. Units last. Each says what
 * happens when it is reached.
 */

/** Largest per-task limits a caller may ask for. Above: the task fails "invalid-module". */
export const taskTimeMsMax = 60 * 60_000;
export const taskMemoryBytesMax = 8 * 1024 * 1024 * 1024;
export const taskOutputBytesMax = 64 * 1024 * 1024;
/** Largest input piped to stdin. Larger: "invalid-module". */
export const inputBytesMax = 16 * 1024 * 1024;
/** Arguments per command and bytes per argument. More: "invalid-module". */
export const argsMax = 256;
export const argBytesMax = 4096;
/** Bytes of stderr kept for the failure detail. Beyond: the oldest are dropped. */
export const stderrTailBytesMax = 2048;
/** Commands running at once. */
export const concurrencyMaxDefault = 4;
/** Tasks waiting for a slot. Beyond: `execute` throws ExecutorBusyError. */
export const queuedTasksMaxDefault = 256;
/** util-linux prlimit, used to set RLIMIT_AS = limits.memoryBytes on the command. Absent: no memory cap. */
export const prlimitPathDefault = "/usr/bin/prlimit";
/** Working directory of commands unless configured. */
export const cwdDefault = "/";
