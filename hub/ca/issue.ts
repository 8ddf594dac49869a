/** Building and signing certificates: the one place that decides extensions. */
import { randomBytes } from "node:crypto";
import type { X509Certificate } from "@peculiar/x509";
import { certBackdateMs, serialBytes } from "./constants.ts";
import { EC_KEY_ALG, EC_SIGN_ALG } from "./keys.ts";
import { x509 } from "./x509.ts";

export type CertPurpose = "server" | "client";

export type GeneralNameSpec =
  | { type: "url"; value: string }
  | { type: "dns"; value: string }
  | { type: "ip"; value: string };

/** Random positive serial, lowercase hex. */
export function randomSerial(): string {
  const b = randomBytes(serialBytes);
  b[0] = (b[0]! & 0x7f) | 0x01; // positive and no leading zero octet: the DER serial is exactly serialBytes long
  return b.toString("hex");
}

/** Seconds precision (what X.509 time encodes), so the returned notAfter equals the certificate's. */
export function toCertTime(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

export function certValidity(now: Date, ttlMs: number, capMs?: number): { notBefore: Date; notAfter: Date } {
  const notAfterMs = Math.min(now.getTime() + ttlMs, capMs ?? Number.POSITIVE_INFINITY);
  return { notBefore: toCertTime(now.getTime() - certBackdateMs), notAfter: toCertTime(notAfterMs) };
}

/** Escape a value for an RFC 4514 name string. */
export function dnValue(v: string): string {
  return v.replace(/([,+"\\<>;=#])/g, "\\$1");
}

export async function createCaCert(keys: CryptoKeyPair, org: string, validity: { notBefore: Date; notAfter: Date }): Promise<X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Grey Federation CA ${dnValue(org)}, O=${dnValue(org)}`,
    ...validity,
    signingAlgorithm: EC_SIGN_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
}

export type LeafSpec = {
  ca: { cert: X509Certificate; privateKey: CryptoKey };
  /** Public key being certified: a CryptoKey or SPKI DER. */
  publicKey: CryptoKey | Uint8Array;
  subject: string;
  names: GeneralNameSpec[];
  purposes: CertPurpose[];
  notBefore: Date;
  notAfter: Date;
  serial?: string;
};

export async function createLeafCert(spec: LeafSpec): Promise<X509Certificate> {
  const publicKey =
    spec.publicKey instanceof Uint8Array
      ? await crypto.subtle.importKey("spki", new Uint8Array(spec.publicKey), EC_KEY_ALG, true, ["verify"])
      : spec.publicKey;
  const eku = spec.purposes.map((p) => (p === "server" ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth));
  return x509.X509CertificateGenerator.create({
    serialNumber: spec.serial ?? randomSerial(),
    subject: spec.subject,
    issuer: spec.ca.cert.subjectName,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    signingAlgorithm: EC_SIGN_ALG,
    publicKey,
    signingKey: spec.ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(eku, false),
      new x509.SubjectAlternativeNameExtension(spec.names, false),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(spec.ca.cert.publicKey),
    ],
  });
}
