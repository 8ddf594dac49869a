/**
 * Token buckets keyed per client/peer, in a bounded LRU table. Each key earns
 * `ratePerSecond` tokens up to `burst`; a request spends `cost` tokens or is
 * refused with the time until it could be afforded. Time comes from `clock`.
 */
import type { Clock } from "../../plugins/sdk/plugin.ts";
import { rateLimitBurstMax, rateLimitKeysMax, rateLimitKeysMaxDefault } from "./constants.ts";

export type TokenBucketOptions = {
  ratePerSecond: number;
  burst: number;
  /** Keys tracked at once; the least recently used is evicted beyond. */
  keysMax?: number;
  clock: Clock;
};

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfterMs: number };

type Bucket = { tokens: number; updatedMs: number };

export class TokenBucketLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly keysMax: number;
  private readonly clock: Clock;
  /** Map iteration order is insertion order: re-inserting on use keeps the least recently used first. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: TokenBucketOptions) {
    const { ratePerSecond, burst, keysMax = rateLimitKeysMaxDefault } = options;
    if (!(Number.isFinite(ratePerSecond) && ratePerSecond > 0)) throw new Error(`TokenBucketLimiter: ratePerSecond must be positive, got ${ratePerSecond}`);
    if (!(Number.isInteger(burst) && burst >= 1 && burst <= rateLimitBurstMax)) throw new Error(`TokenBucketLimiter: burst must be an integer from 1 to ${rateLimitBurstMax}, got ${burst}`);
    if (!(Number.isInteger(keysMax) && keysMax >= 1 && keysMax <= rateLimitKeysMax)) throw new Error(`TokenBucketLimiter: keysMax must be an integer from 1 to ${rateLimitKeysMax}, got ${keysMax}`);
    this.ratePerSecond = ratePerSecond;
    this.burst = burst;
    this.keysMax = keysMax;
    this.clock = options.clock;
  }

  /** Spend `cost` tokens of `key`'s bucket. */
  take(key: string, cost = 1): TakeResult {
    if (!(cost > 0 && cost <= this.burst)) throw new Error(`TokenBucketLimiter: cost must be in (0, ${this.burst}], got ${cost}`);
    const now = this.clock.now();
    const bucket = this.refilled(key, now);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { ok: true, remaining: Math.floor(bucket.tokens) };
    }
    return { ok: false, retryAfterMs: Math.ceil(((cost - bucket.tokens) * 1000) / this.ratePerSecond) };
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  private refilled(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      const elapsedMs = Math.max(0, now - bucket.updatedMs);
      bucket.tokens = Math.min(this.burst, bucket.tokens + (elapsedMs * this.ratePerSecond) / 1000);
      bucket.updatedMs = now;
    } else {
      bucket = { tokens: this.burst, updatedMs: now };
      if (this.buckets.size >= this.keysMax) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    return bucket;
  }
}
