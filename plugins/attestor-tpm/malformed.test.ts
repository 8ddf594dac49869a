/**
 * The TPM (or whatever sits on the other end of the socket) is part of the world: truncated, oversized,
 * garbled or missing responses must surface as TpmError, never as a crash or a hang.
 * These tests need no swtpm: they use scripted transports and a silent TCP server.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createServer, type Server } from "node:net";
import { tpmResponseBytesMax } from "./constants.ts";
import { TpmError } from "./errors.ts";
import { TpmWriter } from "./marshal.ts";
import { decodeRc } from "./rc.ts";
import { parseQuoteInfo } from "./quote.ts";
import { parsePublic } from "./public.ts";
import { Tpm } from "./tpm.ts";
import { tcpTransport, type TpmTransport } from "./transport.ts";

/** A transport that answers every command with the next scripted response. */
function scripted(...responses: Uint8Array[]): TpmTransport {
  return {
    async transmit() {
      const r = responses.shift();
      if (!r) throw new Error("script exhausted");
      return r;
    },
    async close() {},
  };
}

function response(tag: number, rc: number, body: Uint8Array = new Uint8Array(0), sizeDelta = 0): Uint8Array {
  const w = new TpmWriter(8192);
  w.u16(tag).u32(10 + body.length + sizeDelta).u32(rc).bytes(body);
  return w.finish();
}

async function tpmError(p: Promise<unknown>): Promise<TpmError> {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(TpmError);
  return err as TpmError;
}

