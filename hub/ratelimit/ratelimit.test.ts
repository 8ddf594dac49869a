import { describe, expect, test } from "bun:test";
import { Hono } from "hono";
import { rateLimit, TokenBucketLimiter } from "./index.ts";

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("TokenBucketLimiter", () => {
  test("burst, then refill at the rate, with an exact retry time", () => {
    const c = clock();
    const limiter = new TokenBucketLimiter({ ratePerSecond: 2, burst: 3, clock: c });
    expect([1, 2, 3].map(() => limiter.take("a").ok)).toEqual([true, true, true]);
    expect(limiter.take("a")).toEqual({ ok: false, retryAfterMs: 500 });
    c.advance(499);
    expect(limiter.take("a").ok).toBe(false);
    c.advance(1);
    expect(limiter.take("a")).toEqual({ ok: true, remaining: 0 });
    c.advance(60_000);
    expect(limiter.take("a")).toEqual({ ok: true, remaining: 2 });
  });

  test("one flooding key does not consume others' budget", () => {
    const c = clock();
    const limiter = new TokenBucketLimiter({ ratePerSecond: 1, burst: 5, clock: c });
    let admitted = 0;
    for (let i = 0; i < 10_000; i++) if (limiter.take("flooder").ok) admitted++;
    expect(admitted).toBe(5);
    for (const k of ["b", "c", "d"]) expect([1, 2, 3, 4, 5].every(() => limiter.take(k).ok)).toBe(true);
  });

  test("the key table is bounded: the least recently used key is evicted", () => {
    const c = clock();
    const limiter = new TokenBucketLimiter({ ratePerSecond: 1, burst: 1, keysMax: 2, clock: c });
    limiter.take("a");
    limiter.take("b");
    limiter.take("a"); // a is now the most recently used
    limiter.take("c"); // evicts b
    expect(limiter.size).toBe(2);
    expect(limiter.take("a").ok).toBe(false); // a kept its (empty) bucket
    expect(limiter.take("b").ok).toBe(true); // b was forgotten: a fresh bucket
  });

  test("options are checked at construction", () => {
    const c = clock();
    expect(() => new TokenBucketLimiter({ ratePerSecond: 0, burst: 1, clock: c })).toThrow("ratePerSecond");
    expect(() => new TokenBucketLimiter({ ratePerSecond: 1, burst: 0, clock: c })).toThrow("burst");
    expect(() => new TokenBucketLimiter({ ratePerSecond: 1, burst: 1, keysMax: 0, clock: c })).toThrow("keysMax");
  });
});

describe("rateLimit middleware", () => {
  test("429 with Retry-After and a JSON error; other clients unaffected", async () => {
    const c = clock();
    const limiter = new TokenBucketLimiter({ ratePerSecond: 0.5, burst: 2, clock: c });
    const mw = rateLimit({ limiter, keyOf: (ctx) => ctx.req.header("x-client") ?? null });
    expect(mw.name).toBe("rateLimit");
    const app = new Hono();
    app.use("*", mw);
    app.get("/x", (ctx) => ctx.text("ok"));
    const get = (client?: string) => app.request("/x", { headers: client ? { "x-client": client } : {} });

    expect((await get("a")).status).toBe(200);
    expect((await get("a")).status).toBe(200);
    const refused = await get("a");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("2");
    expect(await refused.json()).toEqual({ error: { code: "ERR_RATE_LIMITED", message: "rate limit exceeded; retry in 2 s" } });
    expect((await get("b")).status).toBe(200);
    expect((await get()).status).toBe(200); // no key: not limited
    c.advance(2000);
    expect((await get("a")).status).toBe(200);
  });
});
