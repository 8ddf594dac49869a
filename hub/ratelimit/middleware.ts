/**
 * Hono middleware: one token bucket per client key. Over budget: 429 with
 * `Retry-After` (whole seconds) and `{ error: { code: "ERR_RATE_LIMITED", message } }`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { RateLimitedError } from "./errors.ts";
import type { TokenBucketLimiter } from "./token-bucket.ts";

export type RateLimitOptions = {
  limiter: TokenBucketLimiter;
  /** The client's key: its federation identity, peer id or address. Return null to skip limiting. */
  keyOf: (c: Context) => string | null;
  /** Tokens one request costs (default 1). */
  cost?: number;
};

export function rateLimit(options: RateLimitOptions): MiddlewareHandler {
  const { limiter, keyOf, cost = 1 } = options;
  if (typeof keyOf !== "function") throw new Error("rateLimit: keyOf must be a function");
  if (!(cost > 0 && cost <= limiter.burst)) throw new Error(`rateLimit: cost must be in (0, ${limiter.burst}], got ${cost}`);

  return async function rateLimit(c, next) {
    const key = keyOf(c);
    if (key === null) return next();
    const result = limiter.take(key, cost);
    if (result.ok) return next();
    const err = new RateLimitedError(key, result.retryAfterMs);
    return c.json({ error: { code: err.code, message: err.message } }, 429, {
      "retry-after": String(Math.max(1, Math.ceil(result.retryAfterMs / 1000))),
    });
  };
}
