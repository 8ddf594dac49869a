/** Test-only: a small generated PKI (root → intermediate → leaf, plus CRLs) for negative chain tests. */
import "./reflect-polyfill.ts";
import type * as X509 from "@peculiar/x509";

export type TestPki = {
  root: Uint8Array;
  intermediate: Uint8Array;
  leaf: Uint8Array;
  /** An intermediate without basicConstraints cA that signs `leafUnderNonCa`. */
  nonCa: Uint8Array;
  leafUnderNonCa: Uint8Array;
  leafSerial: string;
  leafKeys: CryptoKeyPair;
  /** CRL from the intermediate that revokes the leaf, and one that revokes nothing. */
  crlRevoking: Uint8Array;
  crlEmpty: Uint8Array;
  notBefore: Date;
  notAfter: Date;
};

const ec = { name: "ECDSA", namedCurve: "P-256" } as const;
const signing = { name: "ECDSA", hash: "SHA-256" } as const;
const der = (c: { rawData: ArrayBuffer }) => new Uint8Array(c.rawData);

export async function makeTestPki(): Promise<TestPki> {
  // Loaded lazily so the Reflect polyfill is in place before tsyringe initialises.
  const x509: typeof X509 = await import("@peculiar/x509");
  const notBefore = new Date("2024-01-01T00:00:00Z");
  const notAfter = new Date("2034-01-01T00:00:00Z");
  const rootKeys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const intKeys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const leafKeys = await crypto.subtle.generateKey(ec, true, ["sign", "verify"]);
  const caExt = (ca: boolean) => [
    new x509.BasicConstraintsExtension(ca, undefined, true),
    new x509.KeyUsagesExtension(ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature, true),
  ];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=Test Root", notBefore, notAfter, keys: rootKeys, signingAlgorithm: signing, extensions: caExt(true),
  });
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: "02", subject: "CN=Test Intermediate", issuer: root.subject, notBefore, notAfter,
    publicKey: intKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: signing, extensions: caExt(true),
  });
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "0a1b", subject: "CN=Test Leaf", issuer: intermediate.subject, notBefore, notAfter: new Date("2030-01-01T00:00:00Z"),
    publicKey: leafKeys.publicKey, signingKey: intKeys.privateKey, signingAlgorithm: signing, extensions: caExt(false),
  });
  const nonCa = await x509.X509CertificateGenerator.create({
    serialNumber: "03", subject: "CN=Not A CA", issuer: root.subject, notBefore, notAfter,
    publicKey: intKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: signing, extensions: caExt(false),
  });
  const leafUnderNonCa = await x509.X509CertificateGenerator.create({
    serialNumber: "04", subject: "CN=Leaf Under Non-CA", issuer: nonCa.subject, notBefore, notAfter,
    publicKey: leafKeys.publicKey, signingKey: intKeys.privateKey, signingAlgorithm: signing, extensions: caExt(false),
  });
  const crl = (entries: X509.X509CrlEntryParams[]) =>
    x509.X509CrlGenerator.create({
      issuer: intermediate.subject, thisUpdate: new Date("2025-01-01T00:00:00Z"), nextUpdate: new Date("2025-02-01T00:00:00Z"),
      entries, signingKey: intKeys.privateKey, signingAlgorithm: signing,
    });
  const crlRevoking = await crl([{ serialNumber: "0a1b", revocationDate: new Date("2025-01-01T00:00:00Z") }]);
  const crlEmpty = await crl([]);
  return {
    root: der(root), intermediate: der(intermediate), leaf: der(leaf), nonCa: der(nonCa), leafUnderNonCa: der(leafUnderNonCa),
    leafSerial: "0a1b", leafKeys, crlRevoking: der(crlRevoking), crlEmpty: der(crlEmpty), notBefore, notAfter,
  };
}
