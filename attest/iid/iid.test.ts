import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { fromBase64 } from "../bytes.ts";
import { flipByte, vectorBytes, vectorJson, vectorText } from "../testing/vectors.ts";
import { parseSignedData } from "../x509/cms.ts";
import { pemBlocks } from "../x509/cert.ts";
import { verifyAwsIidPkcs7, verifyAwsIidSignature } from "./aws.ts";
import { verifyAzureAttested, type AzureAttestedInput } from "./azure.ts";
import { verifyGcpIdentityToken, type GcpTokenInput, type Jwk } from "./gcp.ts";

const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const a = "aws-ec2-iid";
const cert = (rel: string) => pemBlocks(vectorText(rel))[0]!;
const now = new Date("2026-11-27T00:00:00Z");

describe("AWS EC2 identity document", () => {
  const doc = vectorBytes(`${a}/metaphor-2026-ap-southeast-2.document.json`);
  const rsa = { cert: cert(`${a}/aws_ec2_iid_rsa_ap-southeast-2.pem`) };
  test("metaphor /signature (RSA-1024 SHA-256): VALID; invalid document / invalid signature → signature", async () => {
    const sig = vectorText(`${a}/metaphor-2026-ap-southeast-2.signature.b64`);
    const v = await verifyAwsIidSignature({ document: doc, signature: sig, signer: rsa, at: now });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) expect(v.claims.document.region).toBe("ap-southeast-2");
    expect(failedOf(await verifyAwsIidSignature({ document: vectorBytes(`${a}/metaphor-invalid.document.json`), signature: sig, signer: rsa, at: now }))).toBe("signature");
    expect(failedOf(await verifyAwsIidSignature({ document: doc, signature: vectorText(`${a}/metaphor-invalid.signature.b64`), signer: rsa, at: now }))).toBe("signature");
    // AWS uses one RSA-1024 key for the /signature of many regions (us-west-2's cert verifies too); the RSA-2048 key does not.
    expect(failedOf(await verifyAwsIidSignature({ document: doc, signature: sig, signer: { cert: cert(`${a}/aws_ec2_iid_rsa_us-west-2.pem`) }, at: now }))).toBe("ok");
    expect(failedOf(await verifyAwsIidSignature({ document: doc, signature: sig, signer: { cert: cert(`${a}/aws_ec2_iid_rsa2048_ap-southeast-2.pem`) }, at: now }))).toBe("signature");
    if (v.ok) {
      const acct = v.claims.document.accountId;
      expect(failedOf(await verifyAwsIidSignature({ document: doc, signature: sig, signer: rsa, at: now, policy: { accountIds: [acct], regions: ["ap-southeast-2"] } }))).toBe("ok");
      expect(failedOf(await verifyAwsIidSignature({ document: doc, signature: sig, signer: rsa, at: now, policy: { accountIds: ["000000000000"] } }))).toBe("policy");
    }
  });
  test("metaphor /rsa2048 PKCS7: VALID, content == document byte-for-byte; wrong pinned cert → signer", async () => {
    const p7 = fromBase64(vectorText(`${a}/metaphor-2026-ap-southeast-2.rsa2048.pkcs7.b64`));
    const signers = [cert(`${a}/aws_ec2_iid_rsa2048_ap-southeast-2.pem`)];
    const v = await verifyAwsIidPkcs7({ pkcs7: p7, signers, at: now, document: doc });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) expect(v.claims.signingTime?.toISOString()).toBe("2026-02-16T00:38:28.000Z");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: p7, signers: [cert(`${a}/aws_ec2_iid_dsa_ap-southeast-2.pem`)], at: now }))).toBe("signer");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: p7, signers, at: now, document: vectorBytes(`${a}/metaphor-invalid.document.json`) }))).toBe("document");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: p7, signers, at: new Date("2026-02-01T00:00:00Z") }))).toBe("signing-time");
    // Tamper the encapsulated content (messageDigest no longer matches).
    const i = Buffer.from(p7).indexOf("accountId");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: flipByte(p7, i + 1), signers, at: now }))).toBe("signature");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: flipByte(p7, -40), signers, at: now }))).not.toBe("ok");
  });
  test("mozilla 2016 DSA PKCS7 (dsaWithSHA1, BER indefinite): VALID", async () => {
    const p7 = pemBlocks(vectorText(`${a}/mozilla-pkcs7-2016-us-east-1.pkcs7.pem`), "PKCS7")[0]!;
    const signers = [cert(`${a}/aws_ec2_pkcs7_dsa_public_cert.pem`)];
    const v = await verifyAwsIidPkcs7({ pkcs7: p7, signers, at: now });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) {
      expect(v.claims.document.region).toBe("us-east-1");
      expect(v.claims.signingTime?.toISOString()).toBe("2016-04-08T03:01:44.000Z");
    }
    // The ap-southeast-2 DSA cert is the same global AWS DSA certificate.
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: p7, signers: [cert(`${a}/aws_ec2_iid_dsa_ap-southeast-2.pem`)], at: now }))).toBe("ok");
    const i = Buffer.from(p7).indexOf("privateIp");
    expect(failedOf(await verifyAwsIidPkcs7({ pkcs7: flipByte(p7, i + 20), signers, at: now }))).toBe("signature");
  });
  test("taskcluster 2019 (us-west-2): VALID with cert and with bare SPKI; DOCUMENT_bad and SIGNATURE_badSignature → signature", async () => {
    const d = vectorBytes(`${a}/taskcluster-aws_iid_DOCUMENT`);
    const s = vectorText(`${a}/taskcluster-aws_iid_SIGNATURE`);
    const signer = { cert: cert(`${a}/aws_ec2_iid_rsa_us-west-2.pem`) };
    expect(failedOf(await verifyAwsIidSignature({ document: d, signature: s, signer, at: now }))).toBe("ok");
    const spki = pemBlocks(vectorText(`${a}/taskcluster_aws_RSA-key-forSignature.pem`), "PUBLIC KEY")[0]!;
    expect(failedOf(await verifyAwsIidSignature({ document: d, signature: s, signer: { spki }, at: now }))).toBe("ok");
    expect(failedOf(await verifyAwsIidSignature({ document: vectorBytes(`${a}/taskcluster-aws_iid_DOCUMENT_bad`), signature: s, signer, at: now }))).toBe("signature");
    expect(failedOf(await verifyAwsIidSignature({ document: d, signature: vectorText(`${a}/taskcluster-aws_iid_SIGNATURE_badSignature`), signer, at: now }))).toBe("signature");
    expect(failedOf(await verifyAwsIidSignature({ document: d, signature: "%%%", signer, at: now }))).toBe("structure");
  });
});

