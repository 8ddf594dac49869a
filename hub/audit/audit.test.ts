import { afterEach, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { Hono } from "hono";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { AuditLog, auditRoutes, GENESIS_HASH, recordHash, verifyAuditLog, type AuditRecord } from "./index.ts";

const KEY = new Uint8Array(32).fill(7);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A log file with five records, closed so the test can tamper with the file directly. */
function filledLog(): { path: string; publicKey: Uint8Array } {
  const dir = mkdtempSync(join(tmpdir(), "grey-audit-"));
  dirs.push(dir);
  const path = join(dir, "hub.db");
  let t = Date.parse("2024-05-01T00:00:00Z");
  const log = AuditLog.open(path, { signingKey: KEY, clock: { now: () => (t += 1000) } });
  log.append({ kind: "join", actor: "grey://org-a/eu/c1", subject: "grey://org-a/eu/c1", details: { peerId: "12D3KooW", token: "t1" } });
  log.append({ kind: "attestation", actor: "hub", subject: "grey://org-a/eu/c1", details: { format: "tpm", ok: true } });
  log.append({ kind: "agreement-change", actor: "grey://org-a/admin/ops", subject: "agr-1", details: { version: 1 } });
  log.append({ kind: "task-delegation", actor: "hub", subject: "task-9/0", details: { to: "grey://org-b/us/c2" } });
  log.append({ kind: "preemption", actor: "hub", subject: "task-3/1", details: { for: "task-9/0" } });
  const publicKey = log.publicKey;
  log.close();
  return { path, publicKey };
}

function tamper(path: string, sql: string): void {
  const db = new Database(path);
  db.exec(sql);
  db.close();
}

describe("AuditLog", () => {
  test("records chain from the genesis hash, are signed, and verify", () => {
    const { path, publicKey } = filledLog();
    const log = AuditLog.open(path, { signingKey: KEY, clock: { now: () => 0 } });
    const [first, second] = log.page(0, 2) as [AuditRecord, AuditRecord];
    expect(first).toMatchObject({ seq: 1, at: "2024-05-01T00:00:01.000Z", kind: "join", prevHash: GENESIS_HASH, details: { peerId: "12D3KooW", token: "t1" } });
    expect(second.prevHash).toBe(first.hash);
    expect(ed25519.verify(Buffer.from(first.sig, "hex"), Buffer.from(first.hash, "hex"), publicKey)).toBe(true);
    expect(log.verify()).toEqual({ ok: true, count: 5, head: { seq: 5, hash: log.head()!.hash } });
    log.close();
  });

  test("a modified field is detected at its seq", () => {
    const { path, publicKey } = filledLog();
    tamper(path, `UPDATE audit_log SET details = '{"format":"tpm","ok":false}' WHERE seq = 2`);
    expect(verifyAuditLog(path, { publicKeys: [publicKey] })).toEqual({ ok: false, seq: 2, problem: "record 2 does not match its hash (modified)" });
  });

  test("a re-hashed modification is caught by the signature", () => {
    const { path, publicKey } = filledLog();
    const db = new Database(path);
    const row = db.query("SELECT * FROM audit_log WHERE seq = 5").get() as Record<string, string | number>;
    const forged = recordHash({ seq: 5, at: row.at as string, kind: "preemption", actor: "mallory", subject: row.subject as string, details: row.details as string, prevHash: row.prev_hash as string });
    db.query("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 5").run(forged);
    db.close();
    expect(verifyAuditLog(path, { publicKeys: [publicKey] })).toMatchObject({ ok: false, seq: 5, problem: "record 5 has no valid hub signature" });
  });

  test("a deleted row is detected", () => {
    const { path, publicKey } = filledLog();
    tamper(path, "DELETE FROM audit_log WHERE seq = 3");
    expect(verifyAuditLog(path, { publicKeys: [publicKey] })).toEqual({ ok: false, seq: 3, problem: "record 3 is missing (next is 4)" });
  });

  test("a deleted and renumbered tail is detected", () => {
    const { path, publicKey } = filledLog();
    tamper(path, "DELETE FROM audit_log WHERE seq = 3; UPDATE audit_log SET seq = seq - 1 WHERE seq > 3");
    expect(verifyAuditLog(path, { publicKeys: [publicKey] })).toMatchObject({ ok: false, seq: 3 });
  });

  test("two swapped rows are detected", () => {
    const { path, publicKey } = filledLog();
    tamper(
      path,
      `UPDATE audit_log SET seq = -1 WHERE seq = 3;
       UPDATE audit_log SET seq = 3 WHERE seq = 4;
       UPDATE audit_log SET seq = 4 WHERE seq = -1;`,
    );
    expect(verifyAuditLog(path, { publicKeys: [publicKey] })).toEqual({ ok: false, seq: 3, problem: "record 3 does not link to record 2 (removed or reordered)" });
  });

  test("tail truncation is detected against a kept head", () => {
    const { path, publicKey } = filledLog();
    const head = verifyAuditLog(path, { publicKeys: [publicKey] });
    if (!head.ok) throw new Error("expected a valid log");
    tamper(path, "DELETE FROM audit_log WHERE seq = 5");
    expect(verifyAuditLog(path, { publicKeys: [publicKey] }).ok).toBe(true);
    expect(verifyAuditLog(path, { publicKeys: [publicKey], expectHead: head.head })).toEqual({ ok: false, seq: 5, problem: "records 5..5 are missing from the tail" });
  });

  test("a foreign key's signatures are refused", () => {
    const { path } = filledLog();
    const other = ed25519.getPublicKey(new Uint8Array(32).fill(9));
    expect(verifyAuditLog(path, { publicKeys: [other] })).toMatchObject({ ok: false, seq: 1 });
  });

  test("bad entries are refused; details are canonical", () => {
    const log = AuditLog.open(":memory:", { signingKey: KEY, clock: { now: () => 0 } });
    expect(() => log.append({ kind: "lunch" as never, actor: "a", subject: "b" })).toThrow(MalformedInputError);
    expect(() => log.append({ kind: "join", actor: "", subject: "b" })).toThrow(MalformedInputError);
    expect(() => log.append({ kind: "join", actor: "a", subject: "b", details: { blob: "x".repeat(20_000) } })).toThrow(MalformedInputError);
    const r = log.append({ kind: "failover", actor: "hub", subject: "c1", details: { b: 1, a: { d: 2, c: 3 } } });
    expect(JSON.stringify(r.details)).toBe('{"a":{"c":3,"d":2},"b":1}');
    log.close();
  });

  test("JSON lines export and HTTP paging", async () => {
    const { path } = filledLog();
    const log = AuditLog.open(path, { signingKey: KEY, clock: { now: () => 0 } });
    const lines = [...log.jsonLines()];
    expect(lines).toHaveLength(5);
    expect(lines.every((l) => l.endsWith("\n"))).toBe(true);
    expect((JSON.parse(lines[4]!) as AuditRecord).seq).toBe(5);

    const app = new Hono().route("/v1/audit", auditRoutes({ log }));
    const page1 = (await (await app.request("/v1/audit?limit=2")).json()) as { items: AuditRecord[]; next?: number };
    expect(page1.items.map((r) => r.seq)).toEqual([1, 2]);
    expect(page1.next).toBe(2);
    const page3 = (await (await app.request("/v1/audit?after=4&limit=2")).json()) as { items: AuditRecord[]; next?: number };
    expect(page3).toMatchObject({ items: [{ seq: 5 }] });
    expect(page3.next).toBeUndefined();
    const bad = await app.request("/v1/audit?limit=0");
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: "ERR_MALFORMED_INPUT", message: "limit must be an integer from 1" } });
    const exported = await app.request("/v1/audit/export?after=3");
    expect(exported.headers.get("content-type")).toBe("application/x-ndjson");
    expect((await exported.text()).trim().split("\n").map((l) => JSON.parse(l).seq)).toEqual([4, 5]);
    log.close();
  });
});
