/**
 * GCP Compute Engine instance identity token (JWT, RS256) verified against an injected JWKS
 * snapshot. Checks: structure, alg (RS256), key (kid in JWKS), signature, issuer, audience,
 * time (iat/nbf not after `at` + skew, `at` before exp), project (allowlist on
 * google.compute_engine.project_id, when given; format=full required then).
 */
import { createPublicKey } from "node:crypto";
import { fromBase64, malformed } from "../bytes.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { verifySignature } from "../x509/sig.ts";

export const gcpTokenBytesMax = 16_384;
export const googleIssuers = ["https://accounts.google.com", "accounts.google.com"];

export type Jwk = { kid?: string; kty?: string; alg?: string; n?: string; e?: string; use?: string };

export type GcpTokenInput = {
  token: string;
  jwks: { keys: Jwk[] };
  at: Date;
  audience: string;
  projects?: string[];
  clockSkewMs?: number;
};

export type GceInfo = { project_id?: string; project_number?: number; zone?: string; instance_id?: string; instance_name?: string; instance_creation_timestamp?: number };
export type GcpTokenClaims = { header: Record<string, unknown>; payload: Record<string, unknown>; gce?: GceInfo };

function jsonPart(s: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(fromBase64(s)).toString("utf8"));
  } catch {
    return malformed(`JWT ${what} is not base64url JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) malformed(`JWT ${what} is not an object`);
  return v as Record<string, unknown>;
}

export function verifyGcpIdentityToken(input: GcpTokenInput): Promise<Verdict<GcpTokenClaims>> {
  return runChecks("structure", (c: Checks) => {
    if (input.token.length > gcpTokenBytesMax) malformed("JWT too large");
    const parts = input.token.trim().split(".");
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) malformed("JWT: expected three base64url parts");
    const [h, p, s] = parts as [string, string, string];
    const header = jsonPart(h, "header");
    const payload = jsonPart(p, "payload");
    const sig = fromBase64(s);
    c.pass("structure", `kid ${String(header.kid)}`);
    c.require("alg", header.alg === "RS256", `alg ${String(header.alg)}`);
    const jwk = input.jwks.keys.find((k) => k.kid !== undefined && k.kid === header.kid && k.kty === "RSA");
    if (!jwk) c.fail("key", `kid ${String(header.kid)} not in JWKS`);
    let spki: Uint8Array;
    try {
      spki = new Uint8Array(createPublicKey({ key: { kty: "RSA", n: jwk.n ?? "", e: jwk.e ?? "" }, format: "jwk" }).export({ type: "spki", format: "der" }));
    } catch {
      return c.fail("key", `JWKS key ${jwk.kid} is not a valid RSA key`);
    }
    c.pass("key", `JWKS key ${jwk.kid}`);
    const signed = new TextEncoder().encode(`${h}.${p}`);
    c.require("signature", verifySignature(spki, { kind: "rsa-pkcs1", hash: "sha256" }, signed, sig), "RS256");
    c.require("issuer", googleIssuers.includes(String(payload.iss)), `iss ${String(payload.iss)}`);
    const aud = payload.aud;
    const auds = Array.isArray(aud) ? aud : [aud];
    c.require("audience", auds.includes(input.audience), `aud ${JSON.stringify(aud)}`);
    const t = input.at.getTime();
    const skew = input.clockSkewMs ?? 0;
    const exp = payload.exp, iat = payload.iat, nbf = payload.nbf;
    if (typeof exp !== "number" || typeof iat !== "number") c.fail("time", "exp/iat missing");
    const notBefore = Math.max(iat, typeof nbf === "number" ? nbf : 0) * 1000;
    c.require("time", notBefore <= t + skew && t < exp * 1000 + skew, `valid ${new Date(notBefore).toISOString()} … ${new Date(exp * 1000).toISOString()}, at ${input.at.toISOString()}`);
    const google = payload.google as { compute_engine?: GceInfo } | undefined;
    const gce = google && typeof google === "object" ? google.compute_engine : undefined;
    if (input.projects) {
      const project = gce?.project_id;
      c.require("project", typeof project === "string" && input.projects.includes(project), `project ${String(project)}`);
    } else {
      c.pass("project", "no project allowlist configured");
    }
    const claims: GcpTokenClaims = { header, payload };
    if (gce) claims.gce = gce;
    return claims;
  });
}
