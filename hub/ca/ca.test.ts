import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair as generateLibp2pKey } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { MalformedInputError, UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { caFingerprint, derToPem, pemToDer, verifyFederationCert } from "../../plugins/sdk/identity.ts";
import {
  CaMissingError,
  FederationExistsError,
  caPaths,
  createCsr,
  exportPkcs8Pem,
  exportSpkiDer,
  generateKeyPair,
  importPkcs8Pem,
  initFederation,
  initFederationFrom,
  loadCa,
  loadHubTls,
  type Ca,
} from "./index.ts";
import { x509 } from "./x509.ts";

const now = new Date("2030-01-01T00:00:00Z");
const root = mkdtempSync(join(tmpdir(), "grey-ca-"));
const dir = join(root, "hub1");
let hubPeerId: string;
let agentPeerId: string;
let ca: Ca;

beforeAll(async () => {
  hubPeerId = peerIdFromPrivateKey(await generateLibp2pKey("Ed25519")).toString();
  agentPeerId = peerIdFromPrivateKey(await generateLibp2pKey("Ed25519")).toString();
  await initFederation(dir, { org: "acme", hubPeerId, hubName: "hub-1", now });
  ca = await loadCa(dir);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string) => statSync(p).mode & 0o777;
const certDer = (p: string) => pemToDer(readFileSync(p, "utf8"), "CERTIFICATE");

describe("initFederation", () => {
  test("writes the layout with secret modes", () => {
    const p = caPaths(dir);
    for (const k of [p.caKey, p.hubKey, p.adminKey]) expect(mode(k)).toBe(0o600);
    expect(mode(p.caDir)).toBe(0o700);
    expect(readFileSync(p.adminCa, "utf8")).toBe(readFileSync(p.caCert, "utf8"));
    expect(ca.fingerprint).toBe(caFingerprint(certDer(p.caCert)));
    expect(ca.org).toBe("acme");
  });

  test("CA: self-signed, pathLen 0, ~10 years", async () => {
    const cert = new x509.X509Certificate(ca.certDer);
    expect(await cert.verify({ date: now })).toBe(true);
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.pathLength).toBe(0);
    expect(cert.notAfter.getTime() - now.getTime()).toBeGreaterThan(9.9 * 365 * 24 * 3600_000);
  });

  test("hub certificate: identity, peer, localhost names, both EKUs", async () => {
    const p = caPaths(dir);
    const id = await verifyFederationCert(certDer(p.hubCert), ca.certDer, now);
    expect(id).toMatchObject({ role: "hub", org: "acme", name: "hub-1", peerId: hubPeerId });
    const cert = new x509.X509Certificate(certDer(p.hubCert));
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
    expect(san).toEqual(
      expect.arrayContaining([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    );
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    const tls = loadHubTls(dir);
    expect((await importPkcs8Pem(tls.keyPem)).publicKey).toBeDefined();
  });

  test("admin certificate: client only, no peer", async () => {
    const p = caPaths(dir);
    expect(await verifyFederationCert(certDer(p.adminCert), ca.certDer, now)).toMatchObject({ role: "admin", org: "acme", name: "admin" });
    const cert = new x509.X509Certificate(certDer(p.adminCert));
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.clientAuth]);
  });

  test("refuses an existing federation, and bad names before writing anything", async () => {
    await expect(initFederation(dir, { org: "acme", hubPeerId, now })).rejects.toBeInstanceOf(FederationExistsError);
    const other = join(root, "bad");
    await expect(initFederation(other, { org: "Not Valid", hubPeerId, now })).rejects.toBeInstanceOf(MalformedInputError);
    expect(() => statSync(join(other, "ca"))).toThrow();
  });

  test("a second hub of the same federation shares the CA", async () => {
    const dir2 = join(root, "hub2");
    const hub2Peer = peerIdFromPrivateKey(await generateLibp2pKey("Ed25519")).toString();
    const r = await initFederationFrom(dir2, dir, { hubPeerId: hub2Peer, now });
    expect(r.fingerprint).toBe(ca.fingerprint);
    expect(r.org).toBe("acme");
    expect(r.hubName).toMatch(/^hub-[0-9a-f]{8}$/);
    const p2 = caPaths(dir2);
    expect(mode(p2.caKey)).toBe(0o600);
    expect(await verifyFederationCert(certDer(p2.hubCert), ca.certDer, now)).toMatchObject({ role: "hub", name: r.hubName, peerId: hub2Peer });
    expect((await loadCa(dir2)).fingerprint).toBe(ca.fingerprint);
    await expect(initFederationFrom(dir2, dir, { hubPeerId: hub2Peer, now })).rejects.toBeInstanceOf(FederationExistsError);
    await expect(initFederationFrom(join(root, "hub3"), join(root, "nowhere"), { hubPeerId: hub2Peer, now })).rejects.toBeInstanceOf(CaMissingError);
  });
});

describe("loadCa", () => {
  test("missing dir and mismatched key", async () => {
    await expect(loadCa(join(root, "nowhere"))).rejects.toBeInstanceOf(CaMissingError);
    const bad = join(root, "mismatch");
    mkdirSync(join(bad, "ca"), { recursive: true });
    writeFileSync(join(bad, "ca", "ca.pem"), derToPem(ca.certDer));
    writeFileSync(join(bad, "ca", "ca.key"), await exportPkcs8Pem((await generateKeyPair()).privateKey));
    await expect(loadCa(bad)).rejects.toThrow(/does not match/);
  });
});

describe("issueMemberCert", () => {
  const req = (csrDer: Uint8Array) => ({ csrDer, peerId: agentPeerId, org: "acme", region: "eu-west", cluster: "edge-7", ttlMs: 3600_000, now });

  test("hub decides the names; CSR subject is ignored", async () => {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys, "CN=grey://evil/x/y");
    expect(ca.csrPublicKey(csr)).toEqual(await exportSpkiDer(keys.publicKey));
    const issued = await ca.issueMemberCert(req(csr));
    expect(issued.serial).toMatch(/^[0-9a-f]{32}$/);
    expect(issued.notAfter.getTime()).toBe(now.getTime() + 3600_000);
    const id = await verifyFederationCert(issued.certDer, ca.certDer, now);
    expect(id).toMatchObject({ role: "member", org: "acme", region: "eu-west", cluster: "edge-7", peerId: agentPeerId, serial: issued.serial });
    const cert = new x509.X509Certificate(issued.certDer);
    expect(new Uint8Array(cert.publicKey.rawData) as Uint8Array).toEqual(await exportSpkiDer(keys.publicKey));
    const usages: string[] = [...cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages].map(String).sort();
    expect(usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth].map(String).sort());
    const again = await ca.issueMemberCert(req(csr));
    expect(again.serial).not.toBe(issued.serial);
  });

  test("agent key PEM round trip keeps the key pair", async () => {
    const keys = await generateKeyPair();
    const back = await importPkcs8Pem(await exportPkcs8Pem(keys.privateKey));
    expect(await exportSpkiDer(back.publicKey)).toEqual(await exportSpkiDer(keys.publicKey));
    await expect(importPkcs8Pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")).rejects.toBeInstanceOf(MalformedInputError);
  });

  test("refuses forged CSRs, other curves, garbage, bad ttl and bad names", async () => {
    const keys = await generateKeyPair();
    const csr = await createCsr(keys);
    const forged = csr.slice();
    forged[forged.length - 3]! ^= 0x01;
    await expect(ca.issueMemberCert(req(forged))).rejects.toBeInstanceOf(UnauthorizedError);

    const p384 = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const csr384 = new Uint8Array(
      (await x509.Pkcs10CertificateRequestGenerator.create({ name: "CN=x", keys: p384, signingAlgorithm: { name: "ECDSA", hash: "SHA-384" } })).rawData,
    );
    await expect(ca.issueMemberCert(req(csr384))).rejects.toThrow(/P-256/);

    await expect(ca.issueMemberCert(req(new Uint8Array([0x30, 0x03, 1, 2, 3])))).rejects.toBeInstanceOf(MalformedInputError);
    await expect(ca.issueMemberCert(req(new Uint8Array(10_000)))).rejects.toBeInstanceOf(MalformedInputError);
    await expect(ca.issueMemberCert({ ...req(csr), ttlMs: 1 })).rejects.toBeInstanceOf(MalformedInputError);
    await expect(ca.issueMemberCert({ ...req(csr), cluster: "Edge 7" })).rejects.toBeInstanceOf(MalformedInputError);
    await expect(ca.issueMemberCert({ ...req(csr), peerId: "nope" })).rejects.toBeInstanceOf(MalformedInputError);
  });

  test("never outlives the CA", async () => {
    const csr = await createCsr(await generateKeyPair());
    const late = new Date(ca.notAfter.getTime() - 60_000);
    const issued = await ca.issueMemberCert({ ...req(csr), now: late, ttlMs: 3600_000 });
    expect(issued.notAfter.getTime()).toBeLessThanOrEqual(ca.notAfter.getTime());
  });
});
