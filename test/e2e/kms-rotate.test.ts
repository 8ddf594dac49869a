/**
 * `grey-hub kms rotate` with the compiled binaries and a loopback AWS KMS: while the hub runs, the
 * KMS key rotates, the CA and node key envelopes are re-wrapped under the new key, a signed
 * key-rotation record joins the audit log (opened beside the running hub), `audit verify` still
 * passes, and the hub restarts on the re-wrapped keys.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { kmsMock } from "../../plugins/kms-aws/testing.ts";
import { hubBin, initHub, requireBinaries, run, startHub, stopAll, tempDir } from "./harness.ts";

const creds = { accessKeyId: "AKIAE2EROTATEEXAMPLE", secretAccessKey: "e2e/rotate/secret" };
let mock: ReturnType<typeof kmsMock>;

beforeAll(() => {
  requireBinaries();
  mock = kmsMock({ region: "eu-west-1", account: "111122223333", ...creds, alias: "alias/grey-rotate" });
});

afterAll(async () => {
  await stopAll();
  mock.stop();
});

const envelope = (path: string) => JSON.parse(readFileSync(path, "utf8")) as { keyId: string; wrappedKey: string; ciphertext: string };

test("kms rotate re-wraps both envelopes under the new key and appends a verified key-rotation record", async () => {
  const dir = tempDir("grey-hub-rotate-");
  const kms = { provider: "aws", region: "eu-west-1", keyId: "alias/grey-rotate", endpoint: mock.url, credentials: creds };
  await initHub(dir, ["--org", "acme", "--kms", JSON.stringify(kms)]);
  const before = { ca: envelope(join(dir, "ca", "ca.key")), node: envelope(join(dir, "node.key")) };
  const hub = await startHub(dir);

  const rotated = await run(hubBin, ["kms", "rotate", "--data-dir", dir]);
  expect(rotated.stderr).toBe("");
  expect(rotated.exitCode).toBe(0);
  expect(rotated.stdout).toMatch(/audit record \d+ key-rotation /);
  const after = { ca: envelope(join(dir, "ca", "ca.key")), node: envelope(join(dir, "node.key")) };
  expect(after.ca.keyId).not.toBe(before.ca.keyId);
  expect(after.node.keyId).toBe(after.ca.keyId);
  expect(after.ca.wrappedKey).not.toBe(before.ca.wrappedKey);
  expect(after.ca.ciphertext).not.toBe(before.ca.ciphertext);

  const verify = await run(hubBin, ["audit", "verify", "--data-dir", dir]);
  expect(verify.exitCode).toBe(0);
  expect(verify.stdout).toContain("audit log intact");
  const exported = await run(hubBin, ["audit", "export", "--data-dir", dir]);
  const records = exported.stdout.trim().split("\n").map((l) => JSON.parse(l) as { kind: string; details: { keyId: string } });
  expect(records.at(-1)).toMatchObject({ kind: "key-rotation", details: { keyId: after.ca.keyId } });

  expect(await hub.stop()).toBe(0);
  const again = await startHub(dir);
  expect(again.info.peerId).toBe(hub.info.peerId);
  expect(await again.stop()).toBe(0);
}, 60_000);
