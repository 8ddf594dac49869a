import { describe, expect, test } from "bun:test";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import { vectorPath } from "../../attest/testing/vectors.ts";
import { AK_ACTIVATED, AK_PENDING, AttestPolicyError, boundaryOf, judge, parseAttestPolicy } from "./index.ts";

const problems = (text: string) => {
  try {
    parseAttestPolicy(text, "/etc/grey/policy.yaml");
  } catch (err) {
    expect(err).toBeInstanceOf(AttestPolicyError);
    return (err as AttestPolicyError).problems.map((p) => `${p.line}:${p.path}: ${p.message}`);
  }
  return [];
};

const tpmPolicy = `version: 1
boundaries:
  same-org:
    formats: [tpm2-quote, dev]
    tpm2-quote:
      akNames: ["000baa"]
      pcrs: { sha256: { 16: ["${"11".repeat(32)}"] } }
  different-org:
    formats: [tpm2-quote]
    tpm2-quote: { akNames: ["000baa"] }
`;

describe("policy file", () => {
  test("a valid file resolves", () => {
    const p = parseAttestPolicy(tpmPolicy, "p.yaml");
    expect(p.boundaries["same-org"]?.formats).toEqual(["tpm2-quote", "dev"]);
    expect(p.boundaries["same-cluster"]).toBeUndefined();
  });
  test("errors name the field path and the line", () => {
    expect(problems("version: 1\nboundaries:\n  same-org:\n    formats: [tpm2-quote]\n    maxAge: soon\n    tpm2-quote: { akNames: [zz] }\n")).toEqual([
      "5:boundaries.same-org.maxAge: must be a duration such as 30s, 5m, 1h",
      "6:boundaries.same-org.tpm2-quote.akNames.0: must be hex",
    ]);
    expect(problems("version: 1\nboundaries:\n  other-org: {formats: [dev]}\n")[0]).toMatch(/^3:boundaries: .*other-org/);
    expect(problems("version: 1\nboundaries: {\n")[0]).toMatch(/^\d+:/);
    expect(problems("version: 1\nboundaries:\n  same-org:\n    formats: [tpm2-quote]\n    tpm2-quote: { pcrs: { sha256: { 16: [\"aa\"] } } }\n")[0]).toContain("5:boundaries.same-org.tpm2-quote: tpm2-quote needs akNames");
  });
  test("evidence without a nonce needs allowNonFresh (judged per result); hardware formats need their roots (file resolved relative to the policy)", () => {
    const strict = parseAttestPolicy("version: 1\nboundaries:\n  same-org:\n    formats: [aws-iid]\n", "p.yaml");
    const lax = parseAttestPolicy("version: 1\nboundaries:\n  same-org:\n    formats: [aws-iid]\n    allowNonFresh: true\n", "p.yaml");
    const at = new Date("2030-01-01T00:00:00Z");
    const iid = (fresh: boolean): AttestationResult => ({ format: "aws-iid", ok: true, checks: [{ name: "signature", ok: true }], claims: { fresh, "account.id": "1" } });
    expect(judge(strict, "same-org", iid(false), at).result).toMatchObject({ ok: false, failed: "policy.fresh" });
    expect(judge(lax, "same-org", iid(false), at).result.ok).toBe(true);
    // an STS proof is bound to the join nonce: fresh, accepted without allowNonFresh
    expect(judge(strict, "same-org", iid(true), at).result.ok).toBe(true);
    expect(problems("version: 1\nboundaries:\n  same-org: { formats: [nitro-enclave] }\n").join()).toContain("verifiers.nitro-enclave (trust roots) is not configured");
    expect(problems("version: 1\nverifiers:\n  sev-snp: { roots: missing.pem }\nboundaries: {}\n")[0]).toMatch(/^3:verifiers.sev-snp.roots: missing.pem: ENOENT/);
    const ok = parseAttestPolicy(`version: 1\nverifiers:\n  nitro-enclave: { roots: ${vectorPath("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem")} }\nboundaries: {}\n`, "p.yaml");
    expect(ok.verifiers["nitro-enclave"]?.roots.length).toBe(1);
  });
});

