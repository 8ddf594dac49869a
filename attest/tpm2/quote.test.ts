import { describe, expect, test } from "bun:test";
import { createPrivateKey, generateKeyPairSync, sign, constants } from "node:crypto";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { fromHex, toHex } from "../bytes.ts";
import { flipByte, vectorBytes, vectorJson, vectorText } from "../testing/vectors.ts";
import { pemBlocks } from "../x509/cert.ts";
import { hashBytes, type Hash } from "../x509/sig.ts";
import { verifyTpmQuote, type PcrBank, type QuoteInput } from "./quote.ts";
import { parseTpm2bPublic, parseTpmsAttest, parseTpmtPublic, parseTpmtSignature } from "./structures.ts";

type PcrJson = { hash: Hash; pcrs: Record<string, string> };
function bank(rel: string): PcrBank {
  const j = vectorJson<PcrJson>(rel);
  return { hash: j.hash, values: Object.fromEntries(Object.entries(j.pcrs).map(([k, v]) => [Number(k), fromHex(v)])) };
}
const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const spkiOf = (rel: string) => pemBlocks(vectorText(rel), "PUBLIC KEY")[0]!;
const at = new Date("2026-02-03T11:00:00Z");

describe("swtpm quotes (real swtpm + tpm2-tools artefacts)", () => {
  const out = "swtpm/out";
  const nonce = fromHex(vectorText(`${out}/nonce.hex`));
  const pcrs = [bank(`${out}/pcrs.json`)];
  for (const kind of ["ecc", "rsa"] as const) {
    const base = (): QuoteInput => ({
      attest: vectorBytes(`${out}/quote_${kind}.tpms_attest`),
      signature: vectorBytes(`${out}/quote_${kind}.tpmt_signature`),
      ak: { kind: "key", spki: spkiOf(`${out}/ak_${kind}.pem`) },
      pcrs, nonce, at,
    });
    test(`${kind}: valid (AK as PEM) and valid (AK as TPM2B_PUBLIC)`, async () => {
      const v = await verifyTpmQuote(base());
      expect(failedOf(v)).toBe("ok");
      expect(v.checks.map((c) => c.name)).toEqual(["structure", "magic", "type", "ak.provided", "ak.attributes", "hash-policy", "signature", "nonce", "pcr-selection", "pcr-digest", "pcr-policy"]);
      if (v.ok) expect(toHex(v.claims.attest.quote!.pcrDigest)).toStartWith("45921fdc");
      const tss = await verifyTpmQuote({ ...base(), ak: { kind: "key", tpm2bPublic: vectorBytes(`${out}/ak_${kind}.tpm2b_public`) } });
      expect(failedOf(tss)).toBe("ok");
    });
    test(`${kind}: wrong nonce (first byte inverted) → nonce`, async () => {
      expect(failedOf(await verifyTpmQuote({ ...base(), nonce: flipByte(nonce, 0, 0xff) }))).toBe("nonce");
    });
    test(`${kind}: changed PCR 23 → pcr-digest`, async () => {
      const changed = { hash: pcrs[0]!.hash, values: { ...pcrs[0]!.values, 23: flipByte(pcrs[0]!.values[23]!, 31) } };
      expect(failedOf(await verifyTpmQuote({ ...base(), pcrs: [changed] }))).toBe("pcr-digest");
    });
    test(`${kind}: flipped last byte of TPMT_SIGNATURE (tampered_${kind}) → signature`, async () => {
      const v = await verifyTpmQuote({ ...base(), signature: vectorBytes(`${out}/tampered_${kind}.tpmt_signature`) });
      expect(failedOf(v)).toBe("signature");
    });
    test(`${kind}: flipped last byte of TPMS_ATTEST (tampered_${kind}) → signature`, async () => {
      const v = await verifyTpmQuote({ ...base(), attest: vectorBytes(`${out}/tampered_${kind}.tpms_attest`) });
      expect(failedOf(v)).toBe("signature");
    });
    test(`${kind}: missing PCR value → pcr-selection; PCR policy allow/deny`, async () => {
      const partial = { hash: pcrs[0]!.hash, values: { ...pcrs[0]!.values } };
      delete partial.values[16];
      expect(failedOf(await verifyTpmQuote({ ...base(), pcrs: [partial] }))).toBe("pcr-selection");
      const good = { allowed: { hash: "sha256" as const, pcrs: { 10: ["9edb72c900556c1cd2283cd04e7c18b30bc002026c6961450b89c080bfc55ced"], 0: ["00".repeat(32)] } } };
      expect(failedOf(await verifyTpmQuote({ ...base(), policy: good }))).toBe("ok");
      const bad = { allowed: { hash: "sha256" as const, pcrs: { 10: ["11".repeat(32)] } } };
      expect(failedOf(await verifyTpmQuote({ ...base(), policy: bad }))).toBe("pcr-policy");
      const unquoted = { allowed: { hash: "sha256" as const, pcrs: { 4: ["00".repeat(32)] } } };
      expect(failedOf(await verifyTpmQuote({ ...base(), policy: unquoted }))).toBe("pcr-policy");
    });
  }
  test("EK (restricted decrypt key) offered as the AK → ak.attributes", async () => {
    const v = await verifyTpmQuote({
      attest: vectorBytes(`${out}/quote_rsa.tpms_attest`), signature: vectorBytes(`${out}/quote_rsa.tpmt_signature`),
      ak: { kind: "key", tpm2bPublic: vectorBytes(`${out}/ek.tpm2b_public`) }, pcrs, nonce, at,
    });
    expect(failedOf(v)).toBe("ak.attributes");
  });
  test("RSA quote checked with the ECC AK → signature", async () => {
    const v = await verifyTpmQuote({
      attest: vectorBytes(`${out}/quote_rsa.tpms_attest`), signature: vectorBytes(`${out}/quote_rsa.tpmt_signature`),
      ak: { kind: "key", spki: spkiOf(`${out}/ak_ecc.pem`) }, pcrs, nonce, at,
    });
    expect(failedOf(v)).toBe("signature");
  });
  test("structures: AK attributes, TPMS_ATTEST fields", () => {
    const ak = parseTpm2bPublic(vectorBytes(`${out}/ak_ecc.tpm2b_public`));
    expect(ak.objectAttributes).toBe(0x00050072);
    expect(ak.ecc?.curve).toBe("P-256");
    const a = parseTpmsAttest(vectorBytes(`${out}/quote_ecc.tpms_attest`));
    expect(a.firmwareVersion).toBe(0x2019102300163636n);
    expect(a.quote?.pcrSelect).toEqual([{ hash: "sha256", pcrs: [0, 1, 2, 3, 7, 10, 16, 23] }]);
  });
});

