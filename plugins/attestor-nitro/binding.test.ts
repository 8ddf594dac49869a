/** Hub-side plugins enforce the binding: real vectors were made for other nonces, so each fails its binding check. */
import { expect, test } from "bun:test";
import { pemBlocks } from "../../attest/x509/cert.ts";
import { vectorBytes, vectorJson, vectorText } from "../../attest/testing/vectors.ts";
import type { Jwk } from "../../attest/iid/gcp.ts";
import { dcapAttestor } from "../attestor-dcap/index.ts";
import { awsIidAttestor, azureImdsAttestor, gcpIitAttestor } from "../attestor-iid/index.ts";
import { snpAttestor } from "../attestor-sev-snp/index.ts";
import { encodeCbor } from "../sdk/codec.ts";
import { nitroAttestor } from "./index.ts";

const noop = () => {};
const c = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };
const binding = { nonce: new Uint8Array(32).fill(1), peerId: "12D3KooWx", subjectPublicKey: new Uint8Array([1, 2]) };
const certs = (rel: string) => pemBlocks(vectorText(rel));
const ev = (format: string, data: unknown) => ({ format, data: encodeCbor(data) });

test("nitro: a document for another nonce → nonce; garbage → structure", async () => {
  const a = nitroAttestor({ roots: certs("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem") })(c);
  const at = new Date("2022-10-13T09:00:00Z");
  expect((await a.verify!(ev("nitro-enclave", { document: vectorBytes("aws-nitro-enclaves/evervault-beta-valid-attestation-doc.cbor") }), binding, at)).failed).toBe("nonce");
  expect((await a.verify!(ev("nitro-enclave", { doc: 1 }), binding, at)).failed).toBe("structure");
});

test("sev-snp and dcap: report_data not the binding digest → report-data", async () => {
  const snp = snpAttestor({ roots: certs("sev-snp/ask_ark_milan.pem") })(c);
  const r = await snp.verify!(ev("sev-snp", { report: vectorBytes("sev-snp/virtee-milan/report_milan.bin"), vcek: vectorBytes("sev-snp/virtee-milan/vcek_milan.der") }), binding, new Date("2024-01-01T00:00:00Z"));
  expect(r.failed).toBe("report-data");
  const dcap = dcapAttestor({ roots: certs("sgx/intel_sgx_root_ca.pem") })(c);
  expect((await dcap.verify!(ev("dcap", { quote: vectorBytes("sgx/sgx_quote.dat") }), binding, new Date("2025-07-19T10:01:17Z"))).failed).toBe("report-data");
});

test("gcp-iit audience and azure-imds nonce carry the binding; aws-iid verifies but says fresh=false", async () => {
  const gcp = gcpIitAttestor({ jwks: vectorJson<{ keys: Jwk[] }>("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json") })(c);
  expect((await gcp.verify!(ev("gcp-iit", { token: vectorText("gcp-iit/gce-identity-token-2025-02-12.jwt").trim() }), binding, new Date("2025-02-12T01:50:00Z"))).failed).toBe("audience");
  const az = azureImdsAttestor({ roots: [...certs("azure-imds/microsoft_tls_g2_rsa_ca_ocsp_02.pem"), ...certs("azure-imds/microsoft_tls_rsa_root_g2.pem")] })(c);
  expect((await az.verify!(ev("azure-imds", { pkcs7: vectorBytes("azure-imds/taskcluster-good.pkcs7.der") }), binding, new Date("2026-07-28T14:00:00Z"))).failed).toBe("nonce");
  const aws = awsIidAttestor({ roots: certs("aws-ec2-iid/aws_ec2_iid_rsa_ap-southeast-2.pem") })(c);
  const r = await aws.verify!(ev("aws-iid", { document: vectorBytes("aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json"), signature: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64").trim() }), binding, new Date());
  expect(r.ok).toBe(true);
  expect(r.claims.fresh).toBe(false);
});