describe("judging results", () => {
  const p = parseAttestPolicy(tpmPolicy, "p.yaml");
  const now = new Date("2030-01-01T00:00:00Z");
  const quote = (pcr16: string, ak = "000baa"): AttestationResult => ({
    format: "tpm2-quote", ok: true, checks: [{ name: "signature", ok: true }], claims: { "ak.name": ak, "pcr.sha256.16": pcr16, "ak.trust": "key" },
  });
  test("boundaries: same-cluster / same-org / different-org", () => {
    expect(boundaryOf({ org: "acme", cluster: "hub-1" }, { org: "acme", cluster: "hub-1" })).toBe("same-cluster");
    expect(boundaryOf({ org: "acme", cluster: "hub-1" }, { org: "acme", cluster: "edge" })).toBe("same-org");
    expect(boundaryOf({ org: "acme" }, { org: "globex", cluster: "edge" })).toBe("different-org");
  });
  test("pinned AK and allowed PCR pass; changed PCR, unpinned AK, missing boundary fail with named checks", () => {
    expect(judge(p, "same-org", quote("11".repeat(32)), now).result.ok).toBe(true);
    expect(judge(p, "same-org", quote("22".repeat(32)), now).result.failed).toBe("policy.pcr.16");
    expect(judge(p, "different-org", quote("22".repeat(32), "000bbb"), now).result.failed).toBe("policy.ak");
    expect(judge(p, "different-org", quote("22".repeat(32)), now).result.ok).toBe(true);
    expect(judge(p, "same-cluster", quote("11".repeat(32)), now).result.failed).toBe("policy.boundary");
    const dev = { format: "dev", ok: true, checks: [{ name: "signature", ok: true }], claims: {} };
    expect(judge(p, "different-org", dev, now).result.failed).toBe("policy.format");
  });
  test("timestamped evidence older than maxAge fails; non-fresh identity needs allowNonFresh", () => {
    const q = parseAttestPolicy("version: 1\nverifiers: {}\nboundaries:\n  same-org: { formats: [dev], maxAge: 1m, allowNonFresh: false }\n", "q.yaml");
    const old = { format: "dev", ok: true, checks: [{ name: "x", ok: true }], claims: { fresh: false } };
    expect(judge(q, "same-org", old, now).result.failed).toBe("policy.fresh");
  });
});

describe("EK trust (credential activation at join)", () => {
  const ekPolicy = `version: 1
boundaries:
  same-org:
    formats: [tpm2-quote]
    tpm2-quote: { ekNames: ["000bee"] }
  different-org:
    formats: [tpm2-quote]
    tpm2-quote: { ekNames: ["000bee"], akNames: ["000baa"] }
`;
  const p = parseAttestPolicy(ekPolicy, "p.yaml");
  const now = new Date("2030-01-01T00:00:00Z");
  const quote = (ak: string, ek?: string): AttestationResult => ({
    format: "tpm2-quote", ok: true, checks: [{ name: "signature", ok: true }],
    claims: { "ak.name": ak, "ak.trust": "key", ...(ek ? { "ek.name": ek, "ek.trust": "key" } : {}) },
  });
  const activated = (ak: string, ek: string): AttestationResult => ({ ...quote(ak, ek), claims: { ...quote(ak, ek).claims, "ak.trust": AK_ACTIVATED } });

  test("ekNames alone is a valid trust anchor for tpm2-quote", () => {
    expect(p.boundaries["same-org"]?.rules["tpm2-quote"]?.ekNames).toEqual(["000bee"]);
  });
  test("join: a pinned EK leaves the AK pending activation; another EK fails policy.ek", () => {
    const j = judge(p, "same-org", quote("000b01", "000bee"), now).result;
    expect(j.ok).toBe(true);
    expect(j.claims["ak.trust"]).toBe(AK_PENDING);
    expect(j.checks.find((c) => c.name === "policy.ek")?.ok).toBe(true);
    const other = judge(p, "same-org", quote("000b01", "000bef"), now).result;
    expect(other.failed).toBe("policy.ek");
    expect(other.checks.find((c) => c.name === "policy.ek")?.detail).toContain("not pinned");
    expect(judge(p, "same-org", quote("000b01"), now).result.checks.find((c) => c.name === "policy.ek")?.detail).toContain("no EK");
  });
  test("a pinned AK needs no activation even where EKs are pinned too", () => {
    const j = judge(p, "different-org", quote("000baa", "000bff"), now).result;
    expect(j.ok).toBe(true);
    expect(j.claims["ak.trust"]).toBe("key");
  });
  test("renewal: the AK activated at join passes; a different AK, a different EK or no activation at join fail policy.ak", () => {
    const same = judge(p, "same-org", quote("000b01", "000bee"), now, activated("000b01", "000bee")).result;
    expect(same.ok).toBe(true);
    expect(same.claims["ak.trust"]).toBe(AK_ACTIVATED);
    const otherAk = judge(p, "same-org", quote("000b02", "000bee"), now, activated("000b01", "000bee")).result;
    expect(otherAk.failed).toBe("policy.ak");
    expect(otherAk.checks.find((c) => c.name === "policy.ak")?.detail).toContain("activated at join");
    expect(judge(p, "same-org", quote("000b01", "000bee"), now, quote("000b01", "000bee")).result.failed).toBe("policy.ak");
    expect(judge(p, "same-org", quote("000b01", "000bef"), now, activated("000b01", "000bef")).result.failed).toBe("policy.ek");
  });
  test("ekRoots: a certified EK is trusted without ekNames; an AK with neither is refused even when the boundary has no tpm2-quote rules", () => {
    const roots = `version: 1\nverifiers:\n  tpm2-quote: { ekRoots: ${vectorPath("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem")} }\nboundaries:\n  same-org: { formats: [tpm2-quote] }\n`;
    const q = parseAttestPolicy(roots, "q.yaml");
    const certified = { ...quote("000b01", "000bee"), claims: { ...quote("000b01", "000bee").claims, "ek.trust": "certificate" } };
    expect(judge(q, "same-org", certified, now).result.claims["ak.trust"]).toBe(AK_PENDING);
    const j = judge(q, "same-org", quote("000b01", "000bee"), now).result;
    expect(j.failed).toBe("policy.ek");
    expect(j.checks.find((c) => c.name === "policy.ek")?.detail).toContain("no EK certificate");
  });
});
