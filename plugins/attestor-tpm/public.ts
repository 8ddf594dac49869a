/**
 * TPMT_PUBLIC: key templates (TCG EK Credential Profile default EK templates; restricted signing
 * AKs like `tpm2_createak`), parsing, object names, and conversion to SPKI PEM.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { TpmError } from "./errors.ts";
import { TpmReader, TpmWriter, concat } from "./marshal.ts";
import { TPMA_OBJECT as A, TPM_ALG, TPM_ECC_NIST_P256, hashAlgs, hashByAlg } from "./spec.ts";

export type KeyAlg = "ecc" | "rsa";

/** PolicySecret(TPM_RH_ENDORSEMENT) digest: the authPolicy of the TCG default EK templates. */
export const ekAuthPolicy = Buffer.from("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa", "hex");

const ekAttributes = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;
/** 0x00050072, as `tpm2_createak` sets it. */
export const akAttributes = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;

const templateBytesMax = 1024;

/** TCG EK Credential Profile template L-1 (RSA 2048) / L-2 (ECC NIST P-256): AES-128-CFB storage key. */
export function ekTemplate(alg: KeyAlg): Uint8Array {
  const w = new TpmWriter(templateBytesMax);
  w.u16(alg === "rsa" ? TPM_ALG.RSA : TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(ekAttributes).tpm2b(ekAuthPolicy);
  w.u16(TPM_ALG.AES).u16(128).u16(TPM_ALG.CFB); // symmetric
  w.u16(TPM_ALG.NULL); // scheme
  if (alg === "rsa") w.u16(2048).u32(0).tpm2b(new Uint8Array(256));
  else w.u16(TPM_ECC_NIST_P256).u16(TPM_ALG.NULL).tpm2b(new Uint8Array(32)).tpm2b(new Uint8Array(32));
  return w.finish();
}

/** Restricted signing key: ECDSA P-256/SHA-256 or RSASSA-2048/SHA-256. */
export function akTemplate(alg: KeyAlg): Uint8Array {
  const w = new TpmWriter(templateBytesMax);
  w.u16(alg === "rsa" ? TPM_ALG.RSA : TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(akAttributes).tpm2b();
  w.u16(TPM_ALG.NULL); // symmetric
  if (alg === "rsa") w.u16(TPM_ALG.RSASSA).u16(TPM_ALG.SHA256).u16(2048).u32(0).tpm2b();
  else w.u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).u16(TPM_ECC_NIST_P256).u16(TPM_ALG.NULL).tpm2b().tpm2b();
  return w.finish();
}

export interface ParsedPublic {
  readonly type: KeyAlg;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Uint8Array;
  /** Symmetric algorithm of a storage key (AES key bits), or undefined for TPM_ALG_NULL. */
  readonly symmetric?: { readonly alg: number; readonly keyBits: number; readonly mode: number };
  readonly scheme: { readonly alg: number; readonly hashAlg?: number };
  readonly rsa?: { readonly keyBits: number; readonly exponent: number; readonly modulus: Uint8Array };
  readonly ecc?: { readonly curve: number; readonly x: Uint8Array; readonly y: Uint8Array };
}

/** Parse a TPMT_PUBLIC (RSA and ECC only). Throws TpmError("malformed-response") on anything else. */
export function parsePublic(publicArea: Uint8Array): ParsedPublic {
  const r = new TpmReader(publicArea, "TPMT_PUBLIC");
  const typeAlg = r.u16();
  if (typeAlg !== TPM_ALG.RSA && typeAlg !== TPM_ALG.ECC) {
    throw new TpmError("malformed-response", `TPMT_PUBLIC type 0x${typeAlg.toString(16)} is not RSA or ECC`);
  }
  const nameAlg = r.u16();
  const attributes = r.u32();
  const authPolicy = r.tpm2b();
  const symAlg = r.u16();
  const symmetric = symAlg === TPM_ALG.NULL ? undefined : { alg: symAlg, keyBits: r.u16(), mode: r.u16() };
  const schemeAlg = r.u16();
  const scheme = schemeAlg === TPM_ALG.NULL ? { alg: schemeAlg } : { alg: schemeAlg, hashAlg: r.u16() };
  if (typeAlg === TPM_ALG.RSA) {
    const keyBits = r.u16();
    const exponent = r.u32() || 65537;
    const modulus = r.tpm2b();
    r.end();
    return { type: "rsa", nameAlg, attributes, authPolicy, symmetric, scheme, rsa: { keyBits, exponent, modulus } };
  }
  const curve = r.u16();
  const kdf = r.u16();
  if (kdf !== TPM_ALG.NULL) r.u16();
  const x = r.tpm2b();
  const y = r.tpm2b();
  r.end();
  return { type: "ecc", nameAlg, attributes, authPolicy, symmetric, scheme, ecc: { curve, x, y } };
}

/** TPM2B_PUBLIC bytes (UINT16 size + TPMT_PUBLIC), the interchange form for public areas. */
export function toTpm2bPublic(publicArea: Uint8Array): Uint8Array {
  return new TpmWriter(publicArea.length + 2).tpm2b(publicArea).finish();
}

export function fromTpm2bPublic(tpm2b: Uint8Array): Uint8Array {
  const r = new TpmReader(tpm2b, "TPM2B_PUBLIC");
  const area = r.tpm2b();
  r.end();
  return area;
}

/** The object's Name: nameAlg (UINT16) || H_nameAlg(TPMT_PUBLIC). */
export function objectName(publicArea: Uint8Array): Uint8Array {
  const nameAlg = new DataView(publicArea.buffer, publicArea.byteOffset, publicArea.byteLength).getUint16(2);
  const hash = hashByAlg(nameAlg);
  if (!hash || hash === "sha1") throw new TpmError("malformed-response", `unsupported nameAlg 0x${nameAlg.toString(16)}`);
  const alg = new Uint8Array([nameAlg >> 8, nameAlg & 0xff]);
  return concat(alg, new Uint8Array(createHash(hash).update(publicArea).digest()));
}

function b64url(b: Uint8Array): string {
  return Buffer.from(b).toString("base64url");
}

/** The public key as a node:crypto KeyObject (RSA or NIST P-256 only). */
export function publicKeyObject(publicArea: Uint8Array): KeyObject {
  const p = parsePublic(publicArea);
  if (p.rsa) {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(p.rsa.exponent);
    return createPublicKey({ format: "jwk", key: { kty: "RSA", n: b64url(p.rsa.modulus), e: b64url(stripZeros(e)) } });
  }
  const ecc = p.ecc!;
  if (ecc.curve !== TPM_ECC_NIST_P256) throw new TpmError("malformed-response", `unsupported curve 0x${ecc.curve.toString(16)}`);
  return createPublicKey({ format: "jwk", key: { kty: "EC", crv: "P-256", x: b64url(leftPad(ecc.x, 32)), y: b64url(leftPad(ecc.y, 32)) } });
}

/** SubjectPublicKeyInfo PEM, as `tpm2_readpublic -f pem` writes it. */
export function publicKeyPem(publicArea: Uint8Array): string {
  return publicKeyObject(publicArea).export({ type: "spki", format: "pem" }).toString();
}

export function leftPad(b: Uint8Array, n: number): Uint8Array {
  if (b.length > n) throw new TpmError("malformed-response", `${b.length}-byte value where at most ${n} fit`);
  const out = new Uint8Array(n);
  out.set(b, n - b.length);
  return out;
}

function stripZeros(b: Uint8Array): Uint8Array {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

export function digestBytesOf(nameAlg: number): number {
  const h = hashByAlg(nameAlg);
  if (!h) throw new TpmError("malformed-response", `unknown hash 0x${nameAlg.toString(16)}`);
  return hashAlgs[h].bytes;
}
