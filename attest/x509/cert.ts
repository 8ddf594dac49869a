/** X.509 certificate and CRL parsing (RFC 5280), keeping the exact signed bytes. */
import { fromBase64, malformed, toHex } from "../bytes.ts";
import { children, ctx, expectTag, octets, oid, parseDer, readTlv, seq, time, uint, bitString, type Tlv } from "../der.ts";
import { schemeFromAlgId, type SigScheme } from "./sig.ts";

export type Extension = { oid: string; critical: boolean; value: Uint8Array };

export type Certificate = {
  der: Uint8Array;
  tbs: Uint8Array;
  scheme: SigScheme;
  signature: Uint8Array;
  serialHex: string;
  issuerDer: Uint8Array;
  subjectDer: Uint8Array;
  /** Human-readable subject/issuer (for details and errors). */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  spki: Uint8Array;
  extensions: Extension[];
  /** basicConstraints cA (false when absent). */
  isCa: boolean;
  pathLen?: number;
  /** keyUsage bits as a number (bit 0 = digitalSignature ... bit 5 = keyCertSign, bit 6 = cRLSign), undefined when absent. */
  keyUsage?: number;
};

const attrNames: Record<string, string> = {
  "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.5": "serialNumber",
};

export function nameToString(nameDer: Tlv): string {
  const parts: string[] = [];
  for (const rdn of children(nameDer)) {
    for (const atv of children(rdn)) {
      const [t, v] = seq(atv, "AttributeTypeAndValue");
      const id = oid(t, "attribute type");
      const val = v && !v.constructed ? Buffer.from(v.body).toString(v.tag === 0x1e ? "utf16le" : "utf8") : "?";
      parts.push(`${attrNames[id] ?? id}=${val}`);
    }
  }
  return parts.join(", ");
}

export function parseCertificate(der: Uint8Array): Certificate {
  const top = parseDer(der, "certificate");
  const [tbsT, algT, sigT] = seq(top, "certificate");
  const tbsParts = seq(tbsT, "tbsCertificate");
  let i = 0;
  if (tbsParts[0] && tbsParts[0].tag === 0xa0) i++;
  const serial = uint(tbsParts[i++], "serialNumber");
  const innerAlg = tbsParts[i++];
  expectTag(innerAlg, 0x30, "tbsCertificate.signature");
  const issuerT = expectTag(tbsParts[i++], 0x30, "issuer");
  const [nb, na] = seq(tbsParts[i++], "validity");
  const subjectT = expectTag(tbsParts[i++], 0x30, "subject");
  const spkiT = expectTag(tbsParts[i++], 0x30, "subjectPublicKeyInfo");
  const extensions: Extension[] = [];
  const extWrap = ctx(tbsParts.slice(i), 3);
  if (extWrap) {
    for (const e of seq(children(extWrap)[0], "extensions")) {
      const parts = seq(e, "extension");
      const id = oid(parts[0], "extension id");
      const critical = parts.length === 3 && parts[1]!.tag === 0x01 && parts[1]!.body[0] !== 0;
      extensions.push({ oid: id, critical, value: octets(parts[parts.length - 1], "extension value") });
    }
  }
  const cert: Certificate = {
    der: top.raw,
    tbs: tbsT!.raw,
    scheme: schemeFromAlgId(algT!, "certificate signatureAlgorithm"),
    signature: bitString(sigT, "signatureValue"),
    serialHex: toHex(serial),
    issuerDer: issuerT.raw,
    subjectDer: subjectT.raw,
    subject: nameToString(subjectT),
    issuer: nameToString(issuerT),
    notBefore: time(nb, "notBefore"),
    notAfter: time(na, "notAfter"),
    spki: spkiT.raw,
    extensions,
    isCa: false,
  };
  const bc = extensions.find((e) => e.oid === "2.5.29.19");
  if (bc) {
    const parts = seq(parseDer(bc.value, "basicConstraints"), "basicConstraints");
    for (const p of parts) {
      if (p.tag === 0x01) cert.isCa = p.body[0] !== 0;
      if (p.tag === 0x02 && p.body.length <= 2) cert.pathLen = p.body.reduce((a, b) => a * 256 + b, 0);
    }
  }
  const ku = extensions.find((e) => e.oid === "2.5.29.15");
  if (ku) {
    const bits = bitString(parseDer(ku.value, "keyUsage"), "keyUsage");
    // Bit 0 is the most significant bit of the first octet.
    let v = 0;
    for (let b = 0; b < Math.min(bits.length * 8, 16); b++) if (bits[b >> 3]! & (0x80 >> (b & 7))) v |= 1 << b;
    cert.keyUsage = v;
  }
  return cert;
}

export const keyUsageCertSign = 1 << 5;
export const keyUsageCrlSign = 1 << 6;

export function extension(cert: Certificate, id: string): Extension | undefined {
  return cert.extensions.find((e) => e.oid === id);
}

/** Splits PEM text into DER blobs of the given label (default CERTIFICATE). */
export function pemBlocks(pem: string, label = "CERTIFICATE"): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(re)) out.push(fromBase64(m[1]!));
  return out;
}

export function parsePemCertificates(pem: string): Certificate[] {
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) malformed("no PEM CERTIFICATE block");
  return blocks.map(parseCertificate);
}

export type Crl = {
  der: Uint8Array;
  tbs: Uint8Array;
  scheme: SigScheme;
  signature: Uint8Array;
  issuerDer: Uint8Array;
  issuer: string;
  thisUpdate: Date;
  nextUpdate?: Date;
  revokedSerials: Set<string>;
};

export function parseCrl(der: Uint8Array): Crl {
  const top = parseDer(der, "CRL");
  const [tbsT, algT, sigT] = seq(top, "CRL");
  const parts = seq(tbsT, "tbsCertList");
  let i = 0;
  if (parts[0] && parts[0].tag === 0x02) i++;
  expectTag(parts[i++], 0x30, "tbsCertList.signature");
  const issuerT = expectTag(parts[i++], 0x30, "CRL issuer");
  const thisUpdate = time(parts[i++], "thisUpdate");
  let nextUpdate: Date | undefined;
  const nu = parts[i];
  if (nu && (nu.tag === 0x17 || nu.tag === 0x18)) {
    nextUpdate = time(nu, "nextUpdate");
    i++;
  }
  const revokedSerials = new Set<string>();
  const rl = parts[i];
  if (rl && rl.tag === 0x30) {
    for (const entry of children(rl)) revokedSerials.add(toHex(uint(seq(entry, "revokedCertificate")[0], "revoked serial")));
  }
  const crl: Crl = {
    der: top.raw,
    tbs: tbsT!.raw,
    scheme: schemeFromAlgId(algT!, "CRL signatureAlgorithm"),
    signature: bitString(sigT, "CRL signatureValue"),
    issuerDer: issuerT.raw,
    issuer: nameToString(issuerT),
    thisUpdate,
    revokedSerials,
  };
  if (nextUpdate) crl.nextUpdate = nextUpdate;
  return crl;
}

/** Reads a single DER element prefix (used by callers that receive a cert followed by other data). */
export function derLength(buf: Uint8Array): number {
  return readTlv(buf, 0).raw.length;
}
