import { beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { flipByte, vectorBytes, vectorText } from "../testing/vectors.ts";
import { makeTestPki, type TestPki } from "../testing/pki.ts";
import { parseCertificate, parseCrl, parsePemCertificates, pemBlocks } from "./cert.ts";
import { verifyChain } from "./chain.ts";
import { dsaVerify, verifySignature } from "./sig.ts";

const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);

describe("x509 chains on real vectors", () => {
  test("SEV-SNP VCEK → ASK → ARK (RSA-PSS SHA-384, serial 0) valid at 2022-09-24T01:00Z", async () => {
    const [ask, ark] = parsePemCertificates(vectorText("sev-snp/ask_ark_milan.pem"));
    const vcek = parseCertificate(vectorBytes("sev-snp/vcek.der"));
    expect(vcek.scheme).toEqual({ kind: "rsa-pss", hash: "sha384", saltLength: 48 });
    expect(vcek.serialHex).toBe("00");
    const v = await verifyChain({ leaf: vcek, intermediates: [ask!], roots: [ark!], at: new Date("2022-09-24T01:00:00Z") });
    expect(v.ok).toBe(true);
    expect(v.checks.map((c) => c.name)).toEqual(["signature", "anchor", "ca", "validity"]);
    if (v.ok) expect(v.claims.path.map((c) => c.subject)).toEqual([vcek.subject, ask!.subject, ark!.subject]);
    const late = await verifyChain({ leaf: vcek, intermediates: [ask!], roots: [ark!], at: new Date("2029-09-25T00:00:00Z") });
    expect(failedOf(late)).toBe("validity");
    const early = await verifyChain({ leaf: vcek, intermediates: [ask!], roots: [ark!], at: new Date("2022-09-23T00:00:00Z") });
    expect(failedOf(early)).toBe("validity");
  });

  test("Genoa root does not anchor a Milan VCEK", async () => {
    const [gAsk, gArk] = parsePemCertificates(vectorText("sev-snp/ask_ark_genoa.pem"));
    const [ask] = parsePemCertificates(vectorText("sev-snp/ask_ark_milan.pem"));
    const v = await verifyChain({ leaf: vectorBytes("sev-snp/vcek.der"), intermediates: [gAsk!, ask!], roots: [gArk!], at: new Date("2023-01-01T00:00:00Z") });
    expect(failedOf(v)).toBe("anchor");
  });

  test("GCE AK cert → tpm_ek_intermediate_2 → tpm_ek_root_1 (RSA PKCS#1)", async () => {
    const opts = {
      leaf: vectorBytes("tpm-gce/nonce9009/ak_cert.der"),
      intermediates: [vectorBytes("tpm-gce/tpm_ek_intermediate_2.crt"), vectorBytes("tpm-gce/tpm_ek_intermediate_3.crt")],
      roots: [vectorBytes("tpm-gce/tpm_ek_root_1.cer")],
    };
    expect((await verifyChain({ ...opts, at: new Date("2025-01-01T00:00:00Z") })).ok).toBe(true);
    expect(failedOf(await verifyChain({ ...opts, at: new Date("2021-08-31T23:00:00Z") }))).toBe("validity");
    // Missing intermediate: no path.
    expect(failedOf(await verifyChain({ ...opts, intermediates: [], at: new Date("2025-01-01T00:00:00Z") }))).toBe("anchor");
  });

  test("GCP CVM ECC AK cert chains (vaportpm) to EK/AK CA Root", async () => {
    for (const d of ["gcp-amd", "gcp-tdx"]) {
      const v = await verifyChain({
        leaf: pemBlocks(vectorText(`tpm-vaportpm/${d}/ak_cert.pem`))[0]!,
        intermediates: pemBlocks(vectorText(`tpm-vaportpm/${d}/ek_ak_ca_intermediate.pem`)),
        roots: [vectorBytes("tpm-gce/gcp_ek_ak_ca_root.crt")],
        at: new Date("2026-02-04T00:00:00Z"),
      });
      expect(failedOf(v)).toBe("ok");
    }
  });

  test("Azure IMDS leaf → TLS G2 RSA CA OCSP 02 → TLS RSA Root G2: valid 2026-07-28T14:00Z, expired 2026-11-27", async () => {
    const opts = {
      leaf: pemBlocks(vectorText("azure-imds/leaf.pem"))[0]!,
      intermediates: pemBlocks(vectorText("azure-imds/microsoft_tls_g2_rsa_ca_ocsp_02.pem")),
      roots: pemBlocks(vectorText("azure-imds/microsoft_tls_rsa_root_g2.pem")),
    };
    expect(failedOf(await verifyChain({ ...opts, at: new Date("2026-07-28T14:00:00Z") }))).toBe("ok");
    expect(failedOf(await verifyChain({ ...opts, at: new Date("2026-11-27T00:00:00Z") }))).toBe("validity");
  });

  test("Intel PCK Platform CA → SGX Root CA with root CRL (ECDSA P-256)", async () => {
    const [platform, root] = pemBlocks(vectorText("tdx/pckcrl_issuer_chain.pem"));
    const base = { leaf: platform!, roots: [root!], crls: [vectorBytes("tdx/rootcrl.der")] };
    const ok = await verifyChain({ ...base, at: new Date("2023-07-01T01:00:00Z"), requireCrls: true });
    expect(failedOf(ok)).toBe("ok");
    expect(ok.checks.find((c) => c.name === "revocation")?.detail).toContain("1 certificate");
    // Root CRL expired (nextUpdate 2024-04-02) → revocation fails; without CRLs required it still fails because a stale CRL was supplied.
    expect(failedOf(await verifyChain({ ...base, at: new Date("2024-05-01T00:00:00Z") }))).toBe("revocation");
    // CRL required but none given.
    expect(failedOf(await verifyChain({ ...base, crls: [], requireCrls: true, at: new Date("2023-07-01T01:00:00Z") }))).toBe("revocation");
    const crl = parseCrl(vectorBytes("tdx/rootcrl.der"));
    expect(crl.revokedSerials.size).toBe(0);
    expect(crl.nextUpdate?.toISOString()).toBe("2024-04-02T10:22:51.000Z");
  });

  test("tampered certificate signature / swapped roots", async () => {
    const [platform, root] = pemBlocks(vectorText("tdx/pckcrl_issuer_chain.pem"));
    const tampered = flipByte(platform!, 200);
    expect(failedOf(await verifyChain({ leaf: tampered, roots: [root!], at: new Date("2023-07-01T00:00:00Z") }))).toBe("signature");
    const wrongRoot = vectorBytes("tpm-gce/tpm_ek_root_1.cer");
    expect(failedOf(await verifyChain({ leaf: platform!, roots: [wrongRoot], at: new Date("2023-07-01T00:00:00Z") }))).toBe("anchor");
    expect(failedOf(await verifyChain({ leaf: platform!.subarray(0, 100), roots: [root!], at: new Date() }))).toBe("structure");
  });
});

