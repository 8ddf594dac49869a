/**
 * AWS EC2 instance identity document. AWS signs the same document three ways; all are supported:
 *   /signature  base64 RSASSA-PKCS1-v1_5 SHA-256 (RSA-1024 regional key)  → verifyAwsIidSignature
 *   /pkcs7      CMS SignedData, DSA-1024/SHA-1                            → verifyAwsIidPkcs7
 *   /rsa2048    CMS SignedData, RSA-2048/SHA-256                          → verifyAwsIidPkcs7
 * The signer is a pinned AWS regional certificate (trust anchor). AWS re-issues these certificates
 * with the same key, so their validity period is not a bound on the document and is not checked.
 * Checks: structure, signer (pinned cert named by the CMS), signature (incl. CMS messageDigest),
 * signing-time (CMS signingTime not after `at`), document (JSON fields), policy (account/region/instance).
 */
import { fromBase64, malformed } from "../bytes.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { parseCertificate, type Certificate } from "../x509/cert.ts";
import { parseSignedData, signerCertificate, verifySigner } from "../x509/cms.ts";
import { verifySignature } from "../x509/sig.ts";

export const awsIidDocumentBytesMax = 8192;
export const awsSigningTimeSkewMs = 5 * 60_000;

export type AwsIidDocument = {
  accountId: string;
  instanceId: string;
  region: string;
  availabilityZone?: string;
  imageId?: string;
  instanceType?: string;
  privateIp?: string;
  pendingTime?: Date;
  raw: Record<string, unknown>;
};

export type AwsIidPolicy = { accountIds?: string[]; regions?: string[]; instanceId?: string };

export type AwsIidClaims = { document: AwsIidDocument; documentBytes: Uint8Array; signingTime?: Date };

export function parseAwsIidDocument(bytes: Uint8Array): AwsIidDocument {
  if (bytes.length > awsIidDocumentBytesMax) malformed("EC2 identity document too large");
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return malformed("EC2 identity document is not JSON");
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) malformed("EC2 identity document is not an object");
  const o = j as Record<string, unknown>;
  const str = (k: string, required: boolean): string | undefined => {
    const v = o[k];
    if (typeof v === "string" && v.length > 0) return v;
    if (required) malformed(`EC2 identity document: ${k} missing`);
    return undefined;
  };
  const doc: AwsIidDocument = { accountId: str("accountId", true)!, instanceId: str("instanceId", true)!, region: str("region", true)!, raw: o };
  const opt = ["availabilityZone", "imageId", "instanceType", "privateIp"] as const;
  for (const k of opt) {
    const v = str(k, false);
    if (v) doc[k] = v;
  }
  const pt = str("pendingTime", false);
  if (pt) {
    const d = new Date(pt);
    if (Number.isNaN(d.getTime())) malformed("EC2 identity document: bad pendingTime");
    doc.pendingTime = d;
  }
  return doc;
}

const asCert = (c: Certificate | Uint8Array) => (c instanceof Uint8Array ? parseCertificate(c) : c);

function checkPolicy(c: Checks, doc: AwsIidDocument, policy: AwsIidPolicy | undefined): void {
  if (policy?.accountIds) c.require("policy", policy.accountIds.includes(doc.accountId), `accountId ${doc.accountId}`);
  if (policy?.regions) c.require("policy", policy.regions.includes(doc.region), `region ${doc.region}`);
  if (policy?.instanceId) c.require("policy", policy.instanceId === doc.instanceId, `instanceId ${doc.instanceId}`);
  if (!policy?.accountIds && !policy?.regions && !policy?.instanceId) c.pass("policy", "no account/region policy configured");
}

export type AwsIidSignatureInput = {
  /** The document exactly as served by IMDS. */
  document: Uint8Array;
  /** The base64 `/signature` value. */
  signature: string;
  /** Pinned AWS regional "RSA" certificate (DER) or its public key (DER SPKI). */
  signer: { cert: Certificate | Uint8Array } | { spki: Uint8Array };
  at: Date;
  policy?: AwsIidPolicy;
};

export function verifyAwsIidSignature(input: AwsIidSignatureInput): Promise<Verdict<AwsIidClaims>> {
  return runChecks("structure", (c: Checks) => {
    const sig = fromBase64(input.signature);
    const spki = "cert" in input.signer ? asCert(input.signer.cert).spki : input.signer.spki;
    c.pass("structure", `signature ${sig.length} B`);
    c.pass("signer", "cert" in input.signer ? "pinned AWS certificate" : "pinned AWS public key");
    c.require("signature", verifySignature(spki, { kind: "rsa-pkcs1", hash: "sha256" }, input.document, sig), "RSASSA-PKCS1-v1_5 SHA-256 over the document");
    const document = parseAwsIidDocument(input.document);
    c.pass("document", `${document.instanceId} in ${document.region}`);
    checkPolicy(c, document, input.policy);
    return { document, documentBytes: input.document };
  });
}

export type AwsIidPkcs7Input = {
  /** DER/BER CMS SignedData (decode the base64/PEM served by IMDS first). */
  pkcs7: Uint8Array;
  /** Pinned AWS regional certificates ("DSA" for /pkcs7, "RSA-2048" for /rsa2048). */
  signers: (Certificate | Uint8Array)[];
  at: Date;
  /** When given, the signed content must equal these bytes. */
  document?: Uint8Array;
  policy?: AwsIidPolicy;
};

export function verifyAwsIidPkcs7(input: AwsIidPkcs7Input): Promise<Verdict<AwsIidClaims>> {
  return runChecks("structure", (c: Checks) => {
    const sd = parseSignedData(input.pkcs7);
    const pinned = input.signers.map(asCert);
    c.pass("structure", `CMS SignedData, ${sd.content.length} B content, ${sd.signers.length} signer(s)`);
    const signer = sd.signers[0]!;
    const cert = signerCertificate(signer, pinned);
    if (!cert) c.fail("signer", `signer (serial ${signer.serialHex}) is not a pinned AWS certificate`);
    c.pass("signer", `"${cert.subject}"`);
    const v = verifySigner(sd, signer, cert);
    c.require("signature", v.ok, v.detail);
    const st = signer.signingTime;
    c.require("signing-time", st === undefined || st.getTime() <= input.at.getTime() + awsSigningTimeSkewMs, st ? `signed ${st.toISOString()}` : "no signingTime");
    if (input.document) c.require("document", Buffer.from(input.document).equals(Buffer.from(sd.content)), "signed content equals the presented document");
    const document = parseAwsIidDocument(sd.content);
    c.pass("document", `${document.instanceId} in ${document.region}`);
    checkPolicy(c, document, input.policy);
    const claims: AwsIidClaims = { document, documentBytes: sd.content };
    if (st) claims.signingTime = st;
    return claims;
  });
}
