/**
 * One runner child seen from the parent: spawn, wait for ready, run a task
 * with a wall-clock deadline, SIGKILL. Every way the child can go wrong ends
 * in a settled promise, never in a dead host.
 */
import type { Subprocess } from "bun";
import { ChildMessage, type ResultMessage, type RunRequest } from "./protocol.ts";

export type RunnerEvent =
  | { kind: "result"; message: ResultMessage }
  | { kind: "timeout" }
  | { kind: "aborted" }
  | { kind: "died"; detail: string };

const STDERR_TAIL_BYTES = 1024;

export class RunnerChild {
  readonly #proc: Subprocess<"ignore", "ignore", "pipe">;
  readonly ready: Promise<boolean>;
  readonly exited: Promise<void>;
  tasksRun = 0;
  #seq = 0;
  #waiter: ((m: ChildMessage | { type: "exit" }) => void) | undefined;
  #readyResolve!: (ok: boolean) => void;
  #stderrTail = "";
  #dead = false;
  #killed = false;

  constructor(command: string[], readyTimeoutMs: number) {
    this.ready = new Promise<boolean>((r) => (this.#readyResolve = r));
    this.#proc = Bun.spawn(command, {
      stdio: ["ignore", "ignore", "pipe"],
      env: {},
      cwd: "/",
      serialization: "advanced",
      ipc: (raw) => this.#onMessage(raw),
    });
    this.exited = this.#proc.exited.then(() => {
      this.#dead = true;
      this.#readyResolve(false);
      this.#waiter?.({ type: "exit" });
    });
    void this.#drainStderr();
    const t = setTimeout(() => this.#readyResolve(false), readyTimeoutMs);
    void this.ready.then((ok) => {
      clearTimeout(t);
      if (!ok) this.kill();
    });
  }

  /** False from the moment it is killed, before the exit is observed. */
  get alive(): boolean {
    return !this.#dead && !this.#killed;
  }

  get pid(): number {
    return this.#proc.pid;
  }

  kill(): void {
    if (this.#killed || this.#dead) return;
    this.#killed = true;
    this.#proc.kill("SIGKILL");
  }

  /** Sends one task and settles on its result, the deadline, the signal, or the child's death. */
  run(req: Omit<RunRequest, "type" | "seq">, timeMs: number, signal: AbortSignal): Promise<RunnerEvent> {
    if (this.#waiter) throw new Error("RunnerChild.run while a task is running");
    const seq = ++this.#seq;
    this.tasksRun++;
    return new Promise<RunnerEvent>((resolve) => {
      const finish = (e: RunnerEvent) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#waiter = undefined;
        if (e.kind !== "result") this.kill();
        resolve(e);
      };
      const onAbort = () => finish({ kind: "aborted" });
      const timer = setTimeout(() => finish({ kind: "timeout" }), timeMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiter = (m) => {
        if (m.type === "exit") finish({ kind: "died", detail: this.#deathDetail() });
        else if (m.type === "result" && m.seq === seq) finish({ kind: "result", message: m });
      };
      if (signal.aborted) return onAbort();
      if (this.#dead) return finish({ kind: "died", detail: this.#deathDetail() });
      try {
        this.#proc.send({ type: "run", seq, ...req } satisfies RunRequest);
      } catch (err) {
        finish({ kind: "died", detail: `sending the task failed: ${(err as Error).message}` });
      }
    });
  }

  #onMessage(raw: unknown): void {
    const parsed = ChildMessage.safeParse(raw);
    if (!parsed.success) {
      this.#stderrTail += " [runner sent a malformed message]";
      this.kill();
      return;
    }
    if (parsed.data.type === "ready") this.#readyResolve(true);
    else this.#waiter?.(parsed.data);
  }

  #deathDetail(): string {
    const how = this.#proc.signalCode ? `signal ${this.#proc.signalCode}` : `exit code ${this.#proc.exitCode}`;
    const tail = this.#stderrTail.replace(/\s+/g, " ").trim();
    return `runner child died (${how})${tail ? `: ${tail}` : ""}`;
  }

  async #drainStderr(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.#proc.stderr) {
        this.#stderrTail = (this.#stderrTail + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL_BYTES);
      }
    } catch {
      // The pipe closes with the child; nothing to report beyond what we have.
    }
  }
}