describe("GCP identity token", () => {
  const jwks = vectorJson<{ keys: Jwk[] }>("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json");
  const token = vectorText("gcp-iit/gce-identity-token-2025-02-12.jwt").trim();
  const base = (): GcpTokenInput => ({ token, jwks, at: new Date("2025-02-12T01:50:00Z"), audience: "agentcommunication.googleapis.com" });
  test("VALID at 2025-02-12T01:50Z with project allowlist", async () => {
    const v = await verifyGcpIdentityToken({ ...base(), projects: ["weipengpanda-project"] });
    expect(failedOf(v)).toBe("ok");
    expect(v.checks.map((c) => c.name)).toEqual(["structure", "alg", "key", "signature", "issuer", "audience", "time", "project"]);
    if (v.ok) expect(v.claims.gce?.zone).toBe("europe-west1-b");
  });
  test("time window [iat, exp): expired now, at exp, before iat", async () => {
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), at: now }))).toBe("time");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), at: new Date(1739328391 * 1000) }))).toBe("time");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), at: new Date(1739328390 * 1000) }))).toBe("ok");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), at: new Date(1739324790 * 1000) }))).toBe("time");
  });
  test("wrong audience, project, kid; tampered payload/signature", async () => {
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), audience: "https://hub.example" }))).toBe("audience");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), projects: ["other"] }))).toBe("project");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), jwks: { keys: jwks.keys.filter((k) => !k.kid?.startsWith("eec5")) } }))).toBe("key");
    const other = jwks.keys.find((k) => !k.kid?.startsWith("eec5"))!;
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), jwks: { keys: [{ ...other, kid: "eec534fa5b8caca201ca8d0ff96b54c562210d1e" }] } }))).toBe("signature");
    const [h, p, s] = token.split(".") as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, "base64url").toString());
    payload.aud = "https://hub.example";
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${s}`;
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), token: forged, audience: "https://hub.example" }))).toBe("signature");
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: "none", kid: "x" })).toString("base64url")}.${p}.`;
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), token: noneAlg }))).toBe("alg");
    expect(failedOf(await verifyGcpIdentityToken({ ...base(), token: "a.b" }))).toBe("structure");
  });
});

