import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initFederation, loadCa } from "../../hub/ca/index.ts";
import { caPaths } from "../../hub/ca/layout.ts";
import { kmsMock } from "../kms-aws/testing.ts";
import { loadOrCreateNodeKey, NODE_KEY_FILE, peerIdOf } from "../mesh-libp2p/node-key.ts";
import { closedPort } from "../sdk/compliance/connector.ts";
import {
  dataDirKmsConfig, isEnvelope, kmsFromConfig, migrateKeyFiles, openEnvelope, parseKmsConfig, PURPOSE, sealEnvelope, setConfigKms, type KmsConfig,
} from "./keystore.ts";

const creds = { accessKeyId: "AKIAKEYSTOREEXAMPLE1", secretAccessKey: "keystore/secret" };
const mock = kmsMock({ region: "eu-west-1", account: "111122223333", ...creds, alias: "alias/grey" });
const cfg: KmsConfig = { provider: "aws", region: "eu-west-1", keyId: "alias/grey", endpoint: mock.url, credentials: creds };
const root = mkdtempSync(join(tmpdir(), "grey-keystore-"));
afterAll(() => {
  mock.stop();
  rmSync(root, { recursive: true, force: true });
});

describe("envelope", () => {
  test("round trip; another purpose, a tampered body or header is refused", async () => {
    const kms = kmsFromConfig(cfg);
    const secret = crypto.getRandomValues(new Uint8Array(100));
    const text = await sealEnvelope(kms, secret, PURPOSE.caKey);
    expect(isEnvelope(new TextEncoder().encode(text))).toBe(true);
    expect(text).not.toContain("PRIVATE KEY");
    expect(await openEnvelope(kms, text, PURPOSE.caKey)).toEqual(secret);
    await expect(openEnvelope(kms, text, PURPOSE.nodeKey)).rejects.toMatchObject({ name: "KeyEnvelopeError" });
    const e = JSON.parse(text);
    const ct = Buffer.from(e.ciphertext, "base64");
    ct[0]! ^= 1;
    await expect(openEnvelope(kms, JSON.stringify({ ...e, ciphertext: ct.toString("base64") }), PURPOSE.caKey)).rejects.toMatchObject({ name: "KeyEnvelopeError" });
    // relabelling the envelope's purpose is caught by the KMS context
    await expect(openEnvelope(kms, JSON.stringify({ ...e, purpose: PURPOSE.nodeKey }), PURPOSE.nodeKey)).rejects.toMatchObject({ name: "KmsRefusedError" });
    await expect(openEnvelope(kms, JSON.stringify({ ...e, iv: "AAAA" }), PURPOSE.caKey)).rejects.toMatchObject({ name: "KeyEnvelopeError" });
  });

  test("unreachable KMS: KmsUnavailableError", async () => {
    const down = kmsFromConfig({ ...cfg, endpoint: `http://127.0.0.1:${closedPort()}` });
    await expect(sealEnvelope(down, new Uint8Array(4), PURPOSE.caKey)).rejects.toMatchObject({ name: "KmsUnavailableError" });
  });

  test("config: every problem at once, with its path", () => {
    try {
      parseKmsConfig({ provider: "gcp", keyName: "nope", extra: 1 });
      throw new Error("accepted");
    } catch (err) {
      const problems = (err as { problems: string[] }).problems;
      expect(problems.some((p) => p.startsWith("kms.keyName"))).toBe(true);
      expect(problems.length).toBeGreaterThanOrEqual(2);
    }
    expect(() => parseKmsConfig({ provider: "vault" })).toThrow();
  });
});

describe("key files in a data dir", () => {
  test("CA key and node key sealed through hub.json's kms; loadCa opens them", async () => {
    const dir = join(root, "hub");
    setConfigKms(join(dir, "hub.json"), cfg);
    expect(dataDirKmsConfig(dir)).toEqual(cfg);
    const key = await loadOrCreateNodeKey(dir);
    await initFederation(dir, { org: "acme", hubPeerId: peerIdOf(key), now: new Date() });
    const onDisk = readFileSync(caPaths(dir).caKey, "utf8");
    expect(onDisk).not.toContain("PRIVATE KEY");
    expect(JSON.parse(onDisk).kms).toBe("kms-aws");
    expect(isEnvelope(readFileSync(join(dir, NODE_KEY_FILE)))).toBe(true);
    expect((await loadCa(dir)).org).toBe("acme");
    expect(peerIdOf(await loadOrCreateNodeKey(dir))).toBe(peerIdOf(key));

    // KMS down: loading fails with the typed error, not "CA missing"
    setConfigKms(join(dir, "hub.json"), { ...cfg, endpoint: `http://127.0.0.1:${closedPort()}` });
    await expect(loadCa(dir)).rejects.toMatchObject({ name: "KmsUnavailableError" });
    await expect(loadOrCreateNodeKey(dir)).rejects.toMatchObject({ name: "KmsUnavailableError" });
    // no kms configured any more: a clear error, not a PEM parse failure
    writeFileSync(join(dir, "hub.json"), "{}");
    await expect(loadCa(dir)).rejects.toMatchObject({ name: "KeyEnvelopeError" });
  });

  test("migrate: plaintext keys become envelopes, idempotently", async () => {
    const dir = join(root, "plain");
    const key = await loadOrCreateNodeKey(dir);
    await initFederation(dir, { org: "acme", hubPeerId: peerIdOf(key), now: new Date() });
    const before = (await loadCa(dir)).fingerprint;
    const files = [{ path: caPaths(dir).caKey, purpose: PURPOSE.caKey }, { path: join(dir, NODE_KEY_FILE), purpose: PURPOSE.nodeKey }];
    const lines = await migrateKeyFiles(files, kmsFromConfig(cfg));
    expect(lines.every((l) => l.includes("sealed by kms-aws"))).toBe(true);
    setConfigKms(join(dir, "hub.json"), cfg);
    expect((await loadCa(dir)).fingerprint).toBe(before);
    expect(peerIdOf(await loadOrCreateNodeKey(dir))).toBe(peerIdOf(key));
    expect((await migrateKeyFiles(files, kmsFromConfig(cfg))).every((l) => l.includes("already an envelope"))).toBe(true);
  });
});
