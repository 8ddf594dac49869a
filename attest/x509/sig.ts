/**
 * Signature verification for every scheme the evidence formats use: RSA PKCS#1 v1.5, RSA-PSS,
 * ECDSA (DER or raw r||s), and DSA (AWS EC2 PKCS7; WebCrypto/BoringSSL have none, so bigint math).
 * Verification never throws: any failure to load the key or decode the signature is `false`.
 */
import { createHash, createPublicKey, verify as nodeVerify, constants, type KeyObject } from "node:crypto";
import { malformed } from "../bytes.ts";
import { bigUint, children, ctx, oid, parseDer, seq, smallInt, bitString, type Tlv } from "../der.ts";

export type Hash = "sha1" | "sha256" | "sha384" | "sha512";
export type SigScheme =
  | { kind: "rsa-pkcs1"; hash: Hash }
  | { kind: "rsa-pss"; hash: Hash; saltLength: number }
  | { kind: "ecdsa"; hash: Hash; encoding: "der" | "raw" }
  | { kind: "dsa"; hash: Hash };

export const hashOids: Record<string, Hash> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

const sigOids: Record<string, SigScheme> = {
  "1.2.840.113549.1.1.5": { kind: "rsa-pkcs1", hash: "sha1" },
  "1.2.840.113549.1.1.11": { kind: "rsa-pkcs1", hash: "sha256" },
  "1.2.840.113549.1.1.12": { kind: "rsa-pkcs1", hash: "sha384" },
  "1.2.840.113549.1.1.13": { kind: "rsa-pkcs1", hash: "sha512" },
  "1.2.840.10045.4.1": { kind: "ecdsa", hash: "sha1", encoding: "der" },
  "1.2.840.10045.4.3.2": { kind: "ecdsa", hash: "sha256", encoding: "der" },
  "1.2.840.10045.4.3.3": { kind: "ecdsa", hash: "sha384", encoding: "der" },
  "1.2.840.10045.4.3.4": { kind: "ecdsa", hash: "sha512", encoding: "der" },
  "1.2.840.10040.4.3": { kind: "dsa", hash: "sha1" },
  "2.16.840.1.101.3.4.3.2": { kind: "dsa", hash: "sha256" },
};

const rsaPssOid = "1.2.840.113549.1.1.10";

export function hashBytes(hash: Hash, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash(hash).update(data).digest());
}

export function hashLength(hash: Hash): number {
  return { sha1: 20, sha256: 32, sha384: 48, sha512: 64 }[hash];
}

/** Maps an AlgorithmIdentifier (SEQUENCE { OID, params }) to a scheme; unknown algorithms are malformed. */
export function schemeFromAlgId(algId: Tlv, what: string): SigScheme {
  const [o, params] = seq(algId, what);
  const id = oid(o, `${what}.algorithm`);
  const known = sigOids[id];
  if (known) return known;
  if (id === rsaPssOid) return pssParams(params, what);
  return malformed(`${what}: unsupported signature algorithm ${id}`);
}

function pssParams(params: Tlv | undefined, what: string): SigScheme {
  let hash: Hash = "sha1";
  let saltLength = 20;
  if (params && params.tag === 0x30) {
    const p = children(params);
    const h = ctx(p, 0);
    if (h) {
      const hid = oid(seq(children(h)[0], `${what}.pss.hash`)[0], `${what}.pss.hash`);
      const mapped = hashOids[hid];
      if (!mapped) malformed(`${what}: unsupported PSS hash ${hid}`);
      hash = mapped;
    }
    const s = ctx(p, 2);
    if (s) saltLength = smallInt(children(s)[0], `${what}.pss.saltLength`);
    if (saltLength < 0 || saltLength > 512) malformed(`${what}: bad PSS salt length`);
  }
  return { kind: "rsa-pss", hash, saltLength };
}

export function loadSpki(spki: Uint8Array): KeyObject | undefined {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch {
    return undefined;
  }
}

/** Verifies `sig` over `data` with the key in `spki` (DER SubjectPublicKeyInfo). */
export function verifySignature(spki: Uint8Array, scheme: SigScheme, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    if (scheme.kind === "dsa") return dsaVerify(spki, scheme.hash, data, sig);
    const key = loadSpki(spki);
    if (!key) return false;
    const d = Buffer.from(data);
    const s = Buffer.from(sig);
    switch (scheme.kind) {
      case "rsa-pkcs1":
        if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") return false;
        return nodeVerify(scheme.hash, d, { key, padding: constants.RSA_PKCS1_PADDING }, s);
      case "rsa-pss":
        if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") return false;
        return nodeVerify(scheme.hash, d, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: scheme.saltLength }, s);
      case "ecdsa":
        if (key.asymmetricKeyType !== "ec") return false;
        return nodeVerify(scheme.hash, d, { key, dsaEncoding: scheme.encoding === "raw" ? "ieee-p1363" : "der" }, s);
    }
  } catch {
    return false;
  }
}

const dsaPBitsMax = 3072;

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

function modInv(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** FIPS 186-4 DSA verification. */
export function dsaVerify(spki: Uint8Array, hash: Hash, data: Uint8Array, sig: Uint8Array): boolean {
  try {
    const [alg, pk] = seq(parseDer(spki, "DSA key"), "DSA SPKI");
    const [algOid, params] = seq(alg, "DSA algorithm");
    if (oid(algOid, "DSA algorithm") !== "1.2.840.10040.4.1") return false;
    const [pT, qT, gT] = seq(params, "DSA params");
    const p = bigUint(pT, "p"), q = bigUint(qT, "q"), g = bigUint(gT, "g");
    const y = bigUint(parseDer(bitString(pk, "DSA public key"), "DSA y"), "y");
    if (p.toString(2).length > dsaPBitsMax || q < 2n || p < 3n) return false;
    const [rT, sT] = seq(parseDer(sig, "DSA signature"), "DSA signature");
    const r = bigUint(rT, "r"), s = bigUint(sT, "s");
    if (r <= 0n || r >= q || s <= 0n || s >= q) return false;
    const qBits = q.toString(2).length;
    const h = hashBytes(hash, data);
    let z = BigInt("0x" + Buffer.from(h).toString("hex"));
    if (h.length * 8 > qBits) z >>= BigInt(h.length * 8 - qBits);
    const w = modInv(s, q);
    const u1 = (z * w) % q;
    const u2 = (r * w) % q;
    const v = ((modPow(g, u1, p) * modPow(y, u2, p)) % p) % q;
    return v === r;
  } catch {
    return false;
  }
}
