/**
 * TPM 2.0 structures (TCG TPM 2.0 Library Part 2), parsed by hand: TPMS_ATTEST, TPMT_SIGNATURE,
 * TPMT_PUBLIC / TPM2B_PUBLIC. All integers are big-endian; every overrun is MalformedInputError.
 */
import { createPublicKey } from "node:crypto";
import { Reader, malformed } from "../bytes.ts";
import type { Hash } from "../x509/sig.ts";

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_CERTIFY = 0x8017;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
export const TPM_ST_ATTEST_CREATION = 0x801a;

export const TPM_ALG = {
  RSA: 0x0001, SHA1: 0x0004, SHA256: 0x000b, SHA384: 0x000c, SHA512: 0x000d, NULL: 0x0010,
  RSASSA: 0x0014, RSAPSS: 0x0016, ECDSA: 0x0018, ECDAA: 0x001a, ECC: 0x0023,
} as const;

const tpmHashes: Record<number, Hash> = { 0x0004: "sha1", 0x000b: "sha256", 0x000c: "sha384", 0x000d: "sha512" };
const curves: Record<number, { name: string; size: number }> = {
  0x0003: { name: "P-256", size: 32 }, 0x0004: { name: "P-384", size: 48 }, 0x0005: { name: "P-521", size: 66 },
};

/** Limits from the reference implementation (TPM2B_NAME, TPM2B_DATA, PCR selection). */
export const pcrSelectionsMax = 16;
export const pcrSelectBytesMax = 4;
const tpm2bMax = 1024;

export function tpmHash(alg: number, what: string): Hash {
  const h = tpmHashes[alg];
  if (!h) malformed(`${what}: unsupported hash algorithm 0x${alg.toString(16).padStart(4, "0")}`);
  return h;
}

export type PcrSelection = { hash: Hash; pcrs: number[] };

export type TpmsAttest = {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  quote?: { pcrSelect: PcrSelection[]; pcrDigest: Uint8Array };
  certify?: { name: Uint8Array; qualifiedName: Uint8Array };
};

export function parsePcrSelection(r: Reader): PcrSelection[] {
  const count = r.u32("TPML_PCR_SELECTION.count");
  if (count > pcrSelectionsMax) malformed(`${r.what}: ${count} PCR selections exceeds ${pcrSelectionsMax}`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = tpmHash(r.u16("TPMS_PCR_SELECTION.hash"), r.what);
    const n = r.u8("sizeofSelect");
    if (n > pcrSelectBytesMax) malformed(`${r.what}: sizeofSelect ${n} exceeds ${pcrSelectBytesMax}`);
    const bits = r.bytes(n, "pcrSelect");
    const pcrs: number[] = [];
    for (let p = 0; p < n * 8; p++) if (bits[p >> 3]! & (1 << (p & 7))) pcrs.push(p);
    out.push({ hash, pcrs });
  }
  return out;
}

export function parseTpmsAttest(buf: Uint8Array): TpmsAttest {
  const r = new Reader(buf, "TPMS_ATTEST");
  const a: TpmsAttest = {
    magic: r.u32("magic"),
    type: r.u16("type"),
    qualifiedSigner: r.tpm2b("qualifiedSigner", tpm2bMax),
    extraData: r.tpm2b("extraData", tpm2bMax),
    clock: r.u64("clock"),
    resetCount: r.u32("resetCount"),
    restartCount: r.u32("restartCount"),
    safe: r.u8("safe") !== 0,
    firmwareVersion: r.u64("firmwareVersion"),
  };
  if (a.type === TPM_ST_ATTEST_QUOTE) {
    a.quote = { pcrSelect: parsePcrSelection(r), pcrDigest: r.tpm2b("pcrDigest", 64) };
    r.end();
  } else if (a.type === TPM_ST_ATTEST_CERTIFY) {
    a.certify = { name: r.tpm2b("name", tpm2bMax), qualifiedName: r.tpm2b("qualifiedName", tpm2bMax) };
    r.end();
  }
  return a;
}

export type TpmtSignature =
  | { sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; hash: Hash; sig: Uint8Array }
  | { sigAlg: typeof TPM_ALG.ECDSA; hash: Hash; r: Uint8Array; s: Uint8Array };

export function parseTpmtSignature(buf: Uint8Array): TpmtSignature {
  const r = new Reader(buf, "TPMT_SIGNATURE");
  const sigAlg = r.u16("sigAlg");
  const hash = tpmHash(r.u16("hash"), "TPMT_SIGNATURE");
  let out: TpmtSignature;
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    out = { sigAlg, hash, sig: r.tpm2b("sig", 1024) };
  } else if (sigAlg === TPM_ALG.ECDSA) {
    out = { sigAlg, hash, r: r.tpm2b("signatureR", 128), s: r.tpm2b("signatureS", 128) };
  } else {
    return malformed(`TPMT_SIGNATURE: unsupported sigAlg 0x${sigAlg.toString(16)}`);
  }
  r.end();
  return out;
}

