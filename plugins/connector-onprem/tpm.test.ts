/**
 * connector-onprem with the node key inside a TPM (swtpm): the enterprise certificate certifies the
 * TPM key's public part; the hub verifies the possession signature exactly as for software/HSM keys.
 */
import "../../attest/testing/reflect-polyfill.ts";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startSwtpm, requireTools, type Swtpm } from "../attestor-tpm/testing/swtpm.ts";
import type { EvidenceBinding } from "../sdk/connector.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import { onpremConnector, type OnpremConnectorInit } from "./index.ts";
import { tpmPublicKey, tpmSigningKeyTemplate, type TpmKeyConfig } from "./tpm-key.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const components = { logger: quiet, clock: { now: () => Date.now() }, fetch };
const binding = (): EvidenceBinding => ({ nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWTpmKey", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) });
const ec = { name: "ECDSA", namedCurve: "P-256" } as const;
const signing = { name: "ECDSA", hash: "SHA-256" } as const;

async function ca() {
  const x509 = await import("@peculiar/x509");
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 86_400_000);
  const keys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=Acme TPM Root", notBefore, notAfter, keys, signingAlgorithm: signing,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  let serial = 0x10;
  async function issue(spki: Uint8Array, cn: string) {
    const publicKey = await crypto.subtle.importKey("spki", new Uint8Array(spki), ec, true, ["verify"]);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (serial++).toString(16), subject: `CN=${cn}, OU=edge`, issuer: root.subject, notBefore, notAfter, publicKey, signingKey: keys.privateKey, signingAlgorithm: signing,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
    });
    return new Uint8Array(cert.rawData);
  }
  return { root: new Uint8Array(root.rawData), issue };
}

let swtpm: Swtpm;
let cfg: TpmKeyConfig;
let pki: Awaited<ReturnType<typeof ca>>;
let agentInit: OnpremConnectorInit;
let hubInit: OnpremConnectorInit;

beforeAll(async () => {
  requireTools(["swtpm"]); // a missing swtpm fails the file with an install hint; never skips
  swtpm = await startSwtpm();
  cfg = { tpm: `swtpm:${swtpm.host}:${swtpm.port}`, readTimeoutMs: 10_000 };
  pki = await ca();
  const leaf = await pki.issue(await tpmPublicKey(cfg), "edge-tpm");
  agentInit = { chain: [leaf], key: { kind: "tpm", tpm: cfg } };
  hubInit = { roots: [pki.root] };
});

afterAll(async () => {
  await swtpm?.stop();
});

describe("connector-onprem with the key in a TPM (swtpm)", () => {
  test("the derived TPM key is stable (same key on every CreatePrimary); labels give other keys", async () => {
    const a = await tpmPublicKey(cfg);
    expect(Buffer.from(await tpmPublicKey(cfg)).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(await tpmPublicKey({ ...cfg, label: "other" })).equals(Buffer.from(a))).toBe(false);
    expect(tpmSigningKeyTemplate().length).toBeGreaterThan(0);
  });

  test("happy path: possession signed with TPM2_Sign verifies at the hub; health matches key and certificate", async () => {
    const agent = onpremConnector(agentInit)(components);
    expect(agent.keyHolder).toBeDefined();
    expect((await agent.health()).status).toBe("ok");
    const b = binding();
    const cred = await agent.authenticate!(b);
    const body = decodeCbor(cred.data) as { alg: string; signature: Uint8Array; store?: string };
    expect(body).toMatchObject({ alg: "ecdsa-sha256-raw", store: "tpm" });
    expect(body.signature.length).toBe(64);
    const r = await onpremConnector(hubInit)(components).verifyCredential!(cred, b, new Date());
    expect(r).toMatchObject({ ok: true, principal: "CN=edge-tpm, OU=edge", claims: { "key.tpm": true, "key.hsm": false } });
    expect(r.checks.find((c) => c.name === "possession")?.ok).toBe(true);
  });

  test("a certificate for another key is refused (possession), and health reports the mismatch", async () => {
    const otherKey = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
    const foreign = await pki.issue(new Uint8Array(await crypto.subtle.exportKey("spki", otherKey.publicKey)), "edge-tpm");
    const agent = onpremConnector({ chain: [foreign], key: { kind: "tpm", tpm: cfg } })(components);
    const b = binding();
    expect(await onpremConnector(hubInit)(components).verifyCredential!(await agent.authenticate!(b), b, new Date())).toMatchObject({ ok: false, failed: "possession" });
    expect((await agent.health()).status).not.toBe("ok");
    // a TPM key certified under another label is another key, too
    const otherLabel = onpremConnector({ chain: agentInit.chain!, key: { kind: "tpm", tpm: { ...cfg, label: "other" } } })(components);
    expect(await onpremConnector(hubInit)(components).verifyCredential!(await otherLabel.authenticate!(b), b, new Date())).toMatchObject({ ok: false, failed: "possession" });
  });

  test("a wrong binding is refused; a tampered signature too", async () => {
    const agent = onpremConnector(agentInit)(components);
    const hub = onpremConnector(hubInit)(components);
    const b = binding();
    const cred = await agent.authenticate!(b);
    expect(await hub.verifyCredential!(cred, binding(), new Date())).toMatchObject({ ok: false, failed: "possession" });
    const body = decodeCbor(cred.data) as { chain: Uint8Array[]; alg: string; signature: Uint8Array; store: string };
    const sig = new Uint8Array(body.signature);
    sig[10]! ^= 1;
    expect(await hub.verifyCredential!({ type: cred.type, data: encodeCbor({ ...body, signature: sig }) }, b, new Date())).toMatchObject({ ok: false, failed: "possession" });
  });

  test("an unreachable TPM makes authenticate fail as unavailable", async () => {
    const agent = onpremConnector({ chain: agentInit.chain!, key: { kind: "tpm", tpm: { tpm: "swtpm:127.0.0.1:1", readTimeoutMs: 2_000 } } })(components);
    await expect(agent.authenticate!(binding())).rejects.toThrow(/tpm:swtpm:127\.0\.0\.1:1/);
  });
});
