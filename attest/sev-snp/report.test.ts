import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { toHex } from "../bytes.ts";
import { flipByte, vectorBytes, vectorText } from "../testing/vectors.ts";
import { pemBlocks } from "../x509/cert.ts";
import { parseSnpReport, verifySnpReport, type SnpInput } from "./report.ts";

const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const [ask, ark] = pemBlocks(vectorText("sev-snp/ask_ark_milan.pem"));
const [gAsk, gArk] = pemBlocks(vectorText("sev-snp/ask_ark_genoa.pem"));

const goSev = (): SnpInput => ({
  report: vectorBytes("sev-snp/attestation.bin"), vcek: vectorBytes("sev-snp/vcek.der"), ask: ask!, ark: ark!,
  at: new Date("2022-09-24T01:00:00Z"), policy: { allowDebug: true },
});
const virtee = (): SnpInput => ({
  report: vectorBytes("sev-snp/virtee-milan/report_milan.bin"), vcek: vectorBytes("sev-snp/virtee-milan/vcek_milan.der"), ask: ask!, ark: ark!,
  at: new Date("2024-01-01T00:00:00Z"),
});

describe("SEV-SNP reports", () => {
  test("go-sev-guest attestation.bin: VALID (debug allowed by policy); fields as documented", async () => {
    const v = await verifySnpReport(goSev());
    expect(failedOf(v)).toBe("ok");
    expect(v.checks.map((c) => c.name)).toEqual([
      "structure", "version", "vcek.signature", "vcek.anchor", "vcek.ca", "vcek.validity", "signature", "tcb", "chip-id", "debug", "report-data", "policy",
    ]);
    if (v.ok) {
      const r = v.claims.report;
      expect(r.version).toBe(2);
      expect(r.policy).toBe(0xb0000n);
      expect(r.reportedTcb.raw).toBe(0x4405000000000002n);
      expect(toHex(r.reportData)).toBe("0102030405" + "00".repeat(59));
      expect(toHex(r.measurement)).toStartWith("b07af962");
      expect(v.claims.productName).toContain("Milan");
    }
    expect(failedOf(await verifySnpReport({ ...goSev(), reportData: new Uint8Array([1, 2, 3, 4, 5]) }))).toBe("ok");
    expect(failedOf(await verifySnpReport({ ...goSev(), reportData: new Uint8Array([1, 2, 3, 4, 6]) }))).toBe("report-data");
  });
  test("go-sev-guest: default policy rejects DEBUG", async () => {
    const { policy: _, ...rest } = goSev();
    expect(failedOf(await verifySnpReport(rest))).toBe("debug");
  });
  test("virtee report_milan: VALID with default policy (debug not allowed)", async () => {
    const v = await verifySnpReport(virtee());
    expect(failedOf(v)).toBe("ok");
    if (v.ok) {
      expect(v.claims.report.policy).toBe(0x30000n);
      expect(v.claims.report.reportedTcb.raw).toBe(0x7308000000000003n);
      const m = toHex(v.claims.report.measurement);
      expect(failedOf(await verifySnpReport({ ...virtee(), policy: { measurements: [m] } }))).toBe("ok");
      expect(failedOf(await verifySnpReport({ ...virtee(), policy: { measurements: ["00".repeat(48)] } }))).toBe("policy");
      expect(failedOf(await verifySnpReport({ ...virtee(), policy: { minTcb: { snp: 9 } } }))).toBe("policy");
      expect(failedOf(await verifySnpReport({ ...virtee(), policy: { minTcb: { snp: 8, microcode: 0x73 } } }))).toBe("ok");
    }
    expect(failedOf(await verifySnpReport({ ...virtee(), at: new Date("2030-04-04T00:00:00Z") }))).toBe("vcek.validity");
  });
  test("flipping any signed byte → signature (sampled); VCEK of the other chip → signature", async () => {
    for (const i of [0, 0x50, 0x90, 0x1a0, 0x29f]) {
      const v = await verifySnpReport({ ...goSev(), report: flipByte(goSev().report, i, 0x10) });
      expect(v.ok).toBe(false);
      expect(["signature", "version"]).toContain(v.ok ? "" : v.failed);
    }
    expect(failedOf(await verifySnpReport({ ...goSev(), report: flipByte(goSev().report, 0x90) }))).toBe("signature");
    expect(failedOf(await verifySnpReport({ ...goSev(), vcek: virtee().vcek, at: new Date("2024-01-01T00:00:00Z") }))).toBe("signature");
  });
  test("Genoa ASK/ARK do not anchor a Milan VCEK", async () => {
    expect(failedOf(await verifySnpReport({ ...goSev(), ask: gAsk!, ark: gArk! }))).toBe("vcek.anchor");
  });
  test("truncated / oversized report → structure", async () => {
    expect(failedOf(await verifySnpReport({ ...goSev(), report: goSev().report.subarray(0, 1000) }))).toBe("structure");
  });
  test("fuzz: parser yields report or MalformedInputError", () => {
    const seed = vectorBytes("sev-snp/attestation.bin");
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(), (edits, cut) => {
        const b = new Uint8Array(seed);
        for (const [i, v] of edits) b[i % b.length] = v;
        try {
          parseSnpReport(cut % 5 === 0 ? b.subarray(0, cut % b.length) : b);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
