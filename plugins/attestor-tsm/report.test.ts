/**
 * configfs-tsm collection for SEV-SNP (sev_guest) and TDX (tdx_guest), against a directory where a
 * fake plays the kernel's part and answers with REAL vector reports. Those reports were made for
 * other report_data, so the hub refuses the collected evidence at `report-data` — which proves the
 * plumbing carried the real report and that the binding is enforced — while verify-only runs with the
 * vectors' own report_data prove the same evidence is accepted when the binding matches.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDcapQuote } from "../../attest/dcap/quote.ts";
import { parseSnpReport } from "../../attest/sev-snp/report.ts";
import { vectorBytes, vectorText } from "../../attest/testing/vectors.ts";
import { pemBlocks } from "../../attest/x509/cert.ts";
import { dcapAttestor, verifyDcapParts } from "../attestor-dcap/index.ts";
import { snpAttestor, verifySnpParts } from "../attestor-sev-snp/index.ts";
import { bindingDigest512 } from "../sdk/binding.ts";
import { decodeCbor } from "../sdk/codec.ts";
import { AttestationError } from "../sdk/errors.ts";
import { buildSnpCertTable, parseSnpCertTable, SNP_CERT_GUIDS, tsmReport } from "./report.ts";
import { fakeTsm } from "./testing/fake.ts";

const noop = () => {};
const c = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };
const binding = { nonce: new Uint8Array(32).fill(5), peerId: "12D3KooWtsm", subjectPublicKey: new Uint8Array([48, 3, 1, 2, 3]) };

const snpReport = vectorBytes("sev-snp/virtee-milan/report_milan.bin");
const vcek = vectorBytes("sev-snp/virtee-milan/vcek_milan.der");
const [ask, ark] = pemBlocks(vectorText("sev-snp/ask_ark_milan.pem"));
const snpAt = new Date("2024-01-01T00:00:00Z");
const tdxQuote = vectorBytes("tdx/quote_v5_sample.dat");
const intelRoot = pemBlocks(vectorText("tdx/intel_sgx_root_ca.pem"));
const tdxAt = new Date("2026-02-03T01:00:00Z");
const certTable = () => buildSnpCertTable([{ guid: SNP_CERT_GUIDS.vcek, der: vcek }, { guid: SNP_CERT_GUIDS.ask, der: ask! }, { guid: SNP_CERT_GUIDS.ark, der: ark! }]);

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "grey-tsm-"));
  mkdirSync(join(root, "report"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe("configfs-tsm report protocol", () => {
  test("inblob written once, report read, object removed; generation checked", async () => {
    const fs = fakeTsm(root, "sev_guest", () => ({ outblob: snpReport, auxblob: certTable() }));
    const inblob = new Uint8Array(64).fill(9);
    const r = await tsmReport(inblob, "sev_guest", { root, fs, aux: true });
    expect(r.provider).toBe("sev_guest");
    expect(r.outblob).toEqual(snpReport);
    expect(r.generation).toBe(1);
    expect(fs.inblobs).toEqual([inblob]);
    expect(fs.objects()).toBe(0);
    expect(readdirSync(join(root, "report"))).toEqual([]);
    const certs = parseSnpCertTable(r.auxblob!);
    expect(certs.get(SNP_CERT_GUIDS.vcek)).toEqual(vcek);
    expect(certs.get(SNP_CERT_GUIDS.ark)).toEqual(ark!);
  });

  test("another writer interleaving: retried, then refused after tsmAttemptsMax", async () => {
    const fs = fakeTsm(root, "tdx_guest", () => ({ outblob: tdxQuote }));
    fs.interleave(1);
    const r = await tsmReport(new Uint8Array(64), "tdx_guest", { root, fs });
    expect(fs.inblobs.length).toBe(2);
    expect(r.generation).toBe(3);
    fs.interleave(10);
    const err = await tsmReport(new Uint8Array(64), "tdx_guest", { root, fs }).catch((e) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as Error).message).toContain("another writer");
    expect(fs.objects()).toBe(0);
  });

  test("wrong provider, missing configfs, wrong inblob size: clear errors, nothing left behind", async () => {
    const fs = fakeTsm(root, "tdx_guest", () => ({ outblob: tdxQuote }));
    await expect(tsmReport(new Uint8Array(64), "sev_guest", { root, fs })).rejects.toThrow('provider is "tdx_guest", expected "sev_guest"');
    expect(fs.objects()).toBe(0);
    await expect(tsmReport(new Uint8Array(64), "sev_guest", { root: join(root, "absent") })).rejects.toThrow("cannot create a configfs-tsm report");
    expect(() => tsmReport(new Uint8Array(32), "sev_guest", { root, fs })).toThrow(RangeError);
    expect(existsSync(join(root, "absent"))).toBe(false);
  });

  test("certificate table: truncated or pointing outside is refused", () => {
    const t = certTable();
    expect(() => parseSnpCertTable(t.subarray(0, 30))).toThrow("outside the table");
    const unterminated = new Uint8Array(24).fill(1);
    new DataView(unterminated.buffer).setUint32(16, 24, true);
    new DataView(unterminated.buffer).setUint32(20, 0, true);
    expect(() => parseSnpCertTable(unterminated)).toThrow("no terminating entry");
    const bad = new Uint8Array(t);
    new DataView(bad.buffer).setUint32(20, 1 << 20, true);
    expect(() => parseSnpCertTable(bad)).toThrow("outside the table");
  });
});

describe("sev-snp collect through configfs-tsm", () => {
  test("collect writes sha512(binding) to inblob; the real report + VCEK reach the hub, which refuses the binding (report-data)", async () => {
    const fs = fakeTsm(root, "sev_guest", () => ({ outblob: snpReport, auxblob: certTable() }));
    const agent = snpAttestor({ tsm: { root, fs } })(c);
    const ev = await agent.collect!(binding);
    expect(fs.inblobs).toEqual([bindingDigest512(binding)]);
    const parts = decodeCbor(ev.data) as { report: Uint8Array; vcek: Uint8Array };
    expect(parts.report).toEqual(snpReport);
    expect(parts.vcek).toEqual(vcek);
    const hub = snpAttestor({ roots: [ask!, ark!] })(c);
    const r = await hub.verify!(ev, binding, snpAt);
    expect(r.failed).toBe("report-data");
    // every check before the binding passed: the chain and signature of the real report
    expect(r.checks.filter((x) => x.name !== "report-data").every((x) => x.ok)).toBe(true);
    expect(r.checks.map((x) => x.name)).toContain("signature");
  });

  test("verify-only with the vector's own report_data: VALID", async () => {
    const own = parseSnpReport(snpReport).reportData;
    const r = await verifySnpParts({ report: snpReport, vcek }, { at: snpAt, roots: [ask!, ark!], reportData: own });
    expect(r.failed).toBeUndefined();
    expect(r.ok).toBe(true);
  });

  test("a host that supplies no certificates (empty auxblob): collect fails with a clear reason", async () => {
    const fs = fakeTsm(root, "sev_guest", () => ({ outblob: snpReport }));
    await expect(snpAttestor({ tsm: { root, fs } })(c).collect!(binding)).rejects.toThrow("no VCEK/VLEK");
  });
});

describe("dcap (TDX) collect through configfs-tsm", () => {
  test("collect writes sha512(binding) to inblob; the real quote reaches the hub, which refuses the binding (report-data)", async () => {
    const fs = fakeTsm(root, "tdx_guest", () => ({ outblob: tdxQuote }));
    const ev = await dcapAttestor({ tsm: { root, fs } })(c).collect!(binding);
    expect(fs.inblobs).toEqual([bindingDigest512(binding)]);
    expect((decodeCbor(ev.data) as { quote: Uint8Array }).quote).toEqual(tdxQuote);
    const r = await dcapAttestor({ roots: intelRoot })(c).verify!(ev, binding, tdxAt);
    expect(r.failed).toBe("report-data");
    expect(r.checks.find((x) => x.name === "quote-signature")?.ok).toBe(true);
  });

  test("verify-only with the vector's own report_data: VALID", async () => {
    const own = parseDcapQuote(tdxQuote).td!.reportData;
    const r = await verifyDcapParts({ quote: tdxQuote }, { at: tdxAt, roots: intelRoot, reportData: own });
    expect(r.failed).toBeUndefined();
    expect(r.claims.platform).toBe("intel-tdx");
  });
});
