/**
 * CMS SignedData (RFC 5652) with attached content, as used by AWS EC2 (/pkcs7, /rsa2048; BER with
 * indefinite lengths, signer certificate not embedded) and Azure IMDS (/attested; DER, leaf embedded).
 */
import { bytesEqual, malformed, toHex } from "../bytes.ts";
import { children, ctx, expectTag, octets, oid, readTlv, seq, time, uint, type Tlv } from "../der.ts";
import { parseCertificate, type Certificate } from "./cert.ts";
import { hashBytes, hashOids, verifySignature, type Hash, type SigScheme } from "./sig.ts";

export const cmsSignersMax = 4;
export const cmsCertsMax = 16;

const OID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const OID_CONTENT_TYPE = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME = "1.2.840.113549.1.9.5";

export type CmsSigner = {
  issuerDer: Uint8Array;
  serialHex: string;
  digest: Hash;
  scheme: SigScheme;
  signature: Uint8Array;
  /** DER of signedAttrs re-tagged as SET OF (what is signed), when present. */
  signedAttrs?: Uint8Array;
  messageDigest?: Uint8Array;
  contentType?: string;
  signingTime?: Date;
};

export type SignedData = {
  contentType: string;
  content: Uint8Array;
  certificates: Certificate[];
  signers: CmsSigner[];
  /** Bytes after the ContentInfo (unsigned; ignored as OpenSSL does, but reported). */
  trailingBytes: number;
};

const rsaDigestOids: Record<string, Hash> = {
  "1.2.840.113549.1.1.5": "sha1", "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
};

function sigScheme(algT: Tlv, digest: Hash): SigScheme {
  const id = oid(seq(algT, "signatureAlgorithm")[0], "signatureAlgorithm");
  switch (id) {
    case "1.2.840.113549.1.1.1": return { kind: "rsa-pkcs1", hash: digest };
    case "1.2.840.113549.1.1.5": case "1.2.840.113549.1.1.11": case "1.2.840.113549.1.1.12": case "1.2.840.113549.1.1.13":
      return { kind: "rsa-pkcs1", hash: digest };
    case "1.2.840.10040.4.1": case "1.2.840.10040.4.3": case "2.16.840.1.101.3.4.3.2": return { kind: "dsa", hash: digest };
    case "1.2.840.10045.2.1": case "1.2.840.10045.4.3.2": case "1.2.840.10045.4.3.3": case "1.2.840.10045.4.3.4":
      return { kind: "ecdsa", hash: digest, encoding: "der" };
    default: return malformed(`CMS: unsupported signature algorithm ${id}`);
  }
}

function parseSigner(t: Tlv): CmsSigner {
  const parts = seq(t, "SignerInfo");
  let i = 1;
  const sid = parts[i++];
  if (!sid || sid.tag !== 0x30) malformed("CMS: only issuerAndSerialNumber signer identifiers are supported");
  const [issuerT, serialT] = children(sid);
  const digestId = oid(seq(parts[i++], "digestAlgorithm")[0], "digestAlgorithm");
  // Some signers (Azure IMDS) name the signature algorithm here instead of the digest.
  const digest = hashOids[digestId] ?? rsaDigestOids[digestId];
  if (!digest) malformed(`CMS: unsupported digest ${digestId}`);
  const signer: CmsSigner = {
    issuerDer: expectTag(issuerT, 0x30, "signer issuer").raw,
    serialHex: toHex(uint(serialT, "signer serial")),
    digest,
    scheme: { kind: "rsa-pkcs1", hash: digest },
    signature: new Uint8Array(0),
  };
  const attrs = parts[i];
  if (attrs && attrs.tag === 0xa0) {
    i++;
    const set = new Uint8Array(attrs.raw);
    set[0] = 0x31;
    signer.signedAttrs = set;
    for (const a of children(attrs)) {
      const [typeT, valuesT] = seq(a, "attribute");
      const type = oid(typeT, "attribute type");
      const first = valuesT ? children(expectTag(valuesT, 0x31, "attribute values"))[0] : undefined;
      if (type === OID_MESSAGE_DIGEST) signer.messageDigest = octets(first, "messageDigest");
      else if (type === OID_CONTENT_TYPE) signer.contentType = oid(first, "contentType");
      else if (type === OID_SIGNING_TIME) signer.signingTime = time(first, "signingTime");
    }
  }
  signer.scheme = sigScheme(parts[i++]!, digest);
  signer.signature = octets(parts[i], "signature");
  return signer;
}

export function parseSignedData(der: Uint8Array): SignedData {
  const info = readTlv(der, 0);
  const top = seq(info, "ContentInfo");
  if (oid(top[0], "contentType") !== OID_SIGNED_DATA) malformed("CMS: not SignedData");
  const wrapped = top[1];
  if (!wrapped || wrapped.tag !== 0xa0) malformed("CMS: missing content");
  const sd = seq(children(wrapped)[0], "SignedData");
  const encap = seq(sd[2], "encapContentInfo");
  const contentType = oid(encap[0], "eContentType");
  const eContent = encap[1];
  if (!eContent || eContent.tag !== 0xa0) malformed("CMS: detached content is not supported");
  const content = octets(children(eContent)[0], "eContent");
  const rest = sd.slice(3);
  const certsT = ctx(rest, 0);
  const certificates = certsT ? children(certsT).filter((c) => c.tag === 0x30).map((c) => parseCertificate(c.raw)) : [];
  if (certificates.length > cmsCertsMax) malformed("CMS: too many certificates");
  const signerSet = rest.find((c) => c.tag === 0x31);
  if (!signerSet) malformed("CMS: no signerInfos");
  const signerTs = children(signerSet);
  if (signerTs.length === 0 || signerTs.length > cmsSignersMax) malformed(`CMS: ${signerTs.length} signers`);
  return { contentType, content, certificates, signers: signerTs.map(parseSigner), trailingBytes: der.length - info.raw.length };
}

/** Finds the certificate named by the signer (issuer + serial) among `candidates`. */
export function signerCertificate(signer: CmsSigner, candidates: Certificate[]): Certificate | undefined {
  return candidates.find((c) => bytesEqual(c.issuerDer, signer.issuerDer) && c.serialHex === signer.serialHex);
}

/** Verifies one signer: message digest (when signed attributes exist) and the signature. */
export function verifySigner(sd: SignedData, signer: CmsSigner, cert: Certificate): { ok: boolean; detail: string } {
  if (signer.signedAttrs) {
    if (!signer.messageDigest || !bytesEqual(signer.messageDigest, hashBytes(signer.digest, sd.content))) {
      return { ok: false, detail: "messageDigest attribute does not match the content" };
    }
    if (signer.contentType !== undefined && signer.contentType !== sd.contentType) return { ok: false, detail: "contentType attribute mismatch" };
    const ok = verifySignature(cert.spki, signer.scheme, signer.signedAttrs, signer.signature);
    return { ok, detail: `${signer.scheme.kind}/${signer.digest} over signed attributes${ok ? "" : " does not verify"}` };
  }
  const ok = verifySignature(cert.spki, signer.scheme, sd.content, signer.signature);
  return { ok, detail: `${signer.scheme.kind}/${signer.digest} over content${ok ? "" : " does not verify"}` };
}
