/**
 * Hostile input on the hub's protocol streams, from a real libp2p node in
 * this process: garbage, truncated and oversized CBOR, unknown versions,
 * heartbeats from non-members. Each gets an error reply or a reset, and the
 * hub keeps serving a real agent throughout.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pemToDer } from "../../plugins/sdk/identity.ts";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import { createMeshNode, type MeshNode } from "../../plugins/mesh-libp2p/node.ts";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { wireMessageBytesMax } from "../../plugins/sdk/limits.ts";
import { PROTOCOL_HEARTBEAT, PROTOCOL_JOIN, PROTOCOL_PEER, PROTOCOL_RENEW } from "../../plugins/sdk/wire.ts";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll,
  tempDir, waitFor, type Daemon, type HubRun,
} from "./harness.ts";

let hubDir: string;
let hub: Daemon & { info: HubRun };
let agentDir: string;
let client: MeshNode;

beforeAll(async () => {
  requireBinaries();
  hubDir = tempDir("grey-hub-");
  await initHub(hubDir);
  hub = await startHub(hubDir, ["--heartbeat-interval", "500ms"]);
  agentDir = tempDir("grey-agent-");
  const token = await createToken(hubDir, "steady", "grey", "eu-west");
  expect((await run(agentBin, ["join", token, "--data-dir", agentDir])).exitCode).toBe(0);
  startAgent(agentDir);
  client = await createMeshNode({ privateKey: await generateKeyPair("Ed25519"), listen: [], dhtMode: "client" });
  await client.dial(multiaddr(hub.info.multiaddrs[0]!));
});

afterAll(async () => {
  await client?.stop();
  await stopAll();
});

/** Send raw frames on a fresh stream and return the decoded reply (or the failure). */
async function exchange(protocol: string, frames: Uint8Array[], rawLengthPrefix?: Uint8Array): Promise<{ reply?: Record<string, unknown>; error?: string }> {
  const stream = await client.dialProtocol(peerIdFromString(hub.info.peerId), protocol, { signal: AbortSignal.timeout(5000) });
  const lp = lpStream(stream, { maxDataLength: wireMessageBytesMax * 4 });
  try {
    if (rawLengthPrefix) stream.send(rawLengthPrefix);
    for (const f of frames) await lp.write(f);
    const reply = await lp.read({ signal: AbortSignal.timeout(5000) });
    return { reply: decodeCbor(reply.subarray()) as Record<string, unknown> };
  } catch (err) {
    return { error: (err as Error).message };
  } finally {
    stream.abort(new Error("done"));
  }
}

test("garbage CBOR gets ERR_MALFORMED_INPUT", async () => {
  const r = await exchange(PROTOCOL_JOIN, [new Uint8Array([0xff, 0xfe, 0x00, 0x13])]);
  expect(r.reply).toMatchObject({ type: "error", code: "ERR_MALFORMED_INPUT" });
});

test("truncated message gets ERR_MALFORMED_INPUT", async () => {
  const full = encodeCbor({ v: 1, type: "join-hello", tokenId: "abcdef" });
  const r = await exchange(PROTOCOL_JOIN, [full.subarray(0, full.byteLength - 3)]);
  expect(r.reply).toMatchObject({ type: "error", code: "ERR_MALFORMED_INPUT" });
});

test("unknown message version gets ERR_UNSUPPORTED_VERSION", async () => {
  const r = await exchange(PROTOCOL_JOIN, [encodeCbor({ v: 9, type: "join-hello", tokenId: "x" })]);
  expect(r.reply).toMatchObject({ type: "error", code: "ERR_UNSUPPORTED_VERSION" });
});

test("oversized frame is refused before it is read", async () => {
  const big = new Uint8Array(wireMessageBytesMax + 1024);
  const r = await exchange(PROTOCOL_JOIN, [big]);
  // either an error reply or a reset: never a hang, never a crash
  if (r.reply) expect(r.reply).toMatchObject({ type: "error", code: "ERR_MESSAGE_TOO_LARGE" });
  else expect(r.error).toBeString();
});

