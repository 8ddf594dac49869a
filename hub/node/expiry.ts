/**
 * Attestation and certificate expiry. A member certificate never outlives
 * the attestation result it was issued on (so renewal, which re-attests,
 * always comes first), and members whose proof runs out soon are surfaced
 * ahead of time: a gauge per state and one warning per member.
 */
import type { Logger } from "../../plugins/sdk/plugin.ts";
import { memberCertTtlMsMin } from "../../plugins/sdk/limits.ts";
import type { Metrics } from "../metrics.ts";
import type { AttestationRecord, Member, Registry } from "../registry/index.ts";

/** Warn when less than this fraction of a member's proof lifetime is left (renewal is due at 66 %). */
export const expiryWarnFraction = 0.2;
/** Members checked per metrics scrape at most (the registry pages through them). */
export const expiryScanMembersMax = 10_000;

/** Certificate lifetime for a member: the configured TTL, cut to the attestation result's expiry. */
export function certTtlFor(configuredTtlMs: number, attestation: Pick<AttestationRecord, "expiresAt">, now: Date): number {
  if (!attestation.expiresAt) return configuredTtlMs;
  const left = Date.parse(attestation.expiresAt) - now.getTime();
  return Math.max(memberCertTtlMsMin, Math.min(configuredTtlMs, left));
}

/** When the member's proof (certificate, or attestation result if sooner) runs out. */
export function proofExpiry(m: Pick<Member, "certNotAfter" | "attestation">): number {
  const att = m.attestation.expiresAt ? Date.parse(m.attestation.expiresAt) : Infinity;
  return Math.min(m.certNotAfter.getTime(), att);
}

export type ExpiryState = "ok" | "expiring" | "expired";

export function expiryState(m: Pick<Member, "certNotAfter" | "attestation" | "renewedAt" | "joinedAt">, now: number): ExpiryState {
  const end = proofExpiry(m);
  if (end <= now) return "expired";
  const start = (m.renewedAt ?? m.joinedAt).getTime();
  return end - now < (end - start) * expiryWarnFraction ? "expiring" : "ok";
}

/** Register the gauge grey_member_proof{state=ok|expiring|expired} and warn once per member entering "expiring". */
export function watchExpiry(registry: Pick<Registry, "list">, metrics: Metrics, logger: Logger, clock: { now(): number }): void {
  const gauge = metrics.gauge("grey_member_proof", "Live members by certificate/attestation expiry: ok, expiring (less than 20% left, renewal overdue), expired.", ["state"]);
  const warned = new Set<string>();
  metrics.collect(() => {
    const now = clock.now();
    const counts: Record<ExpiryState, number> = { ok: 0, expiring: 0, expired: 0 };
    let after: string | undefined;
    let seen = 0;
    do {
      const page = registry.list({ limit: 1000, ...(after ? { after } : {}) });
      for (const m of page.items) {
        if (m.revoked) continue;
        const st = expiryState(m, now);
        counts[st]++;
        const key = `${m.peerId}:${m.certSerial}`;
        if (st === "expiring" && !warned.has(key)) {
          warned.add(key);
          logger.warn("member proof expires soon and has not been renewed", { cluster: m.clusterId, expiresAt: new Date(proofExpiry(m)).toISOString() });
        }
      }
      seen += page.items.length;
      after = page.next;
    } while (after && seen < expiryScanMembersMax);
    for (const [state, n] of Object.entries(counts)) gauge.set({ state }, n);
  });
}
