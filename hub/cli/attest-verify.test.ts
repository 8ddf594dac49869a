import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { vectorPath, vectorText } from "../../attest/testing/vectors.ts";
import { KINDS, verifyEvidencePath, type VerifyOptions } from "./attest-verify.ts";

const root = mkdtempSync(join(tmpdir(), "grey-attest-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const repoRoot = resolve(import.meta.dir, "../..");
const vectors = resolve(repoRoot, "../shared/vectors");

/** A folder of parts: name → vector file. */
function folder(name: string, parts: Record<string, string>): string {
  const d = join(root, name);
  mkdirSync(d, { recursive: true });
  for (const [to, from] of Object.entries(parts)) copyFileSync(vectorPath(from), join(d, to));
  return d;
}
const verdict = async (o: VerifyOptions) => {
  const r = await verifyEvidencePath(o);
  return r.ok ? "ok" : r.failed;
};

describe("attest verify reaches every format (real vectors)", () => {
  const tpm = () => {
    const d = folder("tpm", { "attest.bin": "swtpm/out/quote_ecc.tpms_attest", "signature.bin": "swtpm/out/quote_ecc.tpmt_signature", "ak.pub": "swtpm/out/ak_ecc.tpm2b_public", "pcrs.json": "swtpm/out/pcrs.json" });
    return d;
  };
  test("tpm2-quote: valid with the vector's nonce; wrong nonce → nonce; policy pins AK and PCRs", async () => {
    const nonce = vectorText("swtpm/out/nonce.hex").trim();
    expect(await verdict({ kind: "tpm2-quote", evidence: tpm(), at: new Date(), nonce })).toBe("ok");
    expect(await verdict({ kind: "tpm2-quote", evidence: tpm(), at: new Date(), nonce: "00".repeat(nonce.length / 2) })).toBe("nonce");
    const r = await verifyEvidencePath({ kind: "tpm2-quote", evidence: tpm(), at: new Date() });
    expect(r.checks.find((c) => c.name === "nonce")?.detail).toStartWith("not checked");
    const policyFile = join(root, "tpm-policy.yaml");
    writeFileSync(policyFile, `version: 1\nboundaries:\n  same-org:\n    formats: [tpm2-quote]\n    tpm2-quote:\n      akNames: ["${r.claims["ak.name"]}"]\n      pcrs: { sha256: { 16: ["${"00".repeat(32)}"] } }\n`);
    const { loadAttestPolicy } = await import("../attest-policy/index.ts");
    expect(await verdict({ kind: "tpm2-quote", evidence: tpm(), at: new Date(), nonce, policy: loadAttestPolicy(policyFile) })).toBe("policy.pcr.16");
  });
  test("nitro-enclave: beta-valid VALID at its time; now → cert.validity; its nonce checked", async () => {
    const o = { kind: "nitro-enclave" as const, evidence: vectorPath("aws-nitro-enclaves/evervault-beta-valid-attestation-doc.cbor"), roots: vectorPath("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem"), at: new Date("2022-10-13T09:00:00Z") };
    expect(await verdict(o)).toBe("ok");
    expect(await verdict({ ...o, at: new Date() })).toBe("cert.validity");
    expect(await verdict({ ...o, nonce: "00".repeat(32) })).toBe("nonce");
    expect(await verdict({ ...o, evidence: vectorPath("aws-nitro-enclaves/evervault-ga-valid-attestation-doc.b64"), at: new Date("2023-09-18T15:04:00Z") })).toBe("debug");
  });
  test("sev-snp: virtee milan report VALID; wrong report_data → report-data", async () => {
    const d = folder("snp", { "report.bin": "sev-snp/virtee-milan/report_milan.bin", "vcek.der": "sev-snp/virtee-milan/vcek_milan.der" });
    const o = { kind: "sev-snp" as const, evidence: d, roots: vectorPath("sev-snp/ask_ark_milan.pem"), at: new Date("2024-01-01T00:00:00Z") };
    expect(await verdict(o)).toBe("ok");
    expect(await verdict({ ...o, nonce: "01".repeat(64) })).toBe("report-data");
  });
  test("dcap: SGX quote + collateral VALID; quote alone VALID (no TCB status)", async () => {
    const d = folder("dcap", { "quote.dat": "sgx/sgx_quote.dat", "collateral.json": "sgx/sgx_quote_collateral.json" });
    const o = { kind: "dcap" as const, evidence: d, roots: vectorPath("sgx/intel_sgx_root_ca.pem"), at: new Date("2025-07-19T10:01:17Z") };
    const r = await verifyEvidencePath(o);
    expect(r.ok).toBe(true);
    expect(r.claims["tcb.status"]).toBe("ConfigurationAndSWHardeningNeeded");
    expect(await verdict({ ...o, evidence: vectorPath("sgx/sgx_quote.dat") })).toBe("ok");
  });
  test("aws-iid: document + signature VALID; invalid signature → signature; a nonce is refused", async () => {
    const good = folder("aws", { "document.json": "aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json", "signature.b64": "aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64" });
    const bad = folder("aws-bad", { "document.json": "aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json", "signature.b64": "aws-ec2-iid/metaphor-invalid.signature.b64" });
    const o = { kind: "aws-iid" as const, evidence: good, roots: vectorPath("aws-ec2-iid/aws_ec2_iid_rsa_ap-southeast-2.pem"), at: new Date() };
    const r = await verifyEvidencePath(o);
    expect(r.ok).toBe(true);
    expect(r.claims.fresh).toBe(false);
    expect(await verdict({ ...o, evidence: bad })).toBe("signature");
    await expect(verifyEvidencePath({ ...o, nonce: "00" })).rejects.toThrow(/no nonce/);
  });
  test("gcp-iit: VALID at 2025-02-12T01:50Z with its audience; other audience → audience", async () => {
    const o = { kind: "gcp-iit" as const, evidence: vectorPath("gcp-iit/gce-identity-token-2025-02-12.jwt"), roots: vectorPath("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json"), at: new Date("2025-02-12T01:50:00Z"), audience: "agentcommunication.googleapis.com" };
    expect(await verdict(o)).toBe("ok");
    expect(await verdict({ ...o, audience: "grey:00" })).toBe("audience");
  });
  test("azure-imds: VALID at 2026-07-28T14:00Z with its nonce; other nonce → nonce", async () => {
    const chain = join(root, "ms.pem");
    writeFileSync(chain, vectorText("azure-imds/microsoft_tls_g2_rsa_ca_ocsp_02.pem") + vectorText("azure-imds/microsoft_tls_rsa_root_g2.pem"));
    const o = { kind: "azure-imds" as const, evidence: vectorPath("azure-imds/taskcluster-good.pkcs7.der"), roots: chain, at: new Date("2026-07-28T14:00:00Z"), nonce: "20260728-192400" };
    expect(await verdict(o)).toBe("ok");
    expect(await verdict({ ...o, nonce: "x" })).toBe("nonce");
  });
  test("no roots → roots check fails, never a pass", async () => {
    expect(await verdict({ kind: "nitro-enclave", evidence: vectorPath("aws-nitro-enclaves/evervault-beta-valid-attestation-doc.cbor"), at: new Date("2022-10-13T09:00:00Z") })).toBe("roots");
    expect(KINDS.length).toBe(7);
  });
});

describe("grey-hub attest verify (compiled binary)", () => {
  const arch = process.arch === "arm64" ? "arm64" : "x64";
  const hubBin = join(repoRoot, "dist", `grey-hub-linux-${arch}`);
  const run = async (args: string[]) => {
    const p = Bun.spawn([hubBin, "attest", "verify", ...args], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { stdout, stderr, code };
  };
  test("Nitro vector: every check printed, exit 0 at its time; exit 1 now; exit 2 on bad flags", async () => {
    if (!existsSync(hubBin)) throw new Error(`${hubBin} missing: run 'bun build/compile.ts --target linux-${arch}'`);
    const doc = join(vectors, "aws-nitro-enclaves/evervault-beta-valid-attestation-doc.cbor");
    const roots = join(vectors, "aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem");
    const ok = await run(["--kind", "nitro-enclave", "--evidence", doc, "--roots", roots, "--at", "2022-10-13T09:00:00Z"]);
    expect(ok.code).toBe(0);
    for (const name of ["structure", "alg", "cert.signature", "signature", "freshness", "debug", "pcr-policy"]) expect(ok.stdout).toMatch(new RegExp(`^ok +${name.replace(".", "\\.")} `, "m"));
    expect(ok.stdout).toContain("VALID (nitro-enclave)");
    const now = await run(["--kind", "nitro-enclave", "--evidence", doc, "--roots", roots, "--json"]);
    expect(now.code).toBe(1);
    expect(JSON.parse(now.stdout).failed).toBe("cert.validity");
    const bad = await run(["--kind", "nope", "--evidence", doc]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--kind must be one of");
  });
});
