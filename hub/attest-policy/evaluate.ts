/**
 * Judging a verified attestation result against the policy of the joining node's trust boundary.
 * The verifier (catalog) proved what the evidence says; the policy decides whether that is enough
 * here. Policy checks are appended to the result's checks, named `policy.*`.
 */
import type { AttestationResult, Check } from "../../plugins/sdk/attestor.ts";
import type { AttestPolicy, Boundary, BoundaryRule, Format, FormatRule } from "./parse.ts";

/** same-cluster: the hub's own org and cluster; same-org: the hub's org; different-org otherwise. */
export function boundaryOf(hub: { org: string; cluster?: string }, node: { org: string; cluster: string }): Boundary {
  if (node.org !== hub.org) return "different-org";
  return hub.cluster !== undefined && node.cluster === hub.cluster ? "same-cluster" : "same-org";
}

/** Claims holding an evidence timestamp, per format (age = now - timestamp). */
const TIMESTAMP_CLAIM: Partial<Record<Format, string>> = { "nitro-enclave": "timestamp", "azure-imds": "created", "gcp-iit": "issued" };

export type Judged = {
  result: AttestationResult;
  boundary: Boundary;
  /** When the recorded result stops counting (renewal must re-attest before). */
  expiresAt?: Date;
};

/**
 * `ak.trust` claim values the policy adds for EK trust. `AK_PENDING`: the AK is accepted only if the
 * join completes credential activation against the EK (hub/node/handlers.ts does it and replaces the
 * claim with `AK_ACTIVATED`); a result carrying `AK_PENDING` must never be recorded.
 */
export const AK_PENDING = "ek-activation-pending";
export const AK_ACTIVATED = "ek-activation";

/**
 * Policy checks for a result that verified; a failed result is returned as is. `renewalOf`: the
 * member's recorded result when judging a renewal — an AK trusted through EK activation must then be
 * the very AK activated at join (same AK and EK names), since renewals have no activation round trip.
 */
export function judge(policy: AttestPolicy, boundary: Boundary, result: AttestationResult, now: Date, renewalOf?: AttestationResult): Judged {
  if (!result.ok) return { result, boundary };
  const rule = policy.boundaries[boundary];
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  if (!rule) {
    add("policy.boundary", false, `the policy admits no ${boundary} node (no boundaries.${boundary})`);
    return done(result, checks, boundary);
  }
  add("policy.boundary", true, boundary);
  const format = result.format as Format;
  if (!rule.formats.includes(format)) {
    add("policy.format", false, `${result.format} is not accepted for ${boundary} (accepted: ${rule.formats.join(", ")})`);
    return done(result, checks, boundary);
  }
  add("policy.format", true, result.format);
  freshness(rule, format, result, now, add);
  const fr = rule.rules[format];
  let claims = result.claims;
  if (format === "tpm2-quote") {
    const trust = akTrust(policy, fr ?? {}, claims, renewalOf, add);
    if (trust) claims = { ...claims, "ak.trust": trust };
  }
  if (fr) formatRules(format, fr, claims, add);
  const out = done({ ...result, claims }, checks, boundary);
  if (out.result.ok && rule.resultTtlMs !== undefined) out.expiresAt = new Date(now.getTime() + rule.resultTtlMs);
  return out;
}

function freshness(rule: BoundaryRule, format: Format, result: AttestationResult, now: Date, add: (n: string, ok: boolean, d: string) => void): void {
  if (result.claims.fresh === false) {
    add("policy.fresh", rule.allowNonFresh, rule.allowNonFresh ? "not bound to a nonce; allowed by allowNonFresh" : "evidence is not bound to a nonce and allowNonFresh is false");
    return;
  }
  const claim = TIMESTAMP_CLAIM[format];
  const ts = claim ? result.claims[claim] : undefined;
  if (typeof ts !== "string") {
    add("policy.max-age", true, "bound to this exchange's nonce");
    return;
  }
  const age = now.getTime() - Date.parse(ts);
  add("policy.max-age", Number.isFinite(age) && age <= rule.maxAgeMs, `evidence from ${ts}, ${Math.round(age / 1000)} s old (limit ${rule.maxAgeMs / 1000} s)`);
}

/**
 * Why the hub may trust the quoting AK (`policy.ak`, and `policy.ek` on the EK route): pinned by
 * name, certified by an AK root, or — when the boundary pins EKs (ekNames) or EK certificates are
 * trusted (verifiers.tpm2-quote.ekRoots) — the EK is trusted and the AK is proven to live in its TPM
 * by credential activation at join (returns AK_PENDING), then at renewal by being the same AK.
 * Returns the `ak.trust` claim to record when the policy changes it.
 */