describe("x509 on a generated PKI", () => {
  let pki: TestPki;
  beforeAll(async () => {
    pki = await makeTestPki();
  });
  const at = new Date("2025-01-15T00:00:00Z");

  test("valid path with a CRL that does not list the leaf", async () => {
    const v = await verifyChain({ leaf: pki.leaf, intermediates: [pki.intermediate], roots: [pki.root], crls: [pki.crlEmpty], at });
    expect(failedOf(v)).toBe("ok");
  });
  test("revoked leaf", async () => {
    const v = await verifyChain({ leaf: pki.leaf, intermediates: [pki.intermediate], roots: [pki.root], crls: [pki.crlRevoking], at });
    expect(failedOf(v)).toBe("revocation");
    expect(v.ok ? "" : v.error).toContain("revoked");
  });
  test("CRL outside its window", async () => {
    const v = await verifyChain({ leaf: pki.leaf, intermediates: [pki.intermediate], roots: [pki.root], crls: [pki.crlEmpty], at: new Date("2025-03-01T00:00:00Z") });
    expect(failedOf(v)).toBe("revocation");
  });
  test("tampered CRL signature", async () => {
    const bad = flipByte(pki.crlEmpty, -3);
    const v = await verifyChain({ leaf: pki.leaf, intermediates: [pki.intermediate], roots: [pki.root], crls: [bad], at });
    expect(failedOf(v)).toBe("revocation");
  });
  test("issuer without cA", async () => {
    const v = await verifyChain({ leaf: pki.leafUnderNonCa, intermediates: [pki.nonCa], roots: [pki.root], at });
    expect(failedOf(v)).toBe("ca");
  });
  test("leaf is the trust anchor itself", async () => {
    expect(failedOf(await verifyChain({ leaf: pki.root, roots: [pki.root], at }))).toBe("ok");
  });
  test("self-signed leaf not configured as root", async () => {
    expect(failedOf(await verifyChain({ leaf: pki.root, roots: [pki.intermediate], at }))).toBe("anchor");
  });
});

describe("signature schemes", () => {
  test("DSA (bigint) verifies the AWS DSA self-signed certificate and rejects a flipped signature", () => {
    const c = parseCertificate(pemBlocks(vectorText("aws-ec2-iid/aws_ec2_pkcs7_dsa_public_cert.pem"))[0]!);
    expect(c.scheme.kind).toBe("dsa");
    expect(dsaVerify(c.spki, c.scheme.hash, c.tbs, c.signature)).toBe(true);
    expect(dsaVerify(c.spki, c.scheme.hash, flipByte(c.tbs, 10), c.signature)).toBe(false);
    expect(verifySignature(c.spki, c.scheme, c.tbs, flipByte(c.signature, -1))).toBe(false);
  });
  test("garbage keys and signatures are false, never a throw", () => {
    expect(verifySignature(new Uint8Array([1, 2, 3]), { kind: "ecdsa", hash: "sha256", encoding: "der" }, new Uint8Array(1), new Uint8Array(3))).toBe(false);
    expect(dsaVerify(new Uint8Array(0), "sha1", new Uint8Array(1), new Uint8Array(0))).toBe(false);
  });
});

describe("x509 fuzz", () => {
  const seeds = [vectorBytes("sev-snp/vcek.der"), vectorBytes("tdx/rootcrl.der")];
  test("mutated certificates and CRLs: parse or MalformedInputError", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.nat(), (which, edits, cut) => {
        const b = new Uint8Array(seeds[which]!);
        for (const [i, v] of edits) b[i % b.length] = v;
        const input = b.subarray(0, cut % (b.length + 1));
        try {
          if (which === 0) parseCertificate(input);
          else parseCrl(input);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 400 },
    );
  });
  test("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        try {
          parseCertificate(b);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
