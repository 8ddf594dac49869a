/**
 * The result every verifier in attest/ returns: the list of checks it made, in order, and either the
 * claims it established or the name of the check that failed. Verifiers never throw for bad evidence.
 */
import { AttestationError, MalformedInputError } from "../plugins/sdk/errors.ts";

export type Check = { name: string; ok: boolean; detail?: string };

export type Verdict<T> =
  | { ok: true; checks: Check[]; claims: T }
  | { ok: false; checks: Check[]; failed: string; error: string };

/** Thrown inside a verifier body by `Checks.require`; turned into a failed Verdict by `runChecks`. */
class CheckFailed extends Error {
  constructor(readonly check: string, message: string) {
    super(message);
  }
}

/** Accumulates the checks a verifier makes. */
export class Checks {
  constructor(readonly list: Check[] = [], private readonly prefix = "") {}

  /** A view that records into the same list with names prefixed `prefix.`. */
  sub(prefix: string): Checks {
    return new Checks(this.list, `${this.prefix}${prefix}.`);
  }

  pass(name: string, detail?: string): void {
    name = this.prefix + name;
    this.list.push(detail === undefined ? { name, ok: true } : { name, ok: true, detail });
  }

  /** Records the check; on failure stops the verifier with that check named as the failure. */
  require(name: string, ok: boolean, detail: string): void {
    if (ok) {
      this.pass(name, detail);
      return;
    }
    name = this.prefix + name;
    this.list.push({ name, ok: false, detail });
    throw new CheckFailed(name, detail);
  }

  fail(name: string, detail: string): never {
    name = this.prefix + name;
    this.list.push({ name, ok: false, detail });
    throw new CheckFailed(name, detail);
  }

  /** Merges the checks of a sub-verification under a prefix; stops on its failure. */
  include<T>(prefix: string, sub: Verdict<T>): T {
    const p = `${this.prefix}${prefix}.`;
    for (const c of sub.checks) this.list.push({ ...c, name: p + c.name });
    if (!sub.ok) throw new CheckFailed(p + sub.failed, sub.error);
    return sub.claims;
  }
}

/**
 * Runs a verifier body. Malformed input becomes a failure of check `structureCheck` (unless the
 * body already named a check); an unexpected exception becomes a failure of check "internal".
 */
export async function runChecks<T>(
  structureCheck: string,
  body: (c: Checks) => T | Promise<T>,
): Promise<Verdict<T>> {
  const c = new Checks();
  try {
    const claims = await body(c);
    return { ok: true, checks: c.list, claims };
  } catch (e) {
    if (e instanceof CheckFailed) return { ok: false, checks: c.list, failed: e.check, error: e.message };
    const check = e instanceof MalformedInputError ? structureCheck : e instanceof AttestationError ? e.check : "internal";
    const error = e instanceof Error ? e.message : String(e);
    c.list.push({ name: check, ok: false, detail: error });
    return { ok: false, checks: c.list, failed: check, error };
  }
}

/** Turns a failed verdict into the SDK's typed error (for callers that prefer exceptions). */
export function verdictError(v: Verdict<unknown>): AttestationError | undefined {
  return v.ok ? undefined : new AttestationError(v.failed, v.error);
}