function akTrust(policy: AttestPolicy, fr: FormatRule, claims: AttestationResult["claims"], renewalOf: AttestationResult | undefined, add: (n: string, ok: boolean, d: string) => void): string | undefined {
  const name = String(claims["ak.name"] ?? "");
  if (fr.akNames?.includes(name)) return void add("policy.ak", true, `AK name ${name} is pinned`);
  if (claims["ak.trust"] === "certificate") return void add("policy.ak", true, "AK certified by a configured root");
  const ekRoots = (policy.verifiers["tpm2-quote"]?.ekRoots?.length ?? 0) > 0;
  if (!fr.ekNames && !ekRoots) {
    return void add("policy.ak", false, fr.akNames ? `AK name ${name || "(none)"} is not pinned` : "AK neither pinned nor certified");
  }
  const ek = String(claims["ek.name"] ?? "");
  const ekPinned = fr.ekNames?.includes(ek) ?? false;
  const ekCertified = ekRoots && claims["ek.trust"] === "certificate";
  if (!ekPinned && !ekCertified) {
    const why = !ek ? "the evidence carries no EK (agent too old for credential activation)"
      : `EK name ${ek} is not pinned${ekRoots ? " and has no EK certificate from a configured root" : ""}`;
    return void add("policy.ek", false, `${why}${fr.akNames ? `; AK name ${name} is not pinned either` : ""}`);
  }
  add("policy.ek", true, ekPinned ? `EK name ${ek} is pinned` : `EK certified by a configured root (${String(claims["ek.subject"] ?? "")})`);
  if (!renewalOf) {
    add("policy.ak", true, `AK ${name} to be proven by credential activation against EK ${ek}`);
    return AK_PENDING;
  }
  const prior = renewalOf.claims;
  if (prior["ak.trust"] !== AK_ACTIVATED) return void add("policy.ak", false, "no AK was activated against the EK at join (the policy changed since): join again");
  const same = prior["ak.name"] === name && prior["ek.name"] === ek;
  add("policy.ak", same, same ? `same AK as activated at join (${name})` : `AK ${name} / EK ${ek} are not the AK ${String(prior["ak.name"])} / EK ${String(prior["ek.name"])} activated at join`);
  return same ? AK_ACTIVATED : undefined;
}

function formatRules(format: Format, fr: FormatRule, claims: AttestationResult["claims"], add: (n: string, ok: boolean, d: string) => void): void {
  if (fr.pcrs) {
    const banks: Record<string, Record<string, string[]>> = format === "tpm2-quote" ? (fr.pcrs as Record<string, Record<string, string[]>>) : { sha384: fr.pcrs as Record<string, string[]> };
    for (const [bank, pcrs] of Object.entries(banks)) {
      for (const [idx, allowed] of Object.entries(pcrs)) {
        const v = String(claims[`pcr.${bank}.${idx}`] ?? "");
        const ok = allowed.includes(v);
        add(`policy.pcr.${idx}`, ok, `${bank} PCR ${idx} = ${v || "(not quoted)"}${ok ? "" : " — not in the allow-list"}`);
      }
    }
  }
  if (fr.measurements) {
    const m = String(claims.measurement ?? "");
    add("policy.measurement", fr.measurements.includes(m), `measurement ${m || "(none)"}${fr.measurements.includes(m) ? "" : " — not in the allow-list"}`);
  }
  if (fr.mrsigners) {
    const m = String(claims.mrsigner ?? "");
    add("policy.mrsigner", fr.mrsigners.includes(m), `MRSIGNER ${m || "(none)"}`);
  }
  for (const [name, allowed] of Object.entries(fr.claims ?? {})) {
    const v = claims[name];
    const ok = v !== undefined && allowed.some((a) => String(a) === String(v));
    add(`policy.claim.${name}`.slice(0, 64), ok, `${name} = ${v === undefined ? "(absent)" : String(v)}`);
  }
}

function done(result: AttestationResult, checks: Check[], boundary: Boundary): Judged {
  const all = [...result.checks, ...checks];
  const failed = checks.find((c) => !c.ok);
  const out: AttestationResult = { format: result.format, ok: !failed, checks: all, claims: failed ? {} : result.claims };
  if (failed) out.failed = failed.name;
  return { result: out, boundary };
}

/** One line for logs, errors and the registry: "policy.pcr.16: sha256 PCR 16 = ... — not in the allow-list". */
export function failureReason(result: AttestationResult): string {
  const c = result.checks.find((x) => x.name === result.failed);
  return `${result.failed ?? "unknown"}: ${c?.detail ?? "evidence refused"}`;
}
