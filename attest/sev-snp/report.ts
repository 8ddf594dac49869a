/**
 * AMD SEV-SNP attestation report (SEV-SNP Firmware ABI, ATTESTATION_REPORT, versions 2–5) and its
 * verification. Checks, in order:
 *   structure    1184-byte report parses
 *   version      report version supported (2..5), signature_algo == 1 (ECDSA P-384 SHA-384)
 *   vcek.*       VCEK → ASK → ARK chain to the configured ARK at `at` (RSA-PSS)
 *   signature    ECDSA P-384 over bytes 0x000..0x29F with the VCEK key
 *   tcb          reported_tcb SPLs (bl, tee, snp, ucode) == VCEK extensions
 *   chip-id      VCEK hwID == report chip_id
 *   debug        guest policy DEBUG bit refused unless policy.allowDebug
 *   report-data  report_data == expected (zero-padded to 64 bytes), when given
 *   policy       measurement allowlist / minimum TCB, when given
 */
import { Reader, bytesEqual, isAllZero, malformed, toHex } from "../bytes.ts";
import { parseDer } from "../der.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { extension, parseCertificate, type Certificate } from "../x509/cert.ts";
import { checkChain, type CertInput } from "../x509/chain.ts";
import { verifySignature } from "../x509/sig.ts";

export const snpReportSize = 0x4a0;
export const snpSignedSize = 0x2a0;

export type TcbVersion = { bootloader: number; tee: number; snp: number; microcode: number; raw: bigint };

export type SnpReport = {
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: TcbVersion;
  platformInfo: bigint;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportedTcb: TcbVersion;
  chipId: Uint8Array;
  committedTcb: TcbVersion;
  launchTcb: TcbVersion;
  /** Signature r and s as big-endian 48-byte values. */
  r: Uint8Array;
  s: Uint8Array;
  signed: Uint8Array;
};

export const policyDebugBit = 1n << 19n;

function tcb(v: bigint): TcbVersion {
  const b = (i: number) => Number((v >> BigInt(8 * i)) & 0xffn);
  return { bootloader: b(0), tee: b(1), snp: b(6), microcode: b(7), raw: v };
}

/** 72-byte little-endian component → 48-byte big-endian (upper bytes must be zero). */
function leComponent(b: Uint8Array, what: string): Uint8Array {
  if (!isAllZero(b.subarray(48))) malformed(`SNP report: signature ${what} exceeds 384 bits`);
  return new Uint8Array(b.subarray(0, 48)).reverse();
}

export function parseSnpReport(buf: Uint8Array): SnpReport {
  if (buf.length !== snpReportSize) malformed(`SNP report: expected ${snpReportSize} bytes, got ${buf.length}`);
  const r = new Reader(buf, "SNP report");
  const version = r.u32le("version");
  const guestSvn = r.u32le("guest_svn");
  const policy = r.u64le("policy");
  const familyId = r.bytes(16, "family_id");
  const imageId = r.bytes(16, "image_id");
  const vmpl = r.u32le("vmpl");
  const signatureAlgo = r.u32le("signature_algo");
  const currentTcb = tcb(r.u64le("current_tcb"));
  const platformInfo = r.u64le("platform_info");
  r.bytes(8, "flags/reserved");
  const reportData = r.bytes(64, "report_data");
  const measurement = r.bytes(48, "measurement");
  const hostData = r.bytes(32, "host_data");
  const idKeyDigest = r.bytes(48, "id_key_digest");
  const authorKeyDigest = r.bytes(48, "author_key_digest");
  const reportId = r.bytes(32, "report_id");
  r.bytes(32, "report_id_ma");
  const reportedTcb = tcb(r.u64le("reported_tcb"));
  r.bytes(0x18, "reserved/cpuid");
  const chipId = r.bytes(64, "chip_id");
  const committedTcb = tcb(r.u64le("committed_tcb"));
  r.bytes(8, "build numbers");
  const launchTcb = tcb(r.u64le("launch_tcb"));
  r.pos = snpSignedSize;
  const sr = r.bytes(72, "signature.r");
  const ss = r.bytes(72, "signature.s");
  return {
    version, guestSvn, policy, familyId, imageId, vmpl, signatureAlgo, currentTcb, platformInfo, reportData,
    measurement, hostData, idKeyDigest, authorKeyDigest, reportId, reportedTcb, chipId, committedTcb, launchTcb,
    r: leComponent(sr, "r"), s: leComponent(ss, "s"), signed: buf.subarray(0, snpSignedSize),
  };
}

export type SnpPolicy = {
  allowDebug?: boolean;
  /** Allowed launch measurements (hex). */
  measurements?: string[];
  /** Minimum reported TCB components. */
  minTcb?: Partial<Omit<TcbVersion, "raw">>;
};

