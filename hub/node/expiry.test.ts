import { expect, test } from "bun:test";
import { memberCertTtlMsMin } from "../../plugins/sdk/limits.ts";
import { Metrics } from "../metrics.ts";
import { certTtlFor, expiryState, watchExpiry } from "./expiry.ts";

const now = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(now.getTime() + ms);

test("a certificate never outlives its attestation result", () => {
  expect(certTtlFor(3600_000, {}, now)).toBe(3600_000);
  expect(certTtlFor(3600_000, { expiresAt: at(600_000).toISOString() }, now)).toBe(600_000);
  expect(certTtlFor(3600_000, { expiresAt: at(1_000).toISOString() }, now)).toBe(memberCertTtlMsMin);
});

test("expiry states: ok, expiring (under 20% left), expired; the sooner of cert and attestation counts", () => {
  const m = (certMs: number, attMs?: number) => ({
    joinedAt: now, certNotAfter: at(certMs), attestation: attMs === undefined ? {} : { expiresAt: at(attMs).toISOString() },
  });
  expect(expiryState(m(100_000) as never, now.getTime() + 50_000)).toBe("ok");
  expect(expiryState(m(100_000) as never, now.getTime() + 85_000)).toBe("expiring");
  expect(expiryState(m(100_000) as never, now.getTime() + 100_000)).toBe("expired");
  expect(expiryState(m(100_000, 40_000) as never, now.getTime() + 35_000)).toBe("expiring");
});

test("gauge and one warning per member", () => {
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (msg: string, f?: Record<string, unknown>) => void warnings.push(`${msg} ${f?.cluster}`) };
  const members = [
    { peerId: "a", clusterId: "a", certSerial: "1", joinedAt: now, certNotAfter: at(100_000), attestation: {} },
    { peerId: "b", clusterId: "b", certSerial: "1", joinedAt: now, certNotAfter: at(1_000_000), attestation: {} },
    { peerId: "c", clusterId: "c", certSerial: "1", joinedAt: now, certNotAfter: at(10_000), attestation: {}, revoked: { at: now, reason: "x" } },
  ];
  const metrics = new Metrics();
  let t = now.getTime() + 90_000;
  watchExpiry({ list: () => ({ items: members }) } as never, metrics, logger, { now: () => t });
  const text = metrics.render();
  expect(text).toContain('grey_member_proof{state="expiring"} 1');
  expect(text).toContain('grey_member_proof{state="ok"} 1');
  expect(text).toContain('grey_member_proof{state="expired"} 0');
  metrics.render();
  expect(warnings).toEqual(["member proof expires soon and has not been renewed a"]);
  t = now.getTime() + 200_000;
  expect(metrics.render()).toContain('grey_member_proof{state="expired"} 1');
});
