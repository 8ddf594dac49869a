/** PKCS#10 certificate requests: created by the agent, checked by the CA. */
import { MalformedInputError, UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { csrBytesMax } from "./constants.ts";
import { EC_SIGN_ALG } from "./keys.ts";
import { x509 } from "./x509.ts";
import type { Pkcs10CertificateRequest } from "@peculiar/x509";

/** DER SPKI prefix shared by every uncompressed P-256 key: SEQ{SEQ{ecPublicKey, prime256v1}, BIT STRING 04...}. */
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex");

/**
 * A CSR for `keyPair`. The subject is informational only: the CA ignores
 * subject and SANs and names the certificate itself.
 */
export async function createCsr(keyPair: CryptoKeyPair, subject = "CN=grey-agent"): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys: keyPair, signingAlgorithm: EC_SIGN_ALG });
  return new Uint8Array(csr.rawData);
}

function parseCsr(csrDer: Uint8Array): Pkcs10CertificateRequest {
  if (csrDer.byteLength > csrBytesMax) throw new MalformedInputError(`CSR of ${csrDer.byteLength} bytes exceeds ${csrBytesMax}`);
  try {
    return new x509.Pkcs10CertificateRequest(csrDer);
  } catch (err) {
    throw new MalformedInputError("CSR is not a DER PKCS#10 request", { cause: err });
  }
}

/** DER SPKI of the CSR's key, which must be uncompressed EC P-256. Parses only: `verifyCsr` checks the signature. */
export function csrPublicKey(csrDer: Uint8Array): Uint8Array {
  const spki = new Uint8Array(parseCsr(csrDer).publicKey.rawData);
  if (spki.byteLength !== P256_SPKI_PREFIX.byteLength + 64 || !Buffer.from(spki.subarray(0, P256_SPKI_PREFIX.byteLength)).equals(P256_SPKI_PREFIX)) {
    throw new UnauthorizedError("CSR key must be an uncompressed ECDSA P-256 key");
  }
  return spki;
}

/** Check the CSR is P-256 and self-signed by its key (proof of possession); returns the SPKI DER. */
export async function verifyCsr(csrDer: Uint8Array): Promise<Uint8Array> {
  const spki = csrPublicKey(csrDer);
  let ok = false;
  try {
    ok = await parseCsr(csrDer).verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new UnauthorizedError("CSR signature does not verify (no proof of key possession)");
  return spki;
}