export type SnpInput = {
  report: Uint8Array;
  vcek: CertInput;
  ask: CertInput;
  ark: CertInput;
  at: Date;
  reportData?: Uint8Array;
  policy?: SnpPolicy;
};

export type SnpClaims = { report: SnpReport; vcek: Certificate; productName?: string };

const OID_BL = "1.3.6.1.4.1.3704.1.3.1";
const OID_TEE = "1.3.6.1.4.1.3704.1.3.2";
const OID_SNP = "1.3.6.1.4.1.3704.1.3.3";
const OID_UCODE = "1.3.6.1.4.1.3704.1.3.8";
const OID_HWID = "1.3.6.1.4.1.3704.1.4";
const OID_PRODUCT = "1.3.6.1.4.1.3704.1.2";

function extInt(cert: Certificate, oid: string): number | undefined {
  const e = extension(cert, oid);
  if (!e) return undefined;
  const t = parseDer(e.value, `VCEK extension ${oid}`);
  if (t.tag !== 0x02 || t.body.length > 4) malformed(`VCEK extension ${oid} is not a small INTEGER`);
  return t.body.reduce((a, b) => a * 256 + b, 0);
}

function hwId(cert: Certificate): Uint8Array | undefined {
  const e = extension(cert, OID_HWID);
  if (!e) return undefined;
  if (e.value.length === 64) return e.value;
  const t = parseDer(e.value, "VCEK hwID");
  if (t.tag !== 0x04) malformed("VCEK hwID is not an OCTET STRING");
  return t.body;
}

export function verifySnpReport(input: SnpInput): Promise<Verdict<SnpClaims>> {
  return runChecks("structure", (c: Checks) => {
    const report = parseSnpReport(input.report);
    const vcek = input.vcek instanceof Uint8Array ? parseCertificate(input.vcek) : input.vcek;
    c.pass("structure", `report v${report.version}`);
    c.require("version", report.version >= 2 && report.version <= 5 && report.signatureAlgo === 1, `version ${report.version}, signature_algo ${report.signatureAlgo}`);
    checkChain(c.sub("vcek"), { leaf: vcek, intermediates: [input.ask], roots: [input.ark], at: input.at });
    const sig = Buffer.concat([report.r, report.s]);
    c.require("signature", verifySignature(vcek.spki, { kind: "ecdsa", hash: "sha384", encoding: "raw" }, report.signed, sig), "ECDSA P-384/SHA-384 over 0x000..0x29F with the VCEK");

    const t = report.reportedTcb;
    const want = { bootloader: extInt(vcek, OID_BL), tee: extInt(vcek, OID_TEE), snp: extInt(vcek, OID_SNP), microcode: extInt(vcek, OID_UCODE) };
    const tcbOk = want.bootloader === t.bootloader && want.tee === t.tee && want.snp === t.snp && want.microcode === t.microcode;
    c.require("tcb", tcbOk, `reported_tcb bl=${t.bootloader} tee=${t.tee} snp=${t.snp} ucode=${t.microcode}; VCEK bl=${want.bootloader} tee=${want.tee} snp=${want.snp} ucode=${want.microcode}`);
    const hw = hwId(vcek);
    c.require("chip-id", hw !== undefined && !isAllZero(report.chipId) && bytesEqual(hw, report.chipId), `chip_id ${toHex(report.chipId).slice(0, 16)}…`);

    const debug = (report.policy & policyDebugBit) !== 0n;
    c.require("debug", !debug || (input.policy?.allowDebug ?? false), `guest policy 0x${report.policy.toString(16)}${debug ? " allows DEBUG" : ""}`);

    if (input.reportData) {
      if (input.reportData.length > 64) malformed("expected report_data longer than 64 bytes");
      const want = new Uint8Array(64);
      want.set(input.reportData);
      c.require("report-data", bytesEqual(want, report.reportData), `report_data ${toHex(report.reportData).slice(0, 32)}…`);
    } else {
      c.pass("report-data", "not requested");
    }

    const p = input.policy;
    if (p?.measurements) c.require("policy", p.measurements.map((m) => m.toLowerCase()).includes(toHex(report.measurement)), `measurement ${toHex(report.measurement)}`);
    if (p?.minTcb) {
      const m = p.minTcb;
      const low = (["bootloader", "tee", "snp", "microcode"] as const).filter((k) => m[k] !== undefined && t[k] < m[k]!);
      c.require("policy", low.length === 0, low.length ? `reported TCB below minimum in ${low.join(", ")}` : "reported TCB meets minimum");
    }
    if (!p?.measurements && !p?.minTcb) c.pass("policy", "no measurement or TCB policy configured");

    const product = extension(vcek, OID_PRODUCT);
    const claims: SnpClaims = { report, vcek };
    if (product) {
      const pt = parseDer(product.value, "productName");
      claims.productName = Buffer.from(pt.body).toString("latin1");
    }
    return claims;
  });
}