export type TpmtPublic = {
  type: number;
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  /** Signing scheme in the key's parameters (TPM_ALG_NULL when unrestricted). */
  scheme: number;
  schemeHash?: Hash;
  rsa?: { keyBits: number; exponent: number; modulus: Uint8Array };
  ecc?: { curve: string; size: number; x: Uint8Array; y: Uint8Array };
  /** The exact TPMT_PUBLIC bytes (the TPM object name is nameAlg || H(these)). */
  raw: Uint8Array;
};

function schemeWithHash(r: Reader, what: string): { scheme: number; hash?: Hash } {
  const scheme = r.u16(`${what}.scheme`);
  if (scheme === TPM_ALG.NULL) return { scheme };
  const hash = tpmHash(r.u16(`${what}.hashAlg`), what);
  if (scheme === TPM_ALG.ECDAA) r.u16(`${what}.count`);
  return { scheme, hash };
}

function symDef(r: Reader): void {
  if (r.u16("symmetric.algorithm") !== TPM_ALG.NULL) {
    r.u16("symmetric.keyBits");
    r.u16("symmetric.mode");
  }
}

export function parseTpmtPublic(buf: Uint8Array): TpmtPublic {
  const r = new Reader(buf, "TPMT_PUBLIC");
  const type = r.u16("type");
  const nameAlg = r.u16("nameAlg");
  const objectAttributes = r.u32("objectAttributes");
  const authPolicy = r.tpm2b("authPolicy", 64);
  let out: TpmtPublic;
  if (type === TPM_ALG.RSA) {
    symDef(r);
    const s = schemeWithHash(r, "rsaScheme");
    const keyBits = r.u16("keyBits");
    const exponent = r.u32("exponent") || 65537;
    const modulus = r.tpm2b("unique.rsa", 1024);
    if (modulus.length === 0) malformed("TPMT_PUBLIC: empty RSA modulus");
    out = { type, nameAlg, objectAttributes, authPolicy, scheme: s.scheme, rsa: { keyBits, exponent, modulus }, raw: buf };
    if (s.hash) out.schemeHash = s.hash;
  } else if (type === TPM_ALG.ECC) {
    symDef(r);
    const s = schemeWithHash(r, "eccScheme");
    const curveId = r.u16("curveID");
    const curve = curves[curveId];
    if (!curve) malformed(`TPMT_PUBLIC: unsupported ECC curve 0x${curveId.toString(16)}`);
    schemeWithHash(r, "kdf");
    const x = r.tpm2b("unique.x", 66);
    const y = r.tpm2b("unique.y", 66);
    out = { type, nameAlg, objectAttributes, authPolicy, scheme: s.scheme, ecc: { curve: curve.name, size: curve.size, x, y }, raw: buf };
    if (s.hash) out.schemeHash = s.hash;
  } else {
    return malformed(`TPMT_PUBLIC: unsupported key type 0x${type.toString(16)}`);
  }
  r.end();
  return out;
}

/** TPM2B_PUBLIC: u16 size then TPMT_PUBLIC. */
export function parseTpm2bPublic(buf: Uint8Array): TpmtPublic {
  const r = new Reader(buf, "TPM2B_PUBLIC");
  const inner = r.tpm2b("publicArea", 2048);
  r.end();
  return parseTpmtPublic(inner);
}

function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length > n) malformed(`ECC coordinate of ${b.length} bytes exceeds ${n}`);
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

/** The key as DER SubjectPublicKeyInfo. */
export function tpmPublicToSpki(p: TpmtPublic): Uint8Array {
  const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  try {
    if (p.rsa) {
      const e = new Uint8Array(4);
      new DataView(e.buffer).setUint32(0, p.rsa.exponent);
      let i = 0;
      while (i < 3 && e[i] === 0) i++;
      const key = createPublicKey({ key: { kty: "RSA", n: b64u(p.rsa.modulus), e: b64u(e.subarray(i)) }, format: "jwk" });
      return new Uint8Array(key.export({ type: "spki", format: "der" }));
    }
    const ecc = p.ecc!;
    const key = createPublicKey({
      key: { kty: "EC", crv: ecc.curve, x: b64u(leftPad(ecc.x, ecc.size)), y: b64u(leftPad(ecc.y, ecc.size)) },
      format: "jwk",
    });
    return new Uint8Array(key.export({ type: "spki", format: "der" }));
  } catch (e) {
    if (e instanceof Error && e.name === "MalformedInputError") throw e;
    return malformed(`TPMT_PUBLIC: key is not a valid ${p.rsa ? "RSA" : "EC"} public key`);
  }
}