describe("GCE vTPM quotes with AK certificate chain", () => {
  const roots = [vectorBytes("tpm-gce/tpm_ek_root_1.cer")];
  const intermediates = [vectorBytes("tpm-gce/tpm_ek_intermediate_2.crt")];
  for (const [dir, nonceHex] of [["nonce9009", "9009"], ["no-nonce", ""]] as const) {
    for (const q of [0, 1, 2]) {
      test(`${dir} quote${q}: VALID via AK cert → intermediate_2 → root_1`, async () => {
        const input: QuoteInput = {
          attest: vectorBytes(`tpm-gce/${dir}/quote${q}.tpms_attest.bin`),
          signature: vectorBytes(`tpm-gce/${dir}/quote${q}.tpmt_signature.bin`),
          ak: { kind: "cert", cert: vectorBytes(`tpm-gce/${dir}/ak_cert.der`), intermediates, roots, tpmtPublic: vectorBytes(`tpm-gce/${dir}/ak_pub.tpmt_public.bin`) },
          pcrs: [bank(`tpm-gce/${dir}/quote${q}.pcrs.json`)],
          nonce: fromHex(nonceHex),
          at: new Date("2025-01-01T00:00:00Z"),
          policy: { allowSha1: true },
        };
        const v = await verifyTpmQuote(input);
        expect(failedOf(v)).toBe("ok");
        expect(v.checks.map((c) => c.name)).toContain("ak.binding");
        if (v.ok) {
          expect(v.claims.attest.resetCount).toBe(10);
          expect(v.claims.signatureHash).toBe("sha256");
        }
        if (nonceHex) expect(failedOf(await verifyTpmQuote({ ...input, nonce: fromHex("9008") }))).toBe("nonce");
        else expect(failedOf(await verifyTpmQuote({ ...input, nonce: fromHex("9009") }))).toBe("nonce");
      });
    }
  }
  test("AK cert chain: wrong root → ak.anchor; before notBefore → ak.validity; other AK → ak.binding", async () => {
    const base: QuoteInput = {
      attest: vectorBytes("tpm-gce/nonce9009/quote1.tpms_attest.bin"),
      signature: vectorBytes("tpm-gce/nonce9009/quote1.tpmt_signature.bin"),
      ak: { kind: "cert", cert: vectorBytes("tpm-gce/nonce9009/ak_cert.der"), intermediates, roots },
      pcrs: [bank("tpm-gce/nonce9009/quote1.pcrs.json")], nonce: fromHex("9009"), at: new Date("2025-01-01T00:00:00Z"),
    };
    expect(failedOf(await verifyTpmQuote(base))).toBe("ok");
    expect(failedOf(await verifyTpmQuote({ ...base, ak: { ...base.ak, roots: [vectorBytes("tpm-gce/gcp_ek_ak_ca_root.crt")] } as QuoteInput["ak"] }))).toBe("ak.anchor");
    expect(failedOf(await verifyTpmQuote({ ...base, at: new Date("2021-01-01T00:00:00Z") }))).toBe("ak.validity");
    const otherAk = vectorBytes("tpm-gce/go-attestation-windows/ak_pub.tpmt_public.bin");
    expect(failedOf(await verifyTpmQuote({ ...base, ak: { ...base.ak, tpmtPublic: otherAk } as QuoteInput["ak"] }))).toBe("ak.binding");
    // The SHA-1 bank quote (quote0) is refused by the default policy.
    const q0 = { ...base, attest: vectorBytes("tpm-gce/nonce9009/quote0.tpms_attest.bin"), signature: vectorBytes("tpm-gce/nonce9009/quote0.tpmt_signature.bin"), pcrs: [bank("tpm-gce/nonce9009/quote0.pcrs.json")] };
    expect(failedOf(await verifyTpmQuote(q0))).toBe("pcr-selection");
  });
  test("Windows GCP shielded VM: SHA-1 RSASSA, VALID only when SHA-1 allowed", async () => {
    const d = "tpm-gce/go-attestation-windows";
    const input: QuoteInput = {
      attest: vectorBytes(`${d}/quote.tpms_attest.bin`), signature: vectorBytes(`${d}/quote.tpmt_signature.bin`),
      ak: { kind: "key", tpmtPublic: vectorBytes(`${d}/ak_pub.tpmt_public.bin`) },
      pcrs: [bank(`${d}/quote.pcrs.json`)], nonce: new Uint8Array(0), at, policy: { allowSha1: true },
    };
    expect(failedOf(await verifyTpmQuote(input))).toBe("ok");
    expect(failedOf(await verifyTpmQuote({ ...input, policy: {} }))).toBe("hash-policy");
    expect(failedOf(await verifyTpmQuote({ ...input, ak: { kind: "key", spki: spkiOf(`${d}/ak_pub.pem`) } }))).toBe("ok");
  });
});

