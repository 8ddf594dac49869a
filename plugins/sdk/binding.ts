/**
 * How attestation evidence is bound to a join or renewal: the hub's fresh
 * nonce, the agent's peer id and the key being certified are framed into one
 * message, and each hardware format carries a digest of it in the field the
 * hardware signs (TPM extraData, Nitro nonce, SEV-SNP / DCAP report_data, GCP
 * token audience, Azure IMDS nonce). A verifier recomputes the digest from
 * the binding it expects and compares: a quote made for another nonce, node
 * or key does not verify.
 *
 *   message = "grey-attest-binding/v1\0" || u32be(len nonce) || nonce
 *             || u32be(len peerId) || utf8(peerId) || subjectPublicKey (DER SPKI)
 */
import { createHash } from "node:crypto";
import type { AttestationResult, Check, EvidenceBinding } from "./attestor.ts";
import type { z } from "zod";
import { decodeCbor } from "./codec.ts";
import { evidenceBytesMax } from "./limits.ts";

const DOMAIN = new TextEncoder().encode("grey-attest-binding/v1\0");

export function bindingMessage(b: EvidenceBinding): Uint8Array {
  const peer = new TextEncoder().encode(b.peerId);
  const parts = [DOMAIN, u32(b.nonce.byteLength), b.nonce, u32(peer.byteLength), peer, b.subjectPublicKey];
  return new Uint8Array(Buffer.concat(parts));
}

/** 32 bytes: TPM extraData, Nitro nonce. */
export function bindingDigest256(b: EvidenceBinding): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bindingMessage(b)).digest());
}

/** 64 bytes: SEV-SNP and DCAP report_data (the whole field). */
export function bindingDigest512(b: EvidenceBinding): Uint8Array {
  return new Uint8Array(createHash("sha512").update(bindingMessage(b)).digest());
}

/** GCP identity token audience: "grey:" + hex(sha256). */
export function bindingAudience(b: EvidenceBinding): string {
  return `grey:${Buffer.from(bindingDigest256(b)).toString("hex")}`;
}

/** Azure IMDS attested-document nonce: the first 16 bytes of sha256, hex (32 characters). */
export function bindingAzureNonce(b: EvidenceBinding): string {
  return Buffer.from(bindingDigest256(b).subarray(0, 16)).toString("hex");
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** What every attest/ verifier returns, structurally (attest/result.ts Verdict). */
export type VerdictLike<T> = { ok: true; checks: Check[]; claims: T } | { ok: false; checks: Check[]; failed: string; error: string };

/** Check names and details are capped like the catalog's result schema. */
const checkNameMax = 64;
const checkDetailMax = 4096;
const checksMax = 64;

/**
 * A verifier's verdict as an AttestationResult: check names preserved (capped to
 * the catalog's limits), claims flattened by `claims` when the verdict is valid.
 */
export function verdictResult<T>(
  format: string,
  v: VerdictLike<T>,
  claims: (c: T) => AttestationResult["claims"],
  extra: Check[] = [],
): AttestationResult {
  let checks = [...v.checks, ...extra].map((c) => ({
    name: c.name.slice(0, checkNameMax),
    ok: c.ok,
    ...(c.detail !== undefined ? { detail: c.detail.slice(0, checkDetailMax) } : {}),
  }));
  if (checks.length > checksMax) {
    // keep the failed check (last) visible; passed checks in the middle are summarised
    const failed = checks.filter((c) => !c.ok);
    const passed = checks.filter((c) => c.ok).slice(0, checksMax - 1 - failed.length);
    checks = [...passed, { name: "checks-elided", ok: true, detail: `${checks.length - passed.length - failed.length} further passed checks not shown` }, ...failed];
  }
  const failedExtra = extra.find((c) => !c.ok);
  if (!v.ok) return { format, ok: false, checks, failed: v.failed.slice(0, checkNameMax), claims: {} };
  if (failedExtra) return { format, ok: false, checks, failed: failedExtra.name, claims: {} };
  return { format, ok: true, checks, claims: claims(v.claims) };
}

/** A failed result with one check (malformed evidence before any verifier ran). */
export function failedResult(format: string, name: string, detail: string): AttestationResult {
  return { format, ok: false, checks: [{ name, ok: false, detail: detail.slice(0, checkDetailMax) }], failed: name, claims: {} };
}

/**
 * Decode evidence bytes (CBOR, at most evidenceBytesMax) and validate them
 * with `schema`; anything else is a failed `structure` check naming `shape`.
 */
export function parseEvidenceData<S extends z.ZodType>(
  format: string,
  data: Uint8Array,
  schema: S,
  shape: string,
): { ok: true; value: z.infer<S> } | { ok: false; result: AttestationResult } {
  let raw: unknown;
  try {
    raw = decodeCbor(data, evidenceBytesMax);
  } catch {
    raw = undefined;
  }
  const r = schema.safeParse(raw);
  return r.success ? { ok: true, value: r.data } : { ok: false, result: failedResult(format, "structure", `evidence is not ${shape}`) };
}
