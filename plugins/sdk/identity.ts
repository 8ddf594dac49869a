/**
 * The federation certificate contract, shared by agent and hub.
 *
 * Every federation certificate is ECDSA P-256, issued directly by the
 * federation CA, and carries exactly one `grey://` URI SAN naming who it is:
 *   member  grey://ORG/REGION/CLUSTER
 *   hub     grey://ORG/_hub/NAME
 *   admin   grey://ORG/_admin/NAME
 * Members and hubs also carry `libp2p:peer:<peerId>`, binding the certificate
 * to their libp2p identity; admins carry none.
 *
 * Pure: no I/O, verification time is always passed in.
 */
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  BasicConstraints,
  Certificate,
  SubjectAlternativeName,
  id_ce_basicConstraints,
  id_ce_subjectAltName,
} from "@peculiar/asn1-x509";
import { p256 } from "@noble/curves/nist.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { MalformedInputError, UnauthorizedError } from "./errors.ts";

export type FederationRole = "member" | "hub" | "admin";

export type FederationIdentity = {
  role: FederationRole;
  org: string;
  /** Members only. */
  region?: string;
  /** Members only. */
  cluster?: string;
  /** Hubs and admins. */
  name?: string;
  /** Members and hubs: the libp2p peer id bound by the certificate. */
  peerId?: string;
  /** Certificate serial, lowercase hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
};

/** Names in a federation URI: same rule as wire ids (lowercase, digits, '-', at most 63). */
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** libp2p peer ids are base58btc (or CIDv1 base32) strings. */
const PEER_ID_RE = /^[1-9A-HJ-NP-Za-km-z]{32,128}$|^b[a-z2-7]{32,200}$/;

export const FEDERATION_URI_SCHEME = "grey://";
export const PEER_URI_PREFIX = "libp2p:peer:";

const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
/** DER of the namedCurve OID 1.2.840.10045.3.1.7 (P-256), as found in EC SPKI parameters. */
const P256_PARAMS_DER = Buffer.from("06082a8648ce3d030107", "hex");

function checkName(what: string, value: string | undefined): string {
  if (value === undefined || !NAME_RE.test(value)) {
    throw new MalformedInputError(`${what} ${JSON.stringify(value)} must be lowercase letters, digits and '-', at most 63`);
  }
  return value;
}

export function memberUri(org: string, region: string, cluster: string): string {
  return `${FEDERATION_URI_SCHEME}${checkName("org", org)}/${checkName("region", region)}/${checkName("cluster", cluster)}`;
}

export function hubUri(org: string, name: string): string {
  return `${FEDERATION_URI_SCHEME}${checkName("org", org)}/_hub/${checkName("hub name", name)}`;
}

export function adminUri(org: string, name: string): string {
  return `${FEDERATION_URI_SCHEME}${checkName("org", org)}/_admin/${checkName("admin name", name)}`;
}

export function peerUri(peerId: string): string {
  if (!PEER_ID_RE.test(peerId)) throw new MalformedInputError(`not a libp2p peer id: ${JSON.stringify(peerId)}`);
  return `${PEER_URI_PREFIX}${peerId}`;
}

export type ParsedFederationUri =
  | { role: "member"; org: string; region: string; cluster: string }
  | { role: "hub" | "admin"; org: string; name: string };

/** Parse a `grey://` URI; MalformedInputError when it is not one of the three shapes. */
export function parseFederationUri(uri: string): ParsedFederationUri {
  if (!uri.startsWith(FEDERATION_URI_SCHEME)) throw new MalformedInputError(`not a grey:// URI: ${JSON.stringify(uri)}`);
  const parts = uri.slice(FEDERATION_URI_SCHEME.length).split("/");
  if (parts.length !== 3) throw new MalformedInputError(`grey:// URI must have three path parts: ${JSON.stringify(uri)}`);
  const [org, second, third] = parts as [string, string, string];
  checkName("org", org);
  if (second === "_hub") return { role: "hub", org, name: checkName("hub name", third) };
  if (second === "_admin") return { role: "admin", org, name: checkName("admin name", third) };
  return { role: "member", org, region: checkName("region", second), cluster: checkName("cluster", third) };
}

// --- PEM --------------------------------------------------------------------

/** DER -> PEM with the given label (default CERTIFICATE), 64-column base64. */
export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * PEM -> DER of the first block (optionally requiring its label).
 * MalformedInputError when there is no such block or the base64 is broken.
 */
export function pemToDer(pem: string, label?: string): Uint8Array {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m) throw new MalformedInputError("no PEM block found");
  if (label !== undefined && m[1] !== label) throw new MalformedInputError(`expected PEM ${label}, found ${m[1]}`);
  const body = (m[2] ?? "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length === 0) throw new MalformedInputError("invalid base64 in PEM block");
  return new Uint8Array(Buffer.from(body, "base64"));
}

/** Lowercase hex SHA-256 of the CA certificate DER: what join tokens pin. */
export function caFingerprint(caCertDer: Uint8Array): string {
  return Buffer.from(sha256(caCertDer)).toString("hex");
}

// --- verification -----------------------------------------------------------

function parseCert(der: Uint8Array, what: string): Certificate {
  try {
    return AsnConvert.parse(der, Certificate);
  } catch (err) {
    throw new MalformedInputError(`${what} is not a DER X.509 certificate`, { cause: err });
  }
}

function extension<T>(cert: Certificate, oid: string, type: new () => T): T | undefined {
  const ext = cert.tbsCertificate.extensions?.find((e) => e.extnID === oid);
  if (!ext) return undefined;
  try {
    return AsnConvert.parse(ext.extnValue.buffer, type);
  } catch (err) {
    throw new MalformedInputError(`certificate extension ${oid} does not parse`, { cause: err });
  }
}

function p256Point(cert: Certificate, what: string): Uint8Array {
  const spki = cert.tbsCertificate.subjectPublicKeyInfo;
  if (spki.algorithm.algorithm !== OID_EC_PUBLIC_KEY || !spki.algorithm.parameters) {
    throw new UnauthorizedError(`${what} key is not an EC key`);
  }
  if (!Buffer.from(spki.algorithm.parameters).equals(P256_PARAMS_DER)) throw new UnauthorizedError(`${what} key is not on P-256`);
  return new Uint8Array(spki.subjectPublicKey);
}

function signedBy(cert: Certificate, issuerPoint: Uint8Array): boolean {
  if (cert.signatureAlgorithm.algorithm !== OID_ECDSA_SHA256) return false;
  const tbs = cert.tbsCertificateRaw ? new Uint8Array(cert.tbsCertificateRaw) : new Uint8Array(AsnConvert.serialize(cert.tbsCertificate));
  try {
    // WebCrypto and OpenSSL produce high-S signatures: accept them (lowS: false).
    return p256.verify(new Uint8Array(cert.signatureValue), tbs, issuerPoint, { format: "der", lowS: false });
  } catch {
    return false;
  }
}

function sameBytes(a: ArrayBuffer, b: ArrayBuffer): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

function checkValidity(cert: Certificate, now: Date, what: string): { notBefore: Date; notAfter: Date } {
  const notBefore = cert.tbsCertificate.validity.notBefore.getTime();
  const notAfter = cert.tbsCertificate.validity.notAfter.getTime();
  if (now.getTime() < notBefore.getTime()) {
    throw new UnauthorizedError(`${what} not yet valid (notBefore ${notBefore.toISOString()})`);
  }
  if (now.getTime() > notAfter.getTime()) {
    throw new UnauthorizedError(`${what} expired (notAfter ${notAfter.toISOString()})`);
  }
  return { notBefore, notAfter };
}

function serialHex(cert: Certificate): string {
  return Buffer.from(cert.tbsCertificate.serialNumber).toString("hex").replace(/^(00)+(?=.)/, "");
}

/**
 * Verify a federation certificate against the federation CA at `now` and
 * return who it names. Checks, in order: both parse (MalformedInputError),
 * the CA is a P-256 CA valid at now, the certificate is ECDSA-SHA256 signed by
 * it, valid at now, not itself a CA, has exactly one grey:// URI SAN of a
 * known shape, and the peer binding its role requires. Any refusal is an
 * UnauthorizedError whose message says which check failed.
 */
export async function verifyFederationCert(certDer: Uint8Array, caCertDer: Uint8Array, now: Date): Promise<FederationIdentity> {
  const ca = parseCert(caCertDer, "CA certificate");
  const cert = parseCert(certDer, "certificate");

  const caConstraints = extension(ca, id_ce_basicConstraints, BasicConstraints);
  if (!caConstraints?.cA) throw new UnauthorizedError("CA certificate is not a CA");
  checkValidity(ca, now, "CA certificate");
  const caPoint = p256Point(ca, "CA certificate");

  if (!sameBytes(AsnConvert.serialize(cert.tbsCertificate.issuer), AsnConvert.serialize(ca.tbsCertificate.subject))) {
    throw new UnauthorizedError("certificate was not issued by the federation CA (issuer mismatch)");
  }
  if (!signedBy(cert, caPoint)) throw new UnauthorizedError("certificate signature does not verify against the federation CA");
  const { notBefore, notAfter } = checkValidity(cert, now, "certificate");
  p256Point(cert, "certificate");
  if (extension(cert, id_ce_basicConstraints, BasicConstraints)?.cA) {
    throw new UnauthorizedError("certificate is a CA certificate, not a federation identity");
  }

  const san = extension(cert, id_ce_subjectAltName, SubjectAlternativeName);
  const uris = (san ?? []).map((n) => n.uniformResourceIdentifier).filter((u): u is string => u !== undefined);
  const greyUris = uris.filter((u) => u.startsWith(FEDERATION_URI_SCHEME));
  if (greyUris.length !== 1) {
    throw new UnauthorizedError(`certificate must carry exactly one grey:// URI SAN, found ${greyUris.length}`);
  }
  const peerUris = uris.filter((u) => u.startsWith(PEER_URI_PREFIX));
  if (peerUris.length > 1) throw new UnauthorizedError("certificate carries more than one libp2p:peer: URI SAN");

  let parsed: ParsedFederationUri;
  try {
    parsed = parseFederationUri(greyUris[0]!);
  } catch (err) {
    throw new UnauthorizedError(`certificate identity URI is malformed: ${(err as Error).message}`, { cause: err });
  }
  const peerId = peerUris[0]?.slice(PEER_URI_PREFIX.length);
  if (parsed.role === "admin" && peerId !== undefined) throw new UnauthorizedError("admin certificate must not carry a peer id");
  if (parsed.role !== "admin" && (peerId === undefined || !PEER_ID_RE.test(peerId))) {
    throw new UnauthorizedError(`${parsed.role} certificate must carry a valid libp2p:peer: URI SAN`);
  }

  const identity: FederationIdentity = { ...parsed, serial: serialHex(cert), notBefore, notAfter };
  if (peerId !== undefined) identity.peerId = peerId;
  return identity;
}