test("a length prefix promising 4 GiB is refused", async () => {
  const r = await exchange(PROTOCOL_JOIN, [], new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
  if (r.reply) expect(r.reply).toMatchObject({ type: "error" });
  else expect(r.error).toBeString();
});

test("heartbeat and renewal from a non-member are refused", async () => {
  const hb = await exchange(PROTOCOL_HEARTBEAT, [encodeCbor({ v: 1, type: "heartbeat", seq: 1, multiaddrs: [] })]);
  expect(hb.reply).toMatchObject({ type: "error", code: "ERR_UNAUTHORIZED" });
  const rn = await exchange(PROTOCOL_RENEW, [encodeCbor({ v: 1, type: "renew-hello" })]);
  expect(rn.reply).toMatchObject({ type: "error", code: "ERR_UNAUTHORIZED" });
});

test("a flood of bad streams does not disturb the member or the API", async () => {
  await waitFor("agent heartbeating", () => (agentStatus(agentDir)?.heartbeatsSent ?? 0) > 0 || undefined);
  const before = agentStatus(agentDir)!.heartbeatsSent;
  const replies = [];
  for (let round = 0; round < 3; round++) {
    replies.push(...(await Promise.all(Array.from({ length: 40 }, (_, i) => exchange(PROTOCOL_JOIN, [new Uint8Array([i, 0xff, 0xff])])))));
  }
  // the flooding peer exhausts its own per-peer budget; the member's budget is its own
  expect(replies.some((r) => r.reply?.code === "ERR_RATE_LIMITED")).toBe(true);
  await waitFor("heartbeats continue", () => (agentStatus(agentDir)!.heartbeatsSent > before + 1 ? true : undefined));
  const r = await api(hub.info.api, "/v1/clusters/steady", adminCreds(hubDir));
  expect(r.body).toMatchObject({ state: "healthy" });
  expect(hub.proc.exitCode).toBeNull();
});

describe("direct peer sessions check the other side's certificate and peer id", () => {
  async function hello(cert: Uint8Array) {
    const st = agentStatus(agentDir)!;
    const agentPeer = peerIdFromString(st.peerId);
    await client.dial(multiaddr(`${st.multiaddrs[0]!.replace(/\/p2p\/.*/, "")}/p2p/${st.peerId}`));
    const stream = await client.dialProtocol(agentPeer, PROTOCOL_PEER, { signal: AbortSignal.timeout(5000) });
    const lp = lpStream(stream, { maxDataLength: wireMessageBytesMax });
    try {
      await lp.write(encodeCbor({ v: 1, type: "peer-hello", cert }));
      return decodeCbor((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()) as Record<string, unknown>;
    } finally {
      stream.abort(new Error("done"));
    }
  }

  test("a stolen member certificate (bound to another peer id) is refused", async () => {
    const stolen = pemToDer(readFileSync(join(agentDir, "tls", "cert.pem"), "utf8"));
    const r = await hello(stolen);
    expect(r).toMatchObject({ type: "error", code: "ERR_UNAUTHORIZED" });
    expect(String(r.message)).toMatch(/does not bind the connected peer id/);
  });

  test("a certificate from another federation, and a non-member certificate, are refused", async () => {
    const other = tempDir("grey-other-");
    await initHub(other);
    const foreign = pemToDer(readFileSync(join(other, "admin", "cert.pem"), "utf8"));
    expect(await hello(foreign)).toMatchObject({ type: "error", code: "ERR_UNAUTHORIZED" });
    const hubCert = pemToDer(readFileSync(join(hubDir, "tls", "hub.pem"), "utf8"));
    expect(await hello(hubCert)).toMatchObject({ type: "error", code: "ERR_UNAUTHORIZED" });
    expect(await hello(new Uint8Array([1, 2, 3]))).toMatchObject({ type: "error" });
  });
});
