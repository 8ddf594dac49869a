/**
 * ECDSA P-256 keys via WebCrypto: generation and PKCS#8 PEM round-trip.
 * Private keys are extractable only so they can be written to 0600 files.
 */
import { derToPem, pemToDer } from "../../plugins/sdk/identity.ts";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";

export const EC_KEY_ALG = { name: "ECDSA", namedCurve: "P-256" } as const;
export const EC_SIGN_ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export function generateKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_KEY_ALG, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

export async function exportPkcs8Pem(privateKey: CryptoKey): Promise<string> {
  return derToPem(new Uint8Array(await crypto.subtle.exportKey("pkcs8", privateKey)), "PRIVATE KEY");
}

/** Import a PKCS#8 P-256 private key and derive its public half. MalformedInputError otherwise. */
export async function importPkcs8Pem(pem: string): Promise<CryptoKeyPair> {
  const der = pemToDer(pem, "PRIVATE KEY");
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("pkcs8", new Uint8Array(der), EC_KEY_ALG, true, ["sign"]);
  } catch (err) {
    throw new MalformedInputError("private key is not a PKCS#8 ECDSA P-256 key", { cause: err });
  }
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", privateKey);
  const publicKey = await crypto.subtle.importKey("jwk", { kty, crv, x, y, ext: true }, EC_KEY_ALG, true, ["verify"]);
  return { privateKey, publicKey };
}

/** DER SubjectPublicKeyInfo of a public key. */
export async function exportSpkiDer(publicKey: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey("spki", publicKey));
}
