/**
 * A bounded set of execution slots with a bounded wait queue: at most
 * `concurrency` holders, at most `queuedMax` waiters (beyond: `onFull()` is
 * thrown), and a waiter whose signal aborts leaves the queue.
 */
export class Slots {
  #active = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly queuedMax: number,
    private readonly onFull: (queued: number) => Error,
  ) {}

  /** Resolves true when a slot is held, false when `signal` aborted first. */
  acquire(signal: AbortSignal): Promise<boolean> {
    if (this.#active < this.concurrency) {
      this.#active++;
      return Promise.resolve(true);
    }
    if (this.#queue.length >= this.queuedMax) throw this.onFull(this.#queue.length);
    return new Promise<boolean>((resolve) => {
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        this.#active++;
        resolve(true);
      };
      const onAbort = () => {
        const i = this.#queue.indexOf(grant);
        if (i >= 0) this.#queue.splice(i, 1);
        resolve(false);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#queue.push(grant);
    });
  }

  release(): void {
    this.#active--;
    this.#queue.shift()?.();
  }
}
