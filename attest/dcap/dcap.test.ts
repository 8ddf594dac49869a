import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { flipByte, vectorBytes, vectorText } from "../testing/vectors.ts";
import { pemBlocks } from "../x509/cert.ts";
import { collateralFromQvlJson, splitPcsResponse, type DcapCollateral } from "./collateral.ts";
import { parseDcapQuote } from "./quote.ts";
import { verifyCollateralItem, verifyDcapQuote, type DcapInput } from "./verify.ts";

const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const roots = pemBlocks(vectorText("sgx/intel_sgx_root_ca.pem"));
const qvl = (rel: string) => collateralFromQvlJson(vectorText(rel));

function goTdxCollateral(): DcapCollateral {
  const tcb = splitPcsResponse(vectorText("tdx/sample_tcbInfo_response"), "tcbInfo");
  const qe = splitPcsResponse(vectorText("tdx/sample_qeIdentity_response"), "enclaveIdentity");
  return {
    tcbInfo: tcb.text, tcbInfoSignature: tcb.signature, tcbInfoIssuerChain: vectorText("tdx/tcbinfo_issuer_chain.pem"),
    qeIdentity: qe.text, qeIdentitySignature: qe.signature, qeIdentityIssuerChain: vectorText("tdx/qeidentity_issuer_chain.pem"),
    pckCrl: vectorBytes("tdx/pckcrl"), rootCaCrl: vectorBytes("tdx/rootcrl.der"),
  };
}

describe("SGX DCAP quote v3 + collateral (dcap-qvl)", () => {
  const base = (): DcapInput => ({
    quote: vectorBytes("sgx/sgx_quote.dat"), roots, at: new Date("2025-07-19T10:01:17Z"), collateral: qvl("sgx/sgx_quote_collateral.json"),
  });
  test("VALID at 2025-07-19T10:01:17Z: ConfigurationAndSWHardeningNeeded [INTEL-SA-00289, INTEL-SA-00615]", async () => {
    const v = await verifyDcapQuote({ ...base(), reportData: new TextEncoder().encode("Hello, world!") });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) {
      expect(v.claims.tcbStatus).toBe("ConfigurationAndSWHardeningNeeded");
      expect(v.claims.advisoryIds).toEqual(["INTEL-SA-00289", "INTEL-SA-00615"]);
    }
    const names = v.checks.map((c) => c.name);
    for (const n of ["pck.revocation", "qe-report-signature", "qe-binding", "quote-signature", "tcb-info.signature", "tcb-info.window", "qe-identity.match", "tcb-status"]) expect(names).toContain(n);
  });
  test("collateral window: before tcbInfo issue / after QE identity nextUpdate", async () => {
    expect(failedOf(await verifyDcapQuote({ ...base(), at: new Date("2025-06-19T10:56:10Z") }))).toBe("tcb-info.window");
    expect(failedOf(await verifyDcapQuote({ ...base(), at: new Date("2025-07-19T10:01:19Z") }))).toBe("qe-identity.window");
    expect(failedOf(await verifyDcapQuote({ ...base(), at: new Date("2025-06-20T00:00:00Z") }))).toBe("ok");
  });
  test("policy refusing ConfigurationAndSWHardeningNeeded → tcb-status", async () => {
    expect(failedOf(await verifyDcapQuote({ ...base(), policy: { allowedStatuses: ["UpToDate"] } }))).toBe("tcb-status");
  });
  test("tampering: body → quote-signature; QE report → qe-report-signature; tcbInfo text → tcb-info.signature; report data mismatch", async () => {
    expect(failedOf(await verifyDcapQuote({ ...base(), quote: flipByte(base().quote, 48 + 320) }))).toBe("quote-signature");
    const q = parseDcapQuote(base().quote);
    const qeOffset = q.qeReport.raw.byteOffset - q.signedRegion.byteOffset;
    expect(failedOf(await verifyDcapQuote({ ...base(), quote: flipByte(base().quote, qeOffset + 10) }))).toBe("qe-report-signature");
    const col = base().collateral!;
    expect(failedOf(await verifyDcapQuote({ ...base(), collateral: { ...col, tcbInfo: col.tcbInfo.replace("SWHardeningNeeded", "UpToDateXXXXXXXXX") } }))).toBe("tcb-info.signature");
    expect(failedOf(await verifyDcapQuote({ ...base(), collateral: { ...col, tcbInfo: " " + col.tcbInfo } }))).toBe("tcb-info.signature");
    expect(failedOf(await verifyDcapQuote({ ...base(), reportData: new TextEncoder().encode("Hello, world?") }))).toBe("report-data");
    expect(failedOf(await verifyDcapQuote({ ...base(), roots: [vectorBytes("tpm-gce/tpm_ek_root_1.cer")] }))).toBe("pck.anchor");
    // A genuine TDX tcbInfo presented for an SGX quote: wrong id / FMSPC.
    const t = qvl("tdx/phala-dcap-qvl/tdx_quote_collateral.json");
    const swapped = { ...col, tcbInfo: t.tcbInfo, tcbInfoSignature: t.tcbInfoSignature, tcbInfoIssuerChain: t.tcbInfoIssuerChain };
    expect(failedOf(await verifyDcapQuote({ ...base(), collateral: swapped }))).toBe("tcb-info.match");
    // The SGX quote's PCK is issued by the Processor CA: the Platform CA CRL does not cover it.
    expect(failedOf(await verifyDcapQuote({ ...base(), collateral: { ...col, pckCrl: t.pckCrl } }))).toBe("pck.revocation");
  });
});

