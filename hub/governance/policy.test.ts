import { describe, expect, test } from "bun:test";
import { ConfigFileError } from "../../plugins/host/config-file.ts";
import { DEFAULT_GOVERNANCE, decide, parseGovernance, peersMayConnect } from "./policy.ts";

const member = (org: string, cluster: string, peerId = `peer-${cluster}`) => ({ role: "member" as const, org, cluster, peerId });
const admin = (org: string) => ({ role: "admin" as const, org });

describe("governance policy", () => {
  test("the hub's own admins may do everything; the default keeps other orgs to cluster health and peer sessions", () => {
    const p = DEFAULT_GOVERNANCE;
    expect(decide(p, "acme", admin("acme"), "agreements.apply").ok).toBe(true);
    expect(decide(p, "acme", member("acme", "c1"), "audit.read")).toEqual({ ok: true, boundary: "same-org" });
    expect(decide(p, "acme", member("acme", "c1"), "clusters.read", "c1")).toEqual({ ok: true, boundary: "same-cluster" });
    expect(decide(p, "acme", member("partner", "p1"), "clusters.read")).toEqual({ ok: true, boundary: "different-org" });
    const refused = decide(p, "acme", member("partner", "p1"), "audit.read");
    expect(refused).toEqual({ ok: false, boundary: "different-org", reason: "different-org callers may not audit.read (governance policy)" });
    // another org's admin is just another org
    expect(decide(p, "acme", admin("partner"), "agreements.apply").ok).toBe(false);
  });

  test("a policy file: boundaries, org allow-list, explicit peers", () => {
    const p = parseGovernance(
      `boundaries:\n  same-org: [clusters.read, tasks.submit]\n  different-org: [clusters.read]\nallow:\n  orgs: [acme, partner]\n  peers: [peer-x]\n`,
      "gov.yaml",
    );
    expect(decide(p, "acme", member("acme", "c1"), "tasks.submit").ok).toBe(true);
    expect(decide(p, "acme", member("acme", "c1"), "audit.read").ok).toBe(false);
    // same-cluster falls back to same-org's grants when not given
    expect(decide(p, "acme", member("acme", "c1"), "tasks.submit", "c1")).toEqual({ ok: true, boundary: "same-cluster" });
    expect(decide(p, "acme", member("partner", "p1"), "clusters.read").ok).toBe(true);
    expect(decide(p, "acme", member("mallory", "m1"), "clusters.read")).toMatchObject({ ok: false, reason: "organisation mallory is not on this hub's allow-list" });
    expect(decide(p, "acme", member("mallory", "m1", "peer-x"), "clusters.read").ok).toBe(true);
    expect(peersMayConnect(p, { org: "acme" }, { org: "partner" })).toBe(false);
    expect(peersMayConnect(DEFAULT_GOVERNANCE, { org: "acme" }, { org: "partner" })).toBe(true);
    expect(peersMayConnect(p, { org: "acme" }, { org: "mallory" })).toBe(false);
  });

  test("a bad file reports every problem with path and line", () => {
    let err: unknown;
    try {
      parseGovernance(`boundaries:\n  same-org: [clusters.read, fly]\n  other-org: [x]\nallow:\n  orgs: [Bad_Org]\n`, "gov.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigFileError);
    const problems = (err as ConfigFileError).problems;
    expect(problems.map((p) => [p.path, p.line])).toEqual([
      ["boundaries.same-org.1", 2],
      ["boundaries", 2],
      ["allow.orgs.0", 5],
    ]);
    expect((err as ConfigFileError).message).toContain("gov.yaml:2: boundaries.same-org.1:");
    expect(() => parseGovernance("boundaries: [unclosed", "g.yaml")).toThrow(ConfigFileError);
  });
});
