import "../../attest/testing/reflect-polyfill.ts";
import { beforeAll, describe, expect, test } from "bun:test";
import { connectorCompliance } from "../sdk/compliance/connector.ts";
import type { EvidenceBinding } from "../sdk/connector.ts";
import { onpremConnector, type OnpremConnectorInit } from "./index.ts";
import { withSession } from "./pkcs11.ts";
import { softhsmAvailable, softhsmToken } from "./testing.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const components = { logger: quiet, clock: { now: () => Date.now() }, fetch };
const binding = (): EvidenceBinding => ({ nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWOnprem", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) });
const ec = { name: "ECDSA", namedCurve: "P-256" } as const;
const signing = { name: "ECDSA", hash: "SHA-256" } as const;
const NOT_AFTER = Date.now() + 3600_000;

/** Enterprise CA: root → issuing CA → client certificates for the given public keys (DER SPKI). */
async function enterpriseCa() {
  const x509 = await import("@peculiar/x509");
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + 365 * 86_400_000);
  const ca = (isCa: boolean) => [new x509.BasicConstraintsExtension(isCa, undefined, true), new x509.KeyUsagesExtension(isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature, true)];
  const rootKeys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const issKeys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const root = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: "01", name: "CN=Acme Enterprise Root", notBefore, notAfter, keys: rootKeys, signingAlgorithm: signing, extensions: ca(true) });
  const issuing = await x509.X509CertificateGenerator.create({ serialNumber: "02", subject: "CN=Acme Issuing CA", issuer: root.subject, notBefore, notAfter, publicKey: issKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: signing, extensions: ca(true) });
  let serial = 0x100;
  async function issue(spki: Uint8Array, cn: string) {
    const publicKey = await crypto.subtle.importKey("spki", new Uint8Array(spki), ec, true, ["verify"]);
    const s = (serial++).toString(16);
    const cert = await x509.X509CertificateGenerator.create({ serialNumber: s, subject: `CN=${cn}, OU=edge`, issuer: issuing.subject, notBefore, notAfter: new Date(NOT_AFTER), publicKey, signingKey: issKeys.privateKey, signingAlgorithm: signing, extensions: ca(false) });
    return { der: new Uint8Array(cert.rawData), serial: s };
  }
  async function crl(revoked: string[], by: "issuing" | "root" = "issuing") {
    const [issuer, signingKey] = by === "root" ? [root.subject, rootKeys.privateKey] : [issuing.subject, issKeys.privateKey];
    const c = await x509.X509CrlGenerator.create({ issuer, thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + 86_400_000), entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: new Date() })), signingKey, signingAlgorithm: signing });
    return new Uint8Array(c.rawData);
  }
  return { root: new Uint8Array(root.rawData), issuing: new Uint8Array(issuing.rawData), issue, crl, rootCrl: await crl([], "root") };
}

const hasHsm = softhsmAvailable();

let pki: Awaited<ReturnType<typeof enterpriseCa>>;
let hsmInit: OnpremConnectorInit;
let hubInit: OnpremConnectorInit;
let softKeyPem: string;
let softLeaf: { der: Uint8Array; serial: string };

beforeAll(async () => {
  pki = await enterpriseCa();
  const soft = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  softKeyPem = `-----BEGIN PRIVATE KEY-----\n${Buffer.from(await crypto.subtle.exportKey("pkcs8", soft.privateKey)).toString("base64")}\n-----END PRIVATE KEY-----\n`;
  softLeaf = await pki.issue(new Uint8Array(await crypto.subtle.exportKey("spki", soft.publicKey)), "edge-soft");
  hubInit = { roots: [pki.root], crls: [await pki.crl([]), pki.rootCrl], requireCrls: true, subjectPattern: "^CN=edge-hsm, OU=edge$" };
  // CI installs softhsm2 (.ci/run): a missing HSM is a failure, never a skip.
  if (!hasHsm) throw new Error("softhsm2 is required (apt-get install softhsm2)");
  {
    const token = softhsmToken();
    const spki = await withSession(token, (s) => {
      if (!s.find("grey-node", 3 /* CKO_PRIVATE_KEY */)) s.generateEcKey("grey-node");
      return s.ecPublicKey("grey-node");
    });
    const leaf = await pki.issue(spki, "edge-hsm");
    hsmInit = { chain: [leaf.der, pki.issuing], key: { kind: "pkcs11", pkcs11: token, label: "grey-node" } };
  }
});

describe("connector-onprem with the key in SoftHSM (PKCS#11)", () => {
  connectorCompliance("connector-onprem (pkcs11)", async () => ({
    agent: onpremConnector(hsmInit)(components),
    hub: onpremConnector(hubInit)(components),
    unreachable: onpremConnector({ ...hsmInit, key: { kind: "pkcs11", pkcs11: { ...softhsmToken(), tokenLabel: "no-such-token" }, label: "grey-node" } })(components),
    now: () => new Date(),
    expiredAt: new Date(NOT_AFTER + 60_000),
    forbidden: async () => {
      const b = binding();
      const other = onpremConnector({ chain: [softLeaf.der, pki.issuing], key: { kind: "software", pkcs8Pem: softKeyPem } })(components);
      return { binding: b, credential: await other.authenticate!(b) };
    },
    stop: () => {},
  }));

  test("the key never leaves the token; keyHolder signs there; health checks it matches the certificate", async () => {
    const c = onpremConnector(hsmInit)(components);
    expect(c.keyHolder).toBeDefined();
    expect((await c.health()).status).toBe("ok");
    const b = binding();
    expect(await onpremConnector(hubInit)(components).verifyCredential!(await c.authenticate!(b), b, new Date())).toMatchObject({ ok: true, claims: { "key.hsm": true }, principal: "CN=edge-hsm, OU=edge" });
  });
});

describe("connector-onprem: chain, CRL and possession", () => {
  test("software key: verifies; revoked by CRL, missing CRL, foreign root, subject pattern", async () => {
    const agent = onpremConnector({ chain: [softLeaf.der, pki.issuing], key: { kind: "software", pkcs8Pem: softKeyPem } })(components);
    const b = binding();
    const cred = await agent.authenticate!(b);
    expect(await onpremConnector({ ...hubInit, subjectPattern: undefined })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: true, principal: "CN=edge-soft, OU=edge" });
    expect(await onpremConnector({ ...hubInit, crls: [await pki.crl([softLeaf.serial]), pki.rootCrl] })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "chain.revocation" });
    expect(await onpremConnector({ ...hubInit, crls: [pki.rootCrl] })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "chain.revocation" });
    const other = await enterpriseCa();
    expect(await onpremConnector({ ...hubInit, roots: [other.root], crls: [], requireCrls: false })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: expect.stringMatching(/^chain\./) });
    expect(await onpremConnector({ ...hubInit, subjectPattern: "OU=datacenter" })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "subject" });
    expect(await onpremConnector({})(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "roots" });
  });

  test("hub health: stale CRL is degraded", async () => {
    expect((await onpremConnector(hubInit)(components).health()).status).toBe("ok");
    const later = { ...components, clock: { now: () => Date.now() + 2 * 86_400_000 } };
    expect((await onpremConnector(hubInit)(later).health()).status).toBe("degraded");
  });
});
