/** Raised when an invariant of the Raft core does not hold: a programmer error, never an operating one. */
export class AssertionFailure extends Error {
  override get name(): string {
    return "AssertionFailure";
  }
}

export function assert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new AssertionFailure(typeof message === "function" ? message() : message);
}