describe("Azure IMDS attested document", () => {
  const z = "azure-imds";
  const base = (): AzureAttestedInput => ({
    pkcs7: vectorBytes(`${z}/taskcluster-good.pkcs7.der`),
    intermediates: pemBlocks(vectorText(`${z}/microsoft_tls_g2_rsa_ca_ocsp_02.pem`)),
    roots: pemBlocks(vectorText(`${z}/microsoft_tls_rsa_root_g2.pem`)),
    at: new Date("2026-07-28T14:00:00Z"),
    nonce: "20260728-192400",
  });
  test("good doc: VALID at 2026-07-28T14:00Z (JSON wrapper and DER identical)", async () => {
    const j = vectorJson<{ document: string }[]>(`${z}/taskcluster-azure_signature_good.json`);
    expect(Buffer.from(fromBase64(j[0]!.document)).equals(Buffer.from(base().pkcs7))).toBe(true);
    const v = await verifyAzureAttested({ ...base(), subscriptionIds: ["8a205152-b25a-417f-a676-80465535a6c9"] });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) {
      expect(v.claims.document.vmId).toBe("b1310a36-d400-46f6-82cb-6217df846586");
      expect(v.claims.document.expiresOn.toISOString()).toBe("2026-07-28T19:24:00.000Z");
      expect(Buffer.from(parseSignedData(base().pkcs7).content).toString()).toBe(vectorText(`${z}/content.json`).trim());
    }
  });
  test("expired leaf now (cert.validity); document expired (freshness); wrong nonce; wrong subscription; wrong root", async () => {
    expect(failedOf(await verifyAzureAttested({ ...base(), at: now }))).toBe("cert.validity");
    expect(failedOf(await verifyAzureAttested({ ...base(), at: new Date("2026-07-28T19:25:00Z") }))).toBe("freshness");
    expect(failedOf(await verifyAzureAttested({ ...base(), nonce: "20260728-192401" }))).toBe("nonce");
    expect(failedOf(await verifyAzureAttested({ ...base(), subscriptionIds: ["x"] }))).toBe("policy");
    expect(failedOf(await verifyAzureAttested({ ...base(), roots: [vectorBytes("tpm-gce/tpm_ek_root_1.cer")] }))).toBe("cert.anchor");
    expect(failedOf(await verifyAzureAttested({ ...base(), intermediates: [] }))).toBe("cert.anchor");
  });
  test("upstream-tampered 2019 docs → signature", async () => {
    for (const f of ["taskcluster-azure_signature_bad", "taskcluster-azure_message_bad"]) {
      const v = await verifyAzureAttested({ ...base(), pkcs7: fromBase64(vectorText(`${z}/${f}`)), at: new Date("2019-12-01T00:00:00Z") });
      expect(failedOf(v)).toBe("signature");
    }
  });
});

describe("IID fuzz", () => {
  const seeds = [vectorBytes("azure-imds/taskcluster-good.pkcs7.der"), pemBlocks(vectorText(`${a}/mozilla-pkcs7-2016-us-east-1.pkcs7.pem`), "PKCS7")[0]!];
  test("mutated CMS: parse or MalformedInputError", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 5 }), fc.nat(), (w, edits, cut) => {
        const b = new Uint8Array(seeds[w]!);
        for (const [i, v] of edits) b[i % b.length] = v;
        try {
          parseSignedData(b.subarray(0, cut % (b.length + 1)));
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 300 },
    );
  });
  test("random tokens never crash the GCP verifier", async () => {
    const jwks = vectorJson<{ keys: Jwk[] }>("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json");
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (t) => {
        const v = await verifyGcpIdentityToken({ token: t, jwks, at: now, audience: "x" });
        expect(v.ok).toBe(false);
        if (!v.ok) expect(v.failed).not.toBe("internal");
      }),
      { numRuns: 200 },
    );
  });
});