describe("malformed responses", () => {
  test("a response shorter than its header", async () => {
    const tpm = new Tpm({ transport: scripted(new Uint8Array([0x80, 0x01, 0, 0])) });
    const err = await tpmError(tpm.getRandom(8));
    expect(err.kind).toBe("malformed-response");
    expect(err.name).toBe("TpmError");
    expect(err.code).toBe("ERR_TPM_MALFORMED_RESPONSE");
  });

  test("a header whose size disagrees with the bytes received", async () => {
    const tpm = new Tpm({ transport: scripted(response(0x8001, 0, new Uint8Array([0, 2, 1, 2]), 5)) });
    expect((await tpmError(tpm.getRandom(2))).kind).toBe("malformed-response");
  });

  test("a TPM2B announcing more bytes than the response holds", async () => {
    const tpm = new Tpm({ transport: scripted(response(0x8001, 0, new Uint8Array([0, 40, 1, 2]))) });
    const err = await tpmError(tpm.getRandom(40));
    expect(err.kind).toBe("malformed-response");
    expect(err.message).toContain("truncated");
  });

  test("trailing bytes after the parameters", async () => {
    const tpm = new Tpm({ transport: scripted(response(0x8001, 0, new Uint8Array([0, 2, 1, 2, 9]))) });
    expect((await tpmError(tpm.getRandom(2))).kind).toBe("malformed-response");
  });

  test("a success response with the wrong tag for the command's sessions", async () => {
    const tpm = new Tpm({ transport: scripted(response(0x8002, 0, new Uint8Array([0, 0, 0, 0]))) });
    expect((await tpmError(tpm.getRandom(2))).kind).toBe("malformed-response");
  });

  test("PCR_Read with an absurd digest count does not allocate, it fails", async () => {
    const body = new TpmWriter(64).u32(1).u32(1).u16(0x000b).u8(3).bytes(new Uint8Array([1, 0, 0])).u32(0xffffffff).finish();
    const tpm = new Tpm({ transport: scripted(response(0x8001, 0, body)) });
    expect((await tpmError(tpm.pcrRead({ hash: "sha256", pcrs: [0] }))).kind).toBe("malformed-response");
  });

  test("an error code becomes a typed error with a decoded name", async () => {
    const tpm = new Tpm({ transport: scripted(response(0x8001, 0x09f + 0x140)) });
    const err = await tpmError(tpm.getRandom(2));
    expect(err.kind).toBe("response-code");
    expect(err.rcName).toBe("TPM_RC_INTEGRITY");
    expect(err.decoded?.subject).toEqual({ kind: "parameter", index: 1 });
    expect(err.code).toBe("ERR_TPM_RESPONSE_CODE");
  });

  test("TPM_RC_RETRY is resent a bounded number of times, then surfaced", async () => {
    const retry = () => response(0x8001, 0x922);
    const ok = response(0x8001, 0, new Uint8Array([0, 2, 7, 7]));
    expect(await new Tpm({ transport: scripted(retry(), retry(), ok) }).getRandom(2)).toEqual(new Uint8Array([7, 7]));
    const err = await tpmError(new Tpm({ transport: scripted(...Array.from({ length: 10 }, retry)) }).getRandom(2));
    expect(err.rcName).toBe("TPM_RC_RETRY");
  });

  test("decodeRc names format-0, format-1 and warning codes", () => {
    expect(decodeRc(0x100).name).toBe("TPM_RC_INITIALIZE");
    expect(decodeRc(0x902)).toMatchObject({ name: "TPM_RC_OBJECT_MEMORY", warning: true });
    expect(decodeRc(0x98e)).toMatchObject({ name: "TPM_RC_AUTH_FAIL", subject: { kind: "session", index: 1 } });
    expect(decodeRc(0x18b)).toMatchObject({ name: "TPM_RC_HANDLE", subject: { kind: "handle", index: 1 } });
    expect(decodeRc(0x1ff).name).toBe("TPM_RC_UNKNOWN_0x0bf");
  });

  test("fuzz: random bytes as a response to any command → TpmError, never another exception", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (body, validHeader) => {
        const raw = validHeader ? response(0x8001, 0, body) : body;
        const tpm = new Tpm({ transport: scripted(raw, raw, raw) });
        for (const call of [() => tpm.getRandom(4), () => tpm.pcrRead({ hash: "sha256", pcrs: [0, 1] }), () => tpm.readPublic(0x81000001)]) {
          const err = await call().then(() => undefined, (e) => e);
          if (err !== undefined && !(err instanceof TpmError)) throw err;
        }
      }),
      { numRuns: 300 },
    );
  });

  test("fuzz: truncated or garbled TPMT_PUBLIC / TPMS_ATTEST → TpmError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const parse of [parsePublic, parseQuoteInfo]) {
          try {
            parse(b);
          } catch (err) {
            if (!(err instanceof TpmError)) throw err;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("transport bounds", () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  async function serve(onCommand: (write: (b: Uint8Array) => void) => void): Promise<number> {
    const srv = createServer((sock) => {
      sock.on("data", () => onCommand((b) => sock.write(b)));
      sock.on("error", () => {});
    });
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    return (srv.address() as { port: number }).port;
  }

  test("a TPM that never answers hits the read timeout", async () => {
    const port = await serve(() => {});
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port }), readTimeoutMs: 100 });
    const t0 = performance.now();
    const err = await tpmError(tpm.getRandom(8));
    expect(err.kind).toBe("timeout");
    expect(err.message).toContain("100 ms");
    expect(performance.now() - t0).toBeLessThan(2_000);
    await tpm.close();
  });

  test("the caller's AbortSignal cancels a command in flight", async () => {
    const port = await serve(() => {});
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port }) });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("shutting down")), 50);
    const err = await tpmError(tpm.getRandom(8, { signal: ac.signal }));
    expect(err.kind).toBe("aborted");
    expect(err.message).toContain("shutting down");
    await tpm.close();
  });

  test("a response announcing more than the limit is refused before its body is read", async () => {
    const port = await serve((write) => write(new TpmWriter(10).u16(0x8001).u32(tpmResponseBytesMax + 1).u32(0).finish()));
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port }), readTimeoutMs: 1_000 });
    const err = await tpmError(tpm.getRandom(8));
    expect(err.kind).toBe("too-large");
    await tpm.close();
  });

  test("a response split across TCP segments is reassembled; the connection is reused", async () => {
    const full = response(0x8001, 0, new Uint8Array([0, 3, 1, 2, 3]));
    const port = await serve((write) => {
      write(full.subarray(0, 3));
      setTimeout(() => write(full.subarray(3)), 10);
    });
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port }) });
    expect(await tpm.getRandom(3)).toEqual(new Uint8Array([1, 2, 3]));
    expect(await tpm.getRandom(3)).toEqual(new Uint8Array([1, 2, 3]));
    await tpm.close();
  });

  test("a peer that closes mid-response is a transport error", async () => {
    const srv = createServer((sock) => sock.on("data", () => sock.end(new Uint8Array([0x80, 0x01, 0, 0]))));
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port: (srv.address() as { port: number }).port }) });
    expect((await tpmError(tpm.getRandom(8))).kind).toBe("transport");
    await tpm.close();
  });

  test("nothing listening is a transport error", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    await new Promise((r) => srv.close(r));
    const tpm = new Tpm({ transport: tcpTransport({ host: "127.0.0.1", port }) });
    expect((await tpmError(tpm.getRandom(8))).kind).toBe("transport");
  });

  test("a command larger than the command limit is refused before sending", async () => {
    const tpm = new Tpm({ transport: scripted(), commandBytesMax: 64 });
    const err = await tpmError(tpm.pcrExtend(23, Array.from({ length: 4 }, () => ({ hash: "sha256" as const, digest: new Uint8Array(32) }))));
    expect(err.kind).toBe("too-large");
  });
});
