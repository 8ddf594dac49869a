/** Per-client token-bucket rate limiting with a bounded key table. */
export * from "./constants.ts";
export { RateLimitedError } from "./errors.ts";
export { rateLimit, type RateLimitOptions } from "./middleware.ts";
export { TokenBucketLimiter, type TakeResult, type TokenBucketOptions } from "./token-bucket.ts";
