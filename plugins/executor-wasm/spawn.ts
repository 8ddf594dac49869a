/**
 * How to start a runner child: the same executable as the host.
 *
 * Compiled (`bun build --compile`): process.execPath is the host binary, its
 * entry lives in /$bunfs/, and its main routes WASM_CHILD_FLAG to the runner:
 *   [execPath, FLAG]
 * From source: process.execPath is bun, which needs a script:
 *   [execPath, runner-main.ts, FLAG]     (or the host's own main, when bundled
 *                                          to one file and runner-main.ts is absent)
 * Either way it is wrapped in `prlimit --as=N` when util-linux is present.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { WASM_CHILD_FLAG } from "./constants.ts";

const RUNNER_ENTRY = join(import.meta.dir, "runner-main.ts");

/** True inside a `bun build --compile` executable (entry points live in Bun's embedded filesystem). */
export function isCompiledBinary(path = import.meta.path): boolean {
  return path.startsWith("/$bunfs/") || /^[A-Z]:[\\/]~BUN[\\/]/.test(path);
}

export interface RunnerCommandOptions {
  /** Address-space limit for the child; omitted or no prlimit binary: none. */
  addressSpaceBytes?: number;
  /** util-linux prlimit; null disables the wrapper. */
  prlimitPath?: string | null;
  compiled?: boolean;
}

export function runnerCommand(options: RunnerCommandOptions = {}): string[] {
  const compiled = options.compiled ?? isCompiledBinary();
  const entry = existsSync(RUNNER_ENTRY) ? RUNNER_ENTRY : Bun.main;
  const base = compiled ? [process.execPath, WASM_CHILD_FLAG] : [process.execPath, entry, WASM_CHILD_FLAG];
  const prlimit = options.prlimitPath;
  if (!prlimit || options.addressSpaceBytes === undefined || !existsSync(prlimit)) return base;
  return [prlimit, `--as=${options.addressSpaceBytes}`, ...base];
}
