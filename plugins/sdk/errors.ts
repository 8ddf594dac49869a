/**
 * Typed errors for operating conditions (bad input from the world, unreachable
 * peers, refused credentials). Each class has a stable `name` that tests match
 * on and users can search for, and a stable machine `code`.
 *
 * Programmer errors (broken invariants) are not modelled here: use `assert`.
 */
export class GreyError extends Error {
  /** Stable, searchable error code, e.g. "ERR_TOKEN_EXPIRED". */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
  override get name(): string {
    return this.constructor.name;
  }
}

/** Input that does not parse or does not satisfy its schema. */
export class MalformedInputError extends GreyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_MALFORMED_INPUT", message, options);
  }
}

/** A message larger than the limit for its channel. */
export class MessageTooLargeError extends GreyError {
  constructor(readonly size: number, readonly limit: number) {
    super("ERR_MESSAGE_TOO_LARGE", `message of ${size} bytes exceeds limit of ${limit} bytes`);
  }
}

/** A wire message version this build does not speak. */
export class UnsupportedVersionError extends GreyError {
  constructor(readonly got: unknown, readonly supported: readonly number[]) {
    super("ERR_UNSUPPORTED_VERSION", `unsupported message version ${String(got)} (supported: ${supported.join(", ")})`);
  }
}

/** Credentials were presented but refused (forged, wrong CA, wrong binding). */
export class UnauthorizedError extends GreyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_UNAUTHORIZED", message, options);
  }
}

/** A caller is known but not allowed to do this. */
export class ForbiddenError extends GreyError {
  constructor(message: string) {
    super("ERR_FORBIDDEN", message);
  }
}

export class NotFoundError extends GreyError {
  constructor(message: string) {
    super("ERR_NOT_FOUND", message);
  }
}

/** Join token problems. `reason` is stable. */
export class TokenError extends GreyError {
  constructor(readonly reason: "malformed" | "unknown" | "expired" | "used" | "forged", message: string) {
    super(`ERR_TOKEN_${reason.toUpperCase()}`, message);
  }
}

/** Attestation evidence refused. `check` names the check that failed. */
export class AttestationError extends GreyError {
  constructor(readonly check: string, message: string, options?: { cause?: unknown }) {
    super("ERR_ATTESTATION_FAILED", `${check}: ${message}`, options);
  }
}

/** A plugin broke its contract (bad output, wrong API version, threw at load). */
export class PluginError extends GreyError {
  constructor(readonly plugin: string, message: string, options?: { cause?: unknown }) {
    super("ERR_PLUGIN", `plugin ${plugin}: ${message}`, options);
  }
}

/** A bounded retry loop gave up. */
export class RetriesExhaustedError extends GreyError {
  constructor(what: string, readonly attempts: number, options?: { cause?: unknown }) {
    super("ERR_RETRIES_EXHAUSTED", `${what}: gave up after ${attempts} attempts`, options);
  }
}

/** A bad command line or configuration; every problem is listed with its path. */
export class ConfigError extends GreyError {
  constructor(readonly problems: readonly string[]) {
    super("ERR_CONFIG", problems.join("; "));
  }
}

export class TimeoutError extends GreyError {
  constructor(what: string, ms: number) {
    super("ERR_TIMEOUT", `${what} timed out after ${ms} ms`);
  }
}
