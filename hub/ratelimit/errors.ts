import { GreyError } from "../../plugins/sdk/errors.ts";

/** A client or peer sent more than its budget; retry after `retryAfterMs`. */
export class RateLimitedError extends GreyError {
  constructor(readonly key: string, readonly retryAfterMs: number) {
    super("ERR_RATE_LIMITED", `rate limit exceeded; retry in ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}