describe("vaportpm cloud vTPM quotes", () => {
  for (const [d, when] of [["nitro", "2026-02-03T11:00:00Z"], ["gcp-amd", "2026-02-02T08:00:00Z"], ["gcp-tdx", "2026-02-03T08:00:00Z"]] as const) {
    test(`${d}: quote VALID with ECC P-256 AK`, async () => {
      const input: QuoteInput = {
        attest: vectorBytes(`tpm-vaportpm/${d}/quote.tpms_attest.bin`),
        signature: vectorBytes(`tpm-vaportpm/${d}/quote.tpmt_signature.bin`),
        ak: { kind: "key", spki: spkiOf(`tpm-vaportpm/${d}/ak_p256.pem`) },
        pcrs: [bank(`tpm-vaportpm/${d}/pcrs.json`)],
        nonce: fromHex(vectorText(`tpm-vaportpm/${d}/nonce.hex`)),
        at: new Date(when),
      };
      expect(failedOf(await verifyTpmQuote(input))).toBe("ok");
      if (d !== "nitro") {
        const chain = pemBlocks(vectorText(`tpm-vaportpm/${d}/gcp_ak_cert_chain.pem`));
        const viaCert = await verifyTpmQuote({ ...input, ak: { kind: "cert", cert: chain[0]!, intermediates: chain.slice(1, 2), roots: [vectorBytes("tpm-gce/gcp_ek_ak_ca_root.crt")] } });
        expect(failedOf(viaCert)).toBe("ok");
      }
    });
  }
});

