import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import { ForbiddenError, MalformedInputError, NotFoundError, TokenError } from "../../plugins/sdk/errors.ts";
import { apiPageSizeMax, heartbeatMissedSuspect, multiaddrsPerPeerMax, outstandingTokensMax, tokenTtlMsMax } from "../../plugins/sdk/limits.ts";
import { openRegistry, TokenLimitError, type Registry } from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "grey-registry-"));
const opened: Registry[] = [];
let n = 0;
function fresh(path = join(root, `r${n++}.db`), heartbeatIntervalMs = 1000): Registry {
  const r = openRegistry(path, { heartbeatIntervalMs });
  opened.push(r);
  return r;
}
afterAll(() => {
  for (const r of opened) r.close();
  rmSync(root, { recursive: true, force: true });
});

const t0 = new Date("2030-01-01T00:00:00Z");
const at = (ms: number) => new Date(t0.getTime() + ms);
const scope = { cluster: "edge-7", org: "acme", region: "eu-west" };
const attestation: AttestationResult = { format: "dev", ok: true, checks: [{ name: "sig", ok: true }], claims: { platform: "dev" } };

async function reason(fn: () => unknown): Promise<string | undefined> {
  try {
    fn();
  } catch (err) {
    return err instanceof TokenError ? err.reason : `other:${(err as Error).name}`;
  }
  return undefined;
}

describe("tokens", () => {
  test("create and consume once", async () => {
    const r = fresh();
    const tok = r.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    expect(tok.tokenId).toMatch(/^[0-9a-f]{32}$/);
    expect(tok.secret.byteLength).toBe(32);
    expect(tok.expiresAt).toEqual(at(60_000));
    expect(r.consumeToken(tok.tokenId, tok.secret, at(1000))).toEqual(scope);
    expect(await reason(() => r.consumeToken(tok.tokenId, tok.secret, at(2000)))).toBe("used");
  });

  test("unknown, forged, expired", async () => {
    const r = fresh();
    const tok = r.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    expect(await reason(() => r.consumeToken("00".repeat(16), tok.secret, t0))).toBe("unknown");
    expect(await reason(() => r.consumeToken("'; DROP TABLE tokens; --", tok.secret, t0))).toBe("unknown");
    const wrong = tok.secret.slice();
    wrong[0]! ^= 1;
    expect(await reason(() => r.consumeToken(tok.tokenId, wrong, t0))).toBe("forged");
    expect(await reason(() => r.consumeToken(tok.tokenId, tok.secret.subarray(0, 16), t0))).toBe("forged");
    expect(await reason(() => r.consumeToken(tok.tokenId, tok.secret, at(60_000)))).toBe("expired");
    // Failed attempts do not use the token up.
    expect(r.consumeToken(tok.tokenId, tok.secret, at(59_999))).toEqual(scope);
  });

  test("only the hash of the secret is stored", () => {
    const path = join(root, "hash.db");
    const r = fresh(path);
    const tok = r.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    const db = new Database(path, { readonly: true });
    const row = db.query("SELECT * FROM tokens").get() as Record<string, unknown>;
    db.close();
    expect(Buffer.from(row.secret_hash as Uint8Array).equals(Buffer.from(tok.secret))).toBe(false);
    expect(JSON.stringify(row)).not.toContain(Buffer.from(tok.secret).toString("hex"));
  });

  test("validates ids and ttl, every problem at once", () => {
    const r = fresh();
    expect(() => r.createToken({ cluster: "Edge 7", org: "ACME", region: "eu-west", ttlMs: 1000, now: t0 })).toThrow(/cluster.*org/);
    expect(() => r.createToken({ ...scope, ttlMs: 0, now: t0 })).toThrow(MalformedInputError);
    expect(() => r.createToken({ ...scope, ttlMs: tokenTtlMsMax + 1, now: t0 })).toThrow(MalformedInputError);
    expect(r.createToken({ ...scope, ttlMs: tokenTtlMsMax, now: t0 }).tokenId).toBeDefined();
  });

  test("outstanding tokens are capped; used and expired ones do not count", () => {
    const path = join(root, "cap.db");
    const r = fresh(path);
    // Fill to the limit directly (creating 10k tokens one by one at synchronous=FULL would be slow).
    const db = new Database(path);
    const ins = db.query("INSERT INTO tokens (token_id, secret_hash, cluster_id, org, region, created_at, expires_at) VALUES (?, x'00', 'c', 'o', 'r', 0, ?)");
    db.transaction(() => {
      for (let i = 0; i < outstandingTokensMax - 1; i++) ins.run(`fill${i}`, t0.getTime() + (i === 0 ? 10 : 3600_000));
    })();
    db.close();
    const last = r.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    expect(() => r.createToken({ ...scope, ttlMs: 60_000, now: t0 })).toThrow(TokenLimitError);
    r.consumeToken(last.tokenId, last.secret, t0);
    r.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    expect(() => r.createToken({ ...scope, ttlMs: 60_000, now: t0 })).toThrow(TokenLimitError);
    expect(r.createToken({ ...scope, ttlMs: 60_000, now: at(11) }).tokenId).toBeDefined(); // fill0 expired
    expect(r.purgeExpiredTokens(at(11))).toBe(1);
  });

  test("a second process (separate handle) creates while the hub consumes; one winner per token", async () => {
    const path = join(root, "shared.db");
    const hub = fresh(path);
    const cli = fresh(path);
    const tok = cli.createToken({ ...scope, ttlMs: 60_000, now: t0 });
    const results = [hub, cli].map((r) => {
      try {
        return r.consumeToken(tok.tokenId, tok.secret, t0);
      } catch (err) {
        return (err as TokenError).reason;
      }
    });
    expect(results).toEqual([scope, "used"]);
  });

  test("a real second OS process writes a token the hub then consumes", async () => {
    const path = join(root, "proc.db");
    const hub = fresh(path);
    const script = `
      import { openRegistry } from ${JSON.stringify(join(import.meta.dir, "index.ts"))};
      const r = openRegistry(${JSON.stringify(path)}, { heartbeatIntervalMs: 1000 });
      const t = r.createToken({ cluster: "edge-7", org: "acme", region: "eu-west", ttlMs: 60000, now: new Date(${t0.getTime()}) });
      r.close();
      console.log(JSON.stringify({ id: t.tokenId, secret: Buffer.from(t.secret).toString("hex") }));`;
    const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    const { id, secret } = JSON.parse(out) as { id: string; secret: string };
    expect(hub.consumeToken(id, new Uint8Array(Buffer.from(secret, "hex")), t0)).toEqual(scope);
  });
});

