import { afterAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import { NotFoundError } from "../../plugins/sdk/errors.ts";
import { openRegistry } from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "grey-revoke-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const t0 = new Date("2030-01-01T00:00:00Z");
const attestation: AttestationResult = { format: "tpm2-quote", ok: true, checks: [{ name: "signature", ok: true }], claims: { platform: "tpm2" } };
const member = (peerId: string, now = t0) => ({
  clusterId: "edge-1", org: "acme", region: "eu", peerId, multiaddrs: [], certSerial: "01", certNotAfter: new Date(now.getTime() + 60_000), attestation, now,
});

test("revoke keeps the first reason, hides the member from healthy, and a new join clears it", () => {
  const r = openRegistry(join(root, "a.db"), { heartbeatIntervalMs: 1000 });
  r.recordJoin(member("peer-a"));
  const m = r.revoke("peer-a", "re-attestation failed: policy.pcr.16: changed", t0);
  expect(m.revoked).toEqual({ at: t0, reason: "re-attestation failed: policy.pcr.16: changed" });
  expect(r.revoke("peer-a", "second", new Date(t0.getTime() + 5)).revoked?.reason).toContain("policy.pcr.16");
  expect(r.healthy(t0).items).toEqual([]);
  expect(r.countByState(t0)).toEqual({ healthy: 0, suspect: 0, offline: 0, revoked: 1 });
  expect(r.getByCluster("edge-1")?.revoked?.at).toEqual(t0);
  expect(() => r.revoke("nobody", "x", t0)).toThrow(NotFoundError);
  r.recordJoin(member("peer-b"));
  expect(r.getByCluster("edge-1")?.revoked).toBeUndefined();
  expect(r.healthy(t0).items.map((x) => x.clusterId)).toEqual(["edge-1"]);
  r.close();
});

test("a v1 registry file is migrated (revocation columns added, rows kept)", () => {
  const path = join(root, "v1.db");
  const db = new Database(path, { create: true, strict: true });
  db.exec(`CREATE TABLE members (cluster_id TEXT PRIMARY KEY, org TEXT NOT NULL, region TEXT NOT NULL, peer_id TEXT NOT NULL UNIQUE,
    multiaddrs TEXT NOT NULL, cert_serial TEXT NOT NULL, cert_not_after INTEGER NOT NULL, attestation TEXT NOT NULL, joined_at INTEGER NOT NULL,
    renewed_at INTEGER, last_heartbeat INTEGER, last_seen INTEGER NOT NULL) STRICT;
    INSERT INTO members VALUES ('edge-9','acme','eu','peer-9','[]','01',1,'${JSON.stringify(attestation)}',1,NULL,NULL,1);
    PRAGMA user_version = 1;`);
  db.close();
  const r = openRegistry(path, { heartbeatIntervalMs: 1000 });
  expect(r.getByCluster("edge-9")?.revoked).toBeUndefined();
  expect(r.revoke("peer-9", "gone", t0).revoked?.reason).toBe("gone");
  r.close();
});
