/**
 * TPM2_MakeCredential done in software by the verifier (TCG TPM Library Part 1, section 24 and
 * annex B.10 / C.6): seal a secret to an EK so that only the TPM holding that EK, and only for an
 * object with the given Name loaded on it, can recover it with TPM2_ActivateCredential.
 *
 *   seed        RSA EK: random, RSA-OAEP(SHA-256, label "IDENTITY\0")
 *               ECC EK: ephemeral ECDH; seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, ek.x)
 *   symKey      = KDFa(nameAlg, seed, "STORAGE", objectName, "", ekSymBits)
 *   encIdentity = AES-CFB(symKey, iv = 0, TPM2B_DIGEST(secret))
 *   hmacKey     = KDFa(nameAlg, seed, "INTEGRITY", "", "", digestBits)
 *   blob        = TPM2B_DIGEST(HMAC(hmacKey, encIdentity || objectName)) || encIdentity
 */
import { constants, createCipheriv, createECDH, createHash, createHmac, publicEncrypt, randomBytes } from "node:crypto";
import { TpmError } from "./errors.ts";
import { TpmWriter, concat } from "./marshal.ts";
import { digestBytesOf, leftPad, parsePublic, publicKeyObject } from "./public.ts";
import { TPM_ALG, TPM_ECC_NIST_P256, hashByAlg, type HashName } from "./spec.ts";

export interface MadeCredential {
  /** Contents of TPM2B_ID_OBJECT (the credentialBlob parameter of ActivateCredential). */
  readonly idObject: Uint8Array;
  /** Contents of TPM2B_ENCRYPTED_SECRET (the secret parameter of ActivateCredential). */
  readonly encryptedSecret: Uint8Array;
}

export interface MakeCredentialOptions {
  /** Injected randomness (RSA seed, ECDH ephemeral key); defaults to node:crypto. */
  readonly randomBytes?: (n: number) => Uint8Array;
}

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function label(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`);
}

/** KDFa (SP 800-108 counter mode with HMAC), Part 1 section 11.4.10.2. */
export function kdfa(hash: HashName, key: Uint8Array, use: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const out: Uint8Array[] = [];
  const bytes = Math.ceil(bits / 8);
  for (let i = 1, have = 0; have < bytes; i++) {
    const block = createHmac(hash, key).update(concat(u32be(i), label(use), contextU, contextV, u32be(bits))).digest();
    out.push(new Uint8Array(block));
    have += block.length;
  }
  return concat(...out).subarray(0, bytes);
}

/** KDFe (SP 800-56A concatenation KDF), Part 1 section 11.4.10.3. */
export function kdfe(hash: HashName, z: Uint8Array, use: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Uint8Array {
  const out: Uint8Array[] = [];
  const bytes = Math.ceil(bits / 8);
  for (let i = 1, have = 0; have < bytes; i++) {
    const block = createHash(hash).update(concat(u32be(i), z, label(use), partyU, partyV)).digest();
    out.push(new Uint8Array(block));
    have += block.length;
  }
  return concat(...out).subarray(0, bytes);
}

/**
 * @param ekPublicArea TPMT_PUBLIC of the EK (a restricted decryption key with an AES-CFB symmetric).
 * @param objectName   Name of the object (AK) the credential is bound to.
 * @param secret       At most a digest of the EK's nameAlg (e.g. 32 bytes for SHA-256).
 */
export function makeCredential(ekPublicArea: Uint8Array, objectName: Uint8Array, secret: Uint8Array, options: MakeCredentialOptions = {}): MadeCredential {
  const rand = options.randomBytes ?? ((n: number) => new Uint8Array(randomBytes(n)));
  const ek = parsePublic(ekPublicArea);
  const hash = hashByAlg(ek.nameAlg);
  if (!hash) throw new TpmError("malformed-response", `EK nameAlg 0x${ek.nameAlg.toString(16)} unsupported`);
  const digestBytes = digestBytesOf(ek.nameAlg);
  if (secret.length === 0 || secret.length > digestBytes) throw new RangeError(`secret must be 1..${digestBytes} bytes`);
  if (!ek.symmetric || ek.symmetric.alg !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB) {
    throw new TpmError("malformed-response", "EK is not a storage key with AES-CFB");
  }

  const { seed, encryptedSecret } = ek.type === "rsa" ? rsaSeed(ekPublicArea, hash, digestBytes, rand) : eccSeed(ek, hash, digestBytes, rand);

  const symKey = kdfa(hash, seed, "STORAGE", objectName, new Uint8Array(0), ek.symmetric.keyBits);
  const plain = new TpmWriter(2 + secret.length).tpm2b(secret).finish();
  const cipher = createCipheriv(`aes-${ek.symmetric.keyBits}-cfb`, symKey, new Uint8Array(16));
  const encIdentity = concat(new Uint8Array(cipher.update(plain)), new Uint8Array(cipher.final()));
  const hmacKey = kdfa(hash, seed, "INTEGRITY", new Uint8Array(0), new Uint8Array(0), digestBytes * 8);
  const outerHmac = new Uint8Array(createHmac(hash, hmacKey).update(concat(encIdentity, objectName)).digest());
  const idObject = concat(new TpmWriter(2 + outerHmac.length).tpm2b(outerHmac).finish(), encIdentity);
  return { idObject, encryptedSecret };
}

function rsaSeed(ekPublicArea: Uint8Array, hash: HashName, digestBytes: number, rand: (n: number) => Uint8Array) {
  const seed = rand(digestBytes);
  const encryptedSecret = publicEncrypt(
    { key: publicKeyObject(ekPublicArea), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash, oaepLabel: label("IDENTITY") },
    seed,
  );
  return { seed, encryptedSecret: new Uint8Array(encryptedSecret) };
}

function eccSeed(ek: ReturnType<typeof parsePublic>, hash: HashName, digestBytes: number, rand: (n: number) => Uint8Array) {
  const point = ek.ecc!;
  if (point.curve !== TPM_ECC_NIST_P256) throw new TpmError("malformed-response", `EK curve 0x${point.curve.toString(16)} unsupported`);
  const ekX = leftPad(point.x, 32);
  const ekY = leftPad(point.y, 32);
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(eccScalar(rand));
  const ephemeral = ecdh.getPublicKey(); // 04 || x || y
  const z = new Uint8Array(ecdh.computeSecret(concat(new Uint8Array([4]), ekX, ekY)));
  const ephX = new Uint8Array(ephemeral.subarray(1, 33));
  const ephY = new Uint8Array(ephemeral.subarray(33, 65));
  const seed = kdfe(hash, z, "IDENTITY", ephX, ekX, digestBytes * 8);
  const encryptedSecret = new TpmWriter(68).tpm2b(ephX).tpm2b(ephY).finish(); // TPMS_ECC_POINT
  return { seed, encryptedSecret };
}

/** A P-256 private scalar in [1, n-1] from injected randomness (rejection sampling). */
function eccScalar(rand: (n: number) => Uint8Array): Uint8Array {
  const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
  for (let i = 0; i < 64; i++) {
    const k = rand(32);
    const v = BigInt(`0x${Buffer.from(k).toString("hex")}`);
    if (v > 0n && v < n) return k;
  }
  throw new Error("randomBytes source keeps returning out-of-range scalars");
}
