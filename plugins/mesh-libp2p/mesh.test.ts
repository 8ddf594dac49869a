/**
 * Two real libp2p nodes in this process: request/response framing, size
 * limits, timeouts, and large frames through Noise (a Bun regression).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { z } from "zod";
import { MessageTooLargeError } from "../sdk/errors.ts";
import { wireMessageBytesMax } from "../sdk/limits.ts";
import { backoffMs, connectBootstrap, findHubs, provideHub } from "./discovery.ts";
import { createMeshNode, type MeshNode } from "./node.ts";
import { encodeMessage } from "../sdk/codec.ts";
import { frameBytes, PeerBytesTable, peerBytes, peerBytesTrackedMax, RemoteError, request, serve } from "./rpc.ts";

const Echo = z.object({ v: z.literal(1), type: z.literal("echo"), data: z.custom<Uint8Array>((b) => b instanceof Uint8Array) });
let server: MeshNode;
let client: MeshNode;

beforeAll(async () => {
  server = await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" });
  client = await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], dhtMode: "server" });
  await server.handle("/test/echo/1.0.0", serve("/test/echo/1.0.0", async (ch) => {
    const m = await ch.receive(Echo);
    if (m.data.byteLength === 13) throw new MessageTooLargeError(13, 12);
    await ch.send({ type: "echo", data: m.data });
  }));
  await connectBootstrap(client, server.getMultiaddrs().map(String));
});

afterAll(async () => {
  await Promise.all([server?.stop(), client?.stop()]);
});

test("echo of small and large frames (>= 1200 bytes goes through the Bun-safe Noise cipher)", async () => {
  for (const size of [0, 100, 1199, 1200, 5000, 40_000]) {
    const data = crypto.getRandomValues(new Uint8Array(size));
    const out = await request(client, server.peerId, "/test/echo/1.0.0", async (ch) => {
      await ch.send({ type: "echo", data });
      return ch.receive(Echo);
    });
    expect(Buffer.from(out.data).equals(Buffer.from(data))).toBe(true);
  }
});

test("per-peer byte counters match the frames exchanged, both sides", async () => {
  const [c, s] = [client.peerId.toString(), server.peerId.toString()];
  const zero = { sent: 0, received: 0 };
  const before = { client: peerBytes.get(s) ?? zero, server: peerBytes.get(c) ?? zero };
  const data = crypto.getRandomValues(new Uint8Array(3000));
  const msg = { type: "echo", data };
  await request(client, server.peerId, "/test/echo/1.0.0", async (ch) => {
    await ch.send(msg);
    return ch.receive(Echo);
  });
  const frame = frameBytes(encodeMessage(msg).byteLength); // the reply is the same message
  expect(frame).toBe(encodeMessage(msg).byteLength + 2); // 3000+ bytes: a two-byte varint prefix
  for (let i = 0; i < 50 && (peerBytes.get(c)?.sent ?? 0) - before.server.sent < frame; i++) await Bun.sleep(10);
  expect(peerBytes.get(s)).toEqual({ sent: before.client.sent + frame, received: before.client.received + frame });
  expect(peerBytes.get(c)).toEqual({ sent: before.server.sent + frame, received: before.server.received + frame });
});

test("the per-peer table is bounded, least recently active evicted first", () => {
  expect(peerBytesTrackedMax).toBeGreaterThan(0);
  const t = new PeerBytesTable(3);
  for (const p of ["a", "b", "c"]) t.add(p, "sent", 1);
  t.add("a", "received", 5); // a is now the most recent
  t.add("d", "sent", 2); // evicts b
  expect(t.size).toBe(3);
  expect(t.get("b")).toBeUndefined();
  expect(t.get("a")).toEqual({ sent: 1, received: 5 });
  expect(t.get("d")).toEqual({ sent: 2, received: 0 });
  expect(frameBytes(0)).toBe(1);
  expect(frameBytes(127)).toBe(128);
  expect(frameBytes(128)).toBe(130);
});

test("typed errors travel back as RemoteError with their code", async () => {
  const err = await request(client, server.peerId, "/test/echo/1.0.0", async (ch) => {
    await ch.send({ type: "echo", data: new Uint8Array(13) });
    return ch.receive(Echo);
  }).catch((e) => e);
  expect(err).toBeInstanceOf(RemoteError);
  expect((err as RemoteError).code).toBe("ERR_MESSAGE_TOO_LARGE");
});

test("a message over the wire limit is refused by the sender before it leaves", async () => {
  const err = await request(client, server.peerId, "/test/echo/1.0.0", async (ch) => {
    await ch.send({ type: "echo", data: new Uint8Array(wireMessageBytesMax) });
  }).catch((e) => e);
  expect(err).toBeInstanceOf(MessageTooLargeError);
});

test("a silent peer times out instead of hanging", async () => {
  await server.handle("/test/silent/1.0.0", async () => {});
  const started = performance.now();
  const err = await request(client, server.peerId, "/test/silent/1.0.0", (ch) => ch.receive(Echo), 300).catch((e) => e);
  expect(err).toBeInstanceOf(Error);
  expect(performance.now() - started).toBeLessThan(5000);
});

test("provider records: a node finds the other's record under the federation key", async () => {
  const fp = "ab".repeat(32);
  await provideHub(server, fp);
  const found = await findHubs(client, fp, { attempts: 5 });
  expect(found.map((h) => h.peerId.toString())).toContain(server.peerId.toString());
  await expect(findHubs(client, "cd".repeat(32), { attempts: 1 })).rejects.toThrow(/gave up/);
});

test("backoff grows exponentially, with jitter, and is capped", () => {
  expect(backoffMs(0, () => 0)).toBe(125);
  expect(backoffMs(3, () => 1)).toBe(2000);
  expect(backoffMs(30, () => 1)).toBe(5000);
});
