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

/** Policy checks for a result that verified; a failed result is returned as is. */
export function judge(policy: AttestPolicy, boundary: Boundary, result: AttestationResult, now: Date): Judged {
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
  if (fr) formatRules(format, fr, result.claims, add);
  const out = done(result, checks, boundary);
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

function formatRules(format: Format, fr: FormatRule, claims: AttestationResult["claims"], add: (n: string, ok: boolean, d: string) => void): void {
  if (fr.akNames) {
    const name = String(claims["ak.name"] ?? "");
    add("policy.ak", fr.akNames.includes(name), `AK name ${name || "(none)"} ${fr.akNames.includes(name) ? "is pinned" : "is not pinned"}`);
  } else if (format === "tpm2-quote") {
    add("policy.ak", claims["ak.trust"] === "certificate", claims["ak.trust"] === "certificate" ? "AK certified by a configured root" : "AK neither pinned nor certified");
  }
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