describe("members", () => {
  const join1 = (over: Partial<Parameters<Registry["recordJoin"]>[0]> = {}) => ({
    clusterId: "edge-7",
    org: "acme",
    region: "eu-west",
    peerId: "12D3KooWPeerA",
    multiaddrs: ["/ip4/10.0.0.1/tcp/4001"],
    certSerial: "aa",
    certNotAfter: at(3600_000),
    attestation,
    now: t0,
    ...over,
  });

  test("join, lookups, renewal, heartbeat", () => {
    const r = fresh();
    const m = r.recordJoin(join1());
    expect(m).toMatchObject({ clusterId: "edge-7", org: "acme", peerId: "12D3KooWPeerA", attestation, joinedAt: t0, lastSeen: t0 });
    expect(r.getByCluster("edge-7")).toEqual(m);
    expect(r.getByPeer("12D3KooWPeerA")).toEqual(m);
    expect(r.getByCluster("nope")).toBeUndefined();

    const failed: AttestationResult = { format: "dev", ok: false, checks: [{ name: "sig", ok: false }], failed: "sig", claims: {} };
    const renewed = r.recordRenewal("12D3KooWPeerA", "bb", at(7200_000), failed, at(500));
    expect(renewed).toMatchObject({ certSerial: "bb", certNotAfter: at(7200_000), attestation: failed, renewedAt: at(500), lastSeen: at(500) });

    const hb = r.recordHeartbeat("12D3KooWPeerA", ["/ip4/1.2.3.4/tcp/1"], at(1000));
    expect(hb).toMatchObject({ multiaddrs: ["/ip4/1.2.3.4/tcp/1"], lastHeartbeat: at(1000), lastSeen: at(1000) });
    // An out-of-order older heartbeat does not move lastSeen back.
    expect(r.recordHeartbeat("12D3KooWPeerA", [], at(900)).lastSeen).toEqual(at(1000));

    expect(() => r.recordHeartbeat("unknown", [], t0)).toThrow(NotFoundError);
    expect(() => r.recordRenewal("unknown", "x", t0, attestation, t0)).toThrow(NotFoundError);
    expect(r.counters()).toEqual({ joins: 1, renewals: 1, heartbeats: 2 });
  });

  test("re-join replaces the peer; another org cannot take the cluster id; a peer is one member", () => {
    const r = fresh();
    r.recordJoin(join1());
    r.recordHeartbeat("12D3KooWPeerA", [], at(100));
    const again = r.recordJoin(join1({ peerId: "12D3KooWPeerB", now: at(200) }));
    expect(again).toMatchObject({ peerId: "12D3KooWPeerB", joinedAt: at(200) });
    expect(again.lastHeartbeat).toBeUndefined();
    expect(r.getByPeer("12D3KooWPeerA")).toBeUndefined();
    expect(() => r.recordJoin(join1({ org: "evil", peerId: "12D3KooWPeerC" }))).toThrow(ForbiddenError);
    expect(r.getByCluster("edge-7")!.peerId).toBe("12D3KooWPeerB");
    // Peer B re-joins as another cluster: its old membership ends.
    r.recordJoin(join1({ clusterId: "edge-8", peerId: "12D3KooWPeerB" }));
    expect(r.getByCluster("edge-7")).toBeUndefined();
    expect(r.getByPeer("12D3KooWPeerB")!.clusterId).toBe("edge-8");
    expect(() => r.recordJoin(join1({ clusterId: "Bad Id" }))).toThrow(MalformedInputError);
  });

  test("multiaddrs are capped", () => {
    const r = fresh();
    const many = Array.from({ length: multiaddrsPerPeerMax + 5 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1`);
    expect(r.recordJoin(join1({ multiaddrs: many })).multiaddrs.length).toBe(multiaddrsPerPeerMax);
    expect(r.recordHeartbeat("12D3KooWPeerA", many, t0).multiaddrs.length).toBe(multiaddrsPerPeerMax);
  });

  test("state from heartbeats: healthy, suspect, offline", () => {
    const interval = 1000;
    const r = fresh(undefined, interval);
    r.recordJoin(join1({ clusterId: "a", peerId: "pa" }));
    r.recordJoin(join1({ clusterId: "b", peerId: "pb" }));
    r.recordJoin(join1({ clusterId: "c", peerId: "pc" }));
    const suspectAt = heartbeatMissedSuspect * interval;
    const now = at(2 * suspectAt + 1);
    r.recordHeartbeat("pa", [], at(2 * suspectAt)); // fresh
    r.recordHeartbeat("pb", [], at(suspectAt)); // missed > suspect periods
    // c: only its join at t0, older than twice the suspect threshold
    expect(r.stateOf(r.getByCluster("a")!, now)).toBe("healthy");
    expect(r.stateOf(r.getByCluster("b")!, now)).toBe("suspect");
    expect(r.stateOf(r.getByCluster("c")!, now)).toBe("offline");
    expect(r.countByState(now)).toEqual({ healthy: 1, suspect: 1, offline: 1, revoked: 0 });
    expect(r.healthy(now).items.map((m) => m.clusterId)).toEqual(["a"]);
    expect(r.countByState(t0)).toEqual({ healthy: 3, suspect: 0, offline: 0, revoked: 0 });
  });

  test("paging by cluster id, capped", () => {
    const r = fresh();
    for (let i = 0; i < 25; i++) r.recordJoin(join1({ clusterId: `c-${String(i).padStart(2, "0")}`, peerId: `p${i}` }));
    const first = r.list({ limit: 10 });
    expect(first.items.map((m) => m.clusterId)[0]).toBe("c-00");
    expect(first.next).toBe("c-09");
    const second = r.list({ limit: 10, after: first.next });
    expect(second.items[0]!.clusterId).toBe("c-10");
    const third = r.list({ limit: 10, after: second.next });
    expect(third.items.length).toBe(5);
    expect(third.next).toBeUndefined();
    expect(r.list({ limit: 10 * apiPageSizeMax }).items.length).toBe(25);
    expect(r.list({ limit: 0 }).items.length).toBe(1);
    expect(r.healthy(t0, { limit: 5, after: "c-20" }).items.map((m) => m.clusterId)).toEqual(["c-21", "c-22", "c-23", "c-24"]);
  });

  test("survives reopen: members and counters persist", () => {
    const path = join(root, "persist.db");
    const a = openRegistry(path, { heartbeatIntervalMs: 1000 });
    a.recordJoin(join1());
    a.recordHeartbeat("12D3KooWPeerA", [], at(10));
    a.close();
    const b = fresh(path);
    expect(b.getByCluster("edge-7")!.lastHeartbeat).toEqual(at(10));
    expect(b.counters()).toEqual({ joins: 1, renewals: 0, heartbeats: 1 });
  });
});
