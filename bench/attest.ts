/**
 * Attestation throughput and latency, in one process and one run:
 *   1. verifications/second per format on the real vectors (../shared/vectors), hub-side code path
 *      (attestor plugins' part verifiers, checks included);
 *   2. our TPM quote verifier vs `tpm2_checkquote` on the same swtpm quotes (ratio of medians;
 *      tpm2_checkquote includes process start and its input files, as an operator would run it);
 *   3. agent-side quote time against swtpm (open, AK CreatePrimary, PCR_Read + Quote, flush, close).
 * usage: bun bench/attest.ts [ITERATIONS=200] [TPM_QUOTES=30]
 */
import { resolve } from "node:path";
import { readFileSync } from "node:fs";
import { pemBlocks } from "../attest/x509/cert.ts";
import { verifyDcapParts } from "../plugins/attestor-dcap/index.ts";
import { verifyAwsIidParts, verifyAzureImdsParts, verifyGcpIitParts } from "../plugins/attestor-iid/index.ts";
import { verifyNitroParts } from "../plugins/attestor-nitro/index.ts";
import { verifySnpParts } from "../plugins/attestor-sev-snp/index.ts";
import { verifyTpmQuoteParts, withAk, type TpmQuoteParts } from "../plugins/attestor-tpm/attestor.ts";
import { collectQuote, type QuoteEvidence } from "../plugins/attestor-tpm/quote.ts";
import { checkquote } from "../plugins/attestor-tpm/testing/checkquote.ts";
import { startSwtpm } from "../plugins/attestor-tpm/testing/swtpm.ts";
import type { AttestationResult } from "../plugins/sdk/attestor.ts";

const iterations = Number(process.argv[2] ?? 200);
const tpmQuotes = Number(process.argv[3] ?? 30);
const vectors = resolve(import.meta.dir, "../../shared/vectors");
const bytes = (rel: string) => new Uint8Array(readFileSync(resolve(vectors, rel)));
const textOf = (rel: string) => readFileSync(resolve(vectors, rel), "utf8");
const certs = (rel: string) => pemBlocks(textOf(rel));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeEach(n: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

const mustPass = async (name: string, f: () => Promise<AttestationResult>) => {
  const r = await f();
  if (!r.ok) throw new Error(`${name}: vector does not verify (${r.failed})`);
  return f;
};

const swtpmParts = (): TpmQuoteParts => {
  const pcrs = JSON.parse(textOf("swtpm/out/pcrs.json")) as { pcrs: Record<string, string> };
  return {
    attest: bytes("swtpm/out/quote_ecc.tpms_attest"), signature: bytes("swtpm/out/quote_ecc.tpmt_signature"), akPublic: bytes("swtpm/out/ak_ecc.tpm2b_public"),
    pcrHash: "sha256", pcrs: Object.fromEntries(Object.entries(pcrs.pcrs).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, "hex"))])),
  };
};
const azureRoots = [...certs("azure-imds/microsoft_tls_g2_rsa_ca_ocsp_02.pem"), ...certs("azure-imds/microsoft_tls_rsa_root_g2.pem")];
const sgxCollateral = textOf("sgx/sgx_quote_collateral.json");

