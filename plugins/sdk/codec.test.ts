import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeCbor, decodeMessage, encodeCbor, encodeMessage } from "./codec.ts";
import { MalformedInputError, MessageTooLargeError, UnsupportedVersionError } from "./errors.ts";
import { wireMessageBytesMax } from "./limits.ts";
import { Heartbeat, JoinRequest } from "./wire.ts";

describe("wire codec", () => {
  test("round trip of a valid message", () => {
    const bytes = encodeMessage({ type: "heartbeat", seq: 7, multiaddrs: ["/ip4/127.0.0.1/tcp/1"] });
    expect(decodeMessage(bytes, Heartbeat)).toEqual({ v: 1, type: "heartbeat", seq: 7, multiaddrs: ["/ip4/127.0.0.1/tcp/1"] });
  });

  test("unknown version, wrong shape, oversize and empty input are typed errors", () => {
    expect(() => decodeMessage(encodeCbor({ v: 2, type: "heartbeat", seq: 1, multiaddrs: [] }), Heartbeat)).toThrow(UnsupportedVersionError);
    expect(() => decodeMessage(encodeCbor({ type: "heartbeat" }), Heartbeat)).toThrow(UnsupportedVersionError);
    expect(() => decodeMessage(encodeCbor({ v: 1, type: "heartbeat", seq: -1, multiaddrs: [] }), Heartbeat)).toThrow(MalformedInputError);
    expect(() => decodeMessage(encodeCbor([1, 2]), Heartbeat)).toThrow(/not a CBOR map/);
    expect(() => decodeMessage(new Uint8Array(wireMessageBytesMax + 1), Heartbeat)).toThrow(MessageTooLargeError);
    expect(() => decodeCbor(new Uint8Array())).toThrow(MalformedInputError);
    expect(() => encodeMessage({ type: "x", pad: new Uint8Array(wireMessageBytesMax) })).toThrow(MessageTooLargeError);
  });

  test("truncations of a valid join request never pass and never crash", () => {
    const full = encodeMessage({
      type: "join-request", tokenId: "t1", secret: new Uint8Array(32), csr: new Uint8Array(300),
      evidence: { format: "dev", data: new Uint8Array(96) }, multiaddrs: [],
    });
    expect(decodeMessage(full, JoinRequest).tokenId).toBe("t1");
    for (let n = 1; n < full.byteLength; n++) {
      expect(() => decodeMessage(full.subarray(0, n), JoinRequest)).toThrow();
      try {
        decodeMessage(full.subarray(0, n), JoinRequest);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
        expect(["MalformedInputError", "UnsupportedVersionError"]).toContain((err as Error).name);
      }
    }
  });

  test("fuzz: arbitrary bytes yield a value or a typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          decodeMessage(bytes, Heartbeat);
        } catch (err) {
          return ["MalformedInputError", "UnsupportedVersionError", "MessageTooLargeError"].includes((err as Error).name);
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});
