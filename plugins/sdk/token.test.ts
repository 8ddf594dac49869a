import { expect, test } from "bun:test";
import fc from "fast-check";
import { TokenError } from "./errors.ts";
import { decodeJoinToken, encodeJoinToken } from "./token.ts";

const sample = {
  tokenId: "tok1",
  secret: new Uint8Array(32).fill(7),
  caFingerprint: "a".repeat(64),
  hubPeerId: "12D3KooWtest",
  bootstrap: ["/ip4/127.0.0.1/tcp/4001"],
};

test("join token round trip", () => {
  const t = decodeJoinToken(encodeJoinToken(sample));
  expect(t).toEqual({ ...sample, secret: expect.any(Uint8Array) });
  expect([...t.secret]).toEqual([...sample.secret]);
});

test("truncated, corrupted and foreign tokens are TokenError(malformed)", () => {
  const good = encodeJoinToken(sample);
  for (const bad of ["", "hello", good.slice(0, good.length - 5), good.replace("grey1_", "grey2_"), good + "!!", "grey1_" + "A".repeat(20)]) {
    let err: unknown;
    try {
      decodeJoinToken(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenError);
    expect((err as TokenError).reason).toBe("malformed");
  }
});

test("fuzz: random strings never crash the token parser", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      try {
        decodeJoinToken("grey1_" + s);
        return true;
      } catch (e) {
        return e instanceof TokenError;
      }
    }),
    { numRuns: 1000 },
  );
});