describe("TDX DCAP quotes", () => {
  test("phala tdx_quote (v4): VALID UpToDate, no advisories, at 2025-07-19T10:00:34Z", async () => {
    const input: DcapInput = { quote: vectorBytes("tdx/phala-dcap-qvl/tdx_quote"), roots, at: new Date("2025-07-19T10:00:34Z"), collateral: qvl("tdx/phala-dcap-qvl/tdx_quote_collateral.json") };
    const v = await verifyDcapQuote(input);
    expect(failedOf(v)).toBe("ok");
    if (v.ok) {
      expect(v.claims.tcbStatus).toBe("UpToDate");
      expect(v.claims.advisoryIds).toEqual([]);
    }
    expect(failedOf(await verifyDcapQuote({ ...input, at: new Date("2025-07-19T10:00:36Z") }))).not.toBe("ok");
  });
  test("phala tdx_quote_outdated (v5): all signatures and chains VALID; status not asserted upstream", async () => {
    const v = await verifyDcapQuote({ quote: vectorBytes("tdx/phala-dcap-qvl/tdx_quote_outdated"), roots, at: new Date("2026-03-01T00:00:00Z"), collateral: qvl("tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json") });
    for (const n of ["pck.revocation", "qe-report-signature", "qe-binding", "quote-signature", "tcb-info.signature", "qe-identity.signature", "qe-identity.match"]) {
      expect(v.checks.find((c) => c.name === n)?.ok).toBe(true);
    }
    expect(["ok", "tcb-status"]).toContain(String(failedOf(v)));
    expect(failedOf(await verifyDcapQuote({ quote: vectorBytes("tdx/phala-dcap-qvl/tdx_quote_outdated"), roots, at: new Date("2026-03-01T00:00:00Z") }))).toBe("ok");
  });
  test("go-tdx-guest SPR E4 (v4): VALID at 2023-07-01T01:00Z with PCS collateral and CRLs; PCK expired 2053", async () => {
    const input: DcapInput = { quote: vectorBytes("tdx/tdx_prod_quote_SPR_E4.dat"), roots, at: new Date("2023-07-01T01:00:00Z"), collateral: goTdxCollateral() };
    const v = await verifyDcapQuote({ ...input, policy: { allowedStatuses: ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded", "NoMatchingTcbLevel"] } });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) expect(v.claims.pckExtensions.fmspc).toBe("50806f000000");
    expect(failedOf(await verifyDcapQuote({ ...input, collateral: undefined, at: new Date("2053-07-01T00:00:00Z") }))).toBe("pck.validity");
    expect(failedOf(await verifyDcapQuote({ ...input, at: new Date("2023-07-08T07:30:00Z") }))).toBe("pck.revocation");
  });
  test("go-tdx-guest v5 sample: VALID at 2026-02-03T01:00Z (quote, QE, PCK chain)", async () => {
    const v = await verifyDcapQuote({ quote: vectorBytes("tdx/quote_v5_sample.dat"), roots, at: new Date("2026-02-03T01:00:00Z") });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) expect(v.claims.quote.version).toBe(5);
  });
});

describe("collateral items", () => {
  test("tcbInfo v5 (2026-02-01): VALID with the 2025–2032 TCB signing chain; the pinned 2018 cert fails on time", async () => {
    const r = splitPcsResponse(vectorText("tdx/sample_tcbinfo_response_v5"), "tcbInfo");
    const at = new Date(JSON.parse(r.text).issueDate);
    const fresh = await verifyCollateralItem({ text: r.text, signature: r.signature, issuerChain: vectorText("tdx/intel_tcb_signing_chain_2025-2032.pem"), roots, at });
    expect(failedOf(fresh)).toBe("ok");
    const old = await verifyCollateralItem({ text: r.text, signature: r.signature, issuerChain: vectorText("tdx/tcbinfo_issuer_chain.pem"), roots, at });
    expect(failedOf(old)).toBe("item.chain.validity");
    expect(failedOf(await verifyCollateralItem({ text: r.text.replace("TDX", "SGX"), signature: r.signature, issuerChain: vectorText("tdx/intel_tcb_signing_chain_2025-2032.pem"), roots, at }))).toBe("item.signature");
    expect(failedOf(await verifyCollateralItem({ text: "{", signature: r.signature, issuerChain: "", roots, at }))).toBe("structure");
  });
  test("TDX module identity mismatch → tdx-module", async () => {
    const col = qvl("tdx/phala-dcap-qvl/tdx_quote_collateral.json");
    const input: DcapInput = { quote: vectorBytes("tdx/phala-dcap-qvl/tdx_quote"), roots, at: new Date("2025-07-19T10:00:34Z"), collateral: col };
    const v = await verifyDcapQuote(input);
    expect(v.checks.find((c) => c.name === "tdx-module")?.ok).toBe(true);
    // Flip MRSIGNERSEAM in the TD report (signed): the quote signature catches it first.
    const q = parseDcapQuote(input.quote);
    const off = q.td!.mrSignerSeam.byteOffset - q.signedRegion.byteOffset;
    expect(failedOf(await verifyDcapQuote({ ...input, quote: flipByte(input.quote, off) }))).toBe("quote-signature");
  });
});

describe("DCAP fuzz", () => {
  const seeds = [vectorBytes("sgx/sgx_quote.dat"), vectorBytes("tdx/quote_v5_sample.dat")];
  test("mutated quotes: MalformedInputError or a parse; verifier never throws", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 1 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 1200 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), async (w, edits, cut) => {
        const b = new Uint8Array(seeds[w]!);
        for (const [i, v] of edits) b[i] = v;
        const input = cut % 3 === 0 ? b.subarray(0, cut % b.length) : b;
        try {
          parseDcapQuote(input);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
        const v = await verifyDcapQuote({ quote: input, roots, at: new Date("2026-02-03T01:00:00Z") });
        if (!v.ok) expect(v.failed).not.toBe("internal");
      }),
      { numRuns: 120 },
    );
  });
});