const cases: [string, () => Promise<AttestationResult>][] = [
  ["tpm2-quote (swtpm ECC vector)", () => verifyTpmQuoteParts(swtpmParts(), { at: new Date(), nonce: new Uint8Array(Buffer.from(textOf("swtpm/out/nonce.hex").trim(), "hex")) })],
  ["nitro-enclave (beta-valid)", () => verifyNitroParts({ document: bytes("aws-nitro-enclaves/evervault-beta-valid-attestation-doc.cbor") }, { at: new Date("2022-10-13T09:00:00Z"), roots: certs("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem") })],
  ["sev-snp (virtee milan)", () => verifySnpParts({ report: bytes("sev-snp/virtee-milan/report_milan.bin"), vcek: bytes("sev-snp/virtee-milan/vcek_milan.der") }, { at: new Date("2024-01-01T00:00:00Z"), roots: certs("sev-snp/ask_ark_milan.pem") })],
  ["dcap (SGX quote only)", () => verifyDcapParts({ quote: bytes("sgx/sgx_quote.dat") }, { at: new Date("2025-07-19T10:01:17Z"), roots: certs("sgx/intel_sgx_root_ca.pem") })],
  ["dcap (SGX quote + collateral)", () => verifyDcapParts({ quote: bytes("sgx/sgx_quote.dat"), collateral: sgxCollateral }, { at: new Date("2025-07-19T10:01:17Z"), roots: certs("sgx/intel_sgx_root_ca.pem") })],
  ["aws-iid (RSA signature)", () => verifyAwsIidParts({ document: bytes("aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json"), signature: textOf("aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64").trim() }, { at: new Date(), roots: certs("aws-ec2-iid/aws_ec2_iid_rsa_ap-southeast-2.pem") })],
  ["gcp-iit (RS256 JWT)", () => verifyGcpIitParts({ token: textOf("gcp-iit/gce-identity-token-2025-02-12.jwt") }, { at: new Date("2025-02-12T01:50:00Z"), jwks: JSON.parse(textOf("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json")), audience: "agentcommunication.googleapis.com" })],
  ["azure-imds (CMS + chain)", () => verifyAzureImdsParts({ pkcs7: bytes("azure-imds/taskcluster-good.pkcs7.der") }, { at: new Date("2026-07-28T14:00:00Z"), roots: azureRoots, nonce: "20260728-192400" })],
];

console.log(`# attestation verifiers, one process, ${iterations} iterations each (file reads included)`);
for (const [name, f] of cases) {
  await mustPass(name, f);
  await timeEach(5, f); // warm-up
  const m = median(await timeEach(iterations, f));
  console.log(`${name.padEnd(34)} median ${m.toFixed(3).padStart(8)} ms  ${(1000 / m).toFixed(0).padStart(6)} verifications/s`);
}

const sw = await startSwtpm();
try {
  const spec = `swtpm:${sw.host}:${sw.port}`;
  const pcrs = [0, 1, 2, 3, 7, 10, 16, 23];
  const quotes: { ev: QuoteEvidence; nonce: Uint8Array }[] = [];
  const agentMs = await timeEach(tpmQuotes, async () => {
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const ev = await withAk(spec, {}, (tpm, ak) => collectQuote(tpm, { ak, nonce, pcrSelection: { hash: "sha256", pcrs } }));
    quotes.push({ ev, nonce });
  });
  const parts = (ev: QuoteEvidence): TpmQuoteParts => ({
    attest: new Uint8Array(ev.tpmsAttest), signature: new Uint8Array(ev.signature), akPublic: new Uint8Array(ev.akPublic), pcrHash: "sha256",
    pcrs: Object.fromEntries(Object.entries(ev.pcrs).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, "hex"))])),
  });
  let i = 0;
  const oursMs = await timeEach(quotes.length, async () => {
    const q = quotes[i++]!;
    const r = await verifyTpmQuoteParts(parts(q.ev), { at: new Date(), nonce: q.nonce });
    if (!r.ok) throw new Error(`our verifier refused a swtpm quote: ${r.failed}`);
  });
  i = 0;
  const toolMs = await timeEach(quotes.length, async () => {
    const q = quotes[i++]!;
    const r = await checkquote({ evidence: q.ev, nonce: q.nonce });
    if (!r.ok) throw new Error(`tpm2_checkquote refused a swtpm quote: ${r.output}`);
  });
  console.log(`\n# TPM, same ${quotes.length} swtpm quotes (ECC P-256 AK, ${pcrs.length} SHA-256 PCRs)`);
  console.log(`agent quote (open+AK+PCR_Read+Quote+close) median ${median(agentMs).toFixed(2)} ms`);
  console.log(`verify: ours (in process)                  median ${median(oursMs).toFixed(3)} ms`);
  console.log(`verify: tpm2_checkquote (process + files)  median ${median(toolMs).toFixed(2)} ms`);
  console.log(`ratio tpm2_checkquote / ours: ${(median(toolMs) / median(oursMs)).toFixed(1)}x`);
} finally {
  await sw.stop();
}
process.exit(0);
