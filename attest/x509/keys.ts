/** Public key helpers. */
import { createPublicKey } from "node:crypto";
import { malformed } from "../bytes.ts";

/** SPKI for an uncompressed P-256/P-384 point (0x04 || x || y). */
export function ecPointToSpki(point: Uint8Array): Uint8Array {
  const size = (point.length - 1) / 2;
  const crv = size === 32 ? "P-256" : size === 48 ? "P-384" : undefined;
  if (point[0] !== 0x04 || !crv) malformed("public key is not an uncompressed P-256/P-384 point");
  const b64u = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  try {
    const k = createPublicKey({ key: { kty: "EC", crv, x: b64u(point.subarray(1, 1 + size)), y: b64u(point.subarray(1 + size)) }, format: "jwk" });
    return new Uint8Array(k.export({ type: "spki", format: "der" }));
  } catch {
    return malformed("public key is not a point on the curve");
  }
}
