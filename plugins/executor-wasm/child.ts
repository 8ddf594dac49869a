/**
 * The runner child: the same executable as the host, started with
 * WASM_CHILD_FLAG. It runs one task at a time from its parent over IPC and
 * holds nothing the parent needs, so the parent can SIGKILL it at any moment
 * (the only way to stop a WebAssembly infinite loop under Bun).
 */
import { orphanCheckIntervalMs, WASM_CHILD_FLAG } from "./constants.ts";
import type { ChildMessage, RunRequest } from "./protocol.ts";
import { runWasi } from "./wasi.ts";

/**
 * Call first thing in the host binary's main, before any CLI parsing:
 *
 *   if (await maybeRunWasmChild(process.argv)) process.exit(0);
 *
 * Not a runner invocation: resolves false at once. A runner invocation: serves
 * tasks until the parent disconnects, then exits the process (the promise
 * does not settle before that). The flag is looked for where a compiled
 * binary (`argv[1]` is its /$bunfs entry) and a source run (`bun entry.ts`)
 * put it: argv[1] or argv[2].
 */
export function maybeRunWasmChild(argv: readonly string[] = process.argv): Promise<boolean> {
  if (argv[1] !== WASM_CHILD_FLAG && argv[2] !== WASM_CHILD_FLAG) return Promise.resolve(false);
  if (typeof process.send !== "function") {
    console.error(`${WASM_CHILD_FLAG} is internal: it runs only as a child of the executor (no IPC channel)`);
    process.exit(2);
  }
  return new Promise<boolean>(() => serve());
}

function send(msg: ChildMessage): void {
  process.send!(msg);
}

/**
 * A module spinning in WASM never yields to the event loop, so the IPC
 * "disconnect" cannot end an orphaned child. A watchdog thread can: when the
 * parent is gone (we are re-parented), it SIGKILLs this process. It is an
 * inline (blob) worker, so compiled binaries need no extra entrypoint.
 */
function startOrphanWatchdog(): void {
  const code = `const parent = ${process.ppid};
setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, "SIGKILL"); }, ${orphanCheckIntervalMs});`;
  const worker = new Worker(URL.createObjectURL(new Blob([code], { type: "application/javascript" })));
  worker.unref();
}

function serve(): void {
  startOrphanWatchdog();
  process.on("message", (raw: unknown) => {
    const req = raw as RunRequest;
    if (req?.type !== "run") return;
    const cpu0 = process.cpuUsage();
    const outcome = runWasi(req.module, req.input, { memoryBytes: req.memoryBytes, outputBytes: req.outputBytes });
    const cpu = process.cpuUsage(cpu0);
    send({
      type: "result",
      seq: req.seq,
      outcome,
      cpuMs: (cpu.user + cpu.system) / 1000,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    });
  });
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready" });
}