describe("synthetic quotes: ECDSA P-384 and RSA-PSS signing paths", () => {
  function attestFor(pcrDigest: Uint8Array, nonce: Uint8Array): Uint8Array {
    const parts = [
      "ff544347", "8018", "0000", (nonce.length).toString(16).padStart(4, "0") + toHex(nonce),
      "0000000000000001", "00000001", "00000000", "01", "2019102300163636",
      "00000001", "000c", "03", "010000", (pcrDigest.length).toString(16).padStart(4, "0") + toHex(pcrDigest),
    ];
    return fromHex(parts.join(""));
  }
  const pcr0 = new Uint8Array(48).fill(7);
  test("ECDSA P-384 / SHA-384 and RSA-PSS / SHA-256", async () => {
    const nonce = fromHex("0102");
    for (const kind of ["p384", "pss"] as const) {
      const hash: Hash = kind === "p384" ? "sha384" : "sha256";
      const attest = attestFor(hashBytes(hash, pcr0), nonce);
      const kp = kind === "p384" ? generateKeyPairSync("ec", { namedCurve: "P-384" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
      let sigStruct: Uint8Array;
      if (kind === "p384") {
        const raw = sign("sha384", attest, { key: kp.privateKey, dsaEncoding: "ieee-p1363" });
        sigStruct = fromHex("0018000c" + "0030" + raw.subarray(0, 48).toString("hex") + "0030" + raw.subarray(48).toString("hex"));
      } else {
        const raw = sign("sha256", attest, { key: createPrivateKey(kp.privateKey.export({ type: "pkcs8", format: "pem" })), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
        sigStruct = fromHex("0016000b" + raw.length.toString(16).padStart(4, "0") + raw.toString("hex"));
      }
      const spki = new Uint8Array(kp.publicKey.export({ type: "spki", format: "der" }));
      const input: QuoteInput = { attest, signature: sigStruct, ak: { kind: "key", spki }, pcrs: [{ hash: "sha384", values: { 0: pcr0 } }], nonce, at };
      expect(failedOf(await verifyTpmQuote(input))).toBe("ok");
      expect(failedOf(await verifyTpmQuote({ ...input, signature: flipByte(sigStruct, 10) }))).toBe("signature");
      // Magic and type are checked before the signature.
      expect(failedOf(await verifyTpmQuote({ ...input, attest: flipByte(attest, 0) }))).toBe("magic");
      const certifyType = new Uint8Array(attest);
      certifyType[5] = 0x17;
      expect(failedOf(await verifyTpmQuote({ ...input, attest: certifyType }))).toBe("structure");
    }
  });
});

describe("TPM parser fuzz", () => {
  const seeds = [
    vectorBytes("swtpm/out/quote_ecc.tpms_attest"), vectorBytes("swtpm/out/quote_rsa.tpmt_signature"),
    vectorBytes("swtpm/out/ak_rsa.tpm2b_public"), vectorBytes("tpm-gce/nonce9009/ak_pub.tpmt_public.bin"),
  ];
  const parsers = [parseTpmsAttest, parseTpmtSignature, parseTpm2bPublic, parseTpmtPublic];
  test("mutations and truncations give MalformedInputError or a parse", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), (w, edits, cut) => {
        const b = new Uint8Array(seeds[w]!);
        for (const [i, v] of edits) b[i % b.length] = v;
        try {
          parsers[w]!(b.subarray(0, cut % (b.length + 1)));
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 500 },
    );
  });
  test("verifier on random input never throws", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 100 }), async (a, s) => {
        const v = await verifyTpmQuote({ attest: a, signature: s, ak: { kind: "key", tpmtPublic: a }, pcrs: [], nonce: new Uint8Array(0), at });
        expect(v.ok).toBe(false);
        if (!v.ok) expect(v.failed).not.toBe("internal");
      }),
      { numRuns: 200 },
    );
  });
});
