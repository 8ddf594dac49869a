/** COSE_Sign1 (RFC 9052 §4.2) parsing and verification with ES256/ES384/ES512. */
import { malformed } from "../bytes.ts";
import { verifySignature, type Hash } from "../x509/sig.ts";
import { CborTag, decodeCbor, encodeBytes, encodeHead, encodeText, type CborValue } from "./cbor.ts";

export const COSE_SIGN1_TAG = 18;
export const coseAlgs: Record<number, { name: string; hash: Hash; size: number }> = {
  [-7]: { name: "ES256", hash: "sha256", size: 32 },
  [-35]: { name: "ES384", hash: "sha384", size: 48 },
  [-36]: { name: "ES512", hash: "sha512", size: 66 },
};

export type CoseSign1 = {
  protectedBytes: Uint8Array;
  protectedHeader: Map<CborValue, CborValue>;
  unprotected: Map<CborValue, CborValue>;
  payload: Uint8Array;
  signature: Uint8Array;
  /** Header parameter 1 (alg), from the protected header. */
  alg: number | undefined;
};

export function parseCoseSign1(buf: Uint8Array): CoseSign1 {
  let top = decodeCbor(buf, "COSE_Sign1");
  if (top instanceof CborTag) {
    if (top.tag !== COSE_SIGN1_TAG) malformed(`COSE_Sign1: unexpected tag ${top.tag}`);
    top = top.value;
  }
  if (!Array.isArray(top) || top.length !== 4) malformed("COSE_Sign1: expected an array of 4");
  const [p, u, payload, signature] = top;
  if (!(p instanceof Uint8Array)) malformed("COSE_Sign1: protected header is not a byte string");
  if (!(u instanceof Map)) malformed("COSE_Sign1: unprotected header is not a map");
  if (!(payload instanceof Uint8Array)) malformed("COSE_Sign1: payload is not a byte string (detached payloads unsupported)");
  if (!(signature instanceof Uint8Array)) malformed("COSE_Sign1: signature is not a byte string");
  const ph = p.length === 0 ? new Map() : decodeCbor(p, "COSE protected header");
  if (!(ph instanceof Map)) malformed("COSE_Sign1: protected header is not a map");
  const alg = ph.get(1);
  return {
    protectedBytes: p, protectedHeader: ph, unprotected: u, payload, signature,
    alg: typeof alg === "number" ? alg : undefined,
  };
}

/** Sig_structure = ["Signature1", body_protected, external_aad, payload]. */
export function sigStructure(s: CoseSign1, externalAad = new Uint8Array(0)): Uint8Array {
  return Buffer.concat([encodeHead(4, 4), encodeText("Signature1"), encodeBytes(s.protectedBytes), encodeBytes(externalAad), encodeBytes(s.payload)]);
}

/** Verifies the signature with the key in `spki`; false for unknown algorithms or bad sizes. */
export function verifyCoseSign1(s: CoseSign1, spki: Uint8Array): boolean {
  const alg = s.alg === undefined ? undefined : coseAlgs[s.alg];
  if (!alg || s.signature.length !== alg.size * 2) return false;
  return verifySignature(spki, { kind: "ecdsa", hash: alg.hash, encoding: "raw" }, sigStructure(s), s.signature);
}
