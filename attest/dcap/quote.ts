/**
 * Intel DCAP ECDSA quotes: SGX v3, SGX/TDX v4, v5 (Intel SGX/TDX DCAP Quote Library API, Quote
 * Format). Little-endian throughout. Parses the header, the report body, the ECDSA signature data
 * with the QE report and the certification data (PCK chain, type 5).
 */
import { Reader, malformed } from "../bytes.ts";
import { pemBlocks } from "../x509/cert.ts";

export const quoteHeaderSize = 48;
export const sgxReportSize = 384;
export const td10ReportSize = 584;
export const td15ReportSize = 648;
export const quoteBytesMax = 64 * 1024;
export const TEE_SGX = 0x00000000;
export const TEE_TDX = 0x00000081;

export type SgxReport = {
  cpuSvn: Uint8Array; miscSelect: number; attributes: Uint8Array; mrEnclave: Uint8Array; mrSigner: Uint8Array;
  isvProdId: number; isvSvn: number; reportData: Uint8Array; raw: Uint8Array;
};

export type TdReport = {
  teeTcbSvn: Uint8Array; mrSeam: Uint8Array; mrSignerSeam: Uint8Array; seamAttributes: Uint8Array; tdAttributes: Uint8Array;
  xfam: Uint8Array; mrTd: Uint8Array; mrConfigId: Uint8Array; mrOwner: Uint8Array; mrOwnerConfig: Uint8Array;
  rtmrs: Uint8Array[]; reportData: Uint8Array; teeTcbSvn2?: Uint8Array; mrServiceTd?: Uint8Array;
};

export type DcapQuote = {
  version: number;
  attestationKeyType: number;
  teeType: number;
  qeSvn: number;
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
  sgx?: SgxReport;
  td?: TdReport;
  /** Header + body: the bytes the attestation key signs. */
  signedRegion: Uint8Array;
  signature: Uint8Array;
  attestationKey: Uint8Array;
  qeReport: SgxReport;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  certificationType: number;
  /** PCK chain (leaf first) as DER, when certification data type is 5. */
  pckChain: Uint8Array[];
  /** Unsigned bytes after the signature data (some producers pad); reported, not used. */
  trailingBytes: number;
};

export function parseSgxReport(b: Uint8Array): SgxReport {
  const r = new Reader(b, "SGX report");
  const cpuSvn = r.bytes(16, "cpusvn");
  const miscSelect = r.u32le("miscselect");
  r.bytes(28, "reserved1");
  const attributes = r.bytes(16, "attributes");
  const mrEnclave = r.bytes(32, "mrenclave");
  r.bytes(32, "reserved2");
  const mrSigner = r.bytes(32, "mrsigner");
  r.bytes(96, "reserved3");
  const isvProdId = r.u16le("isvprodid");
  const isvSvn = r.u16le("isvsvn");
  r.bytes(60, "reserved4");
  const reportData = r.bytes(64, "reportdata");
  r.end();
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData, raw: b };
}

function parseTdReport(b: Uint8Array): TdReport {
  const r = new Reader(b, "TD report");
  const td: TdReport = {
    teeTcbSvn: r.bytes(16, "tee_tcb_svn"), mrSeam: r.bytes(48, "mrseam"), mrSignerSeam: r.bytes(48, "mrsignerseam"),
    seamAttributes: r.bytes(8, "seam_attributes"), tdAttributes: r.bytes(8, "td_attributes"), xfam: r.bytes(8, "xfam"),
    mrTd: r.bytes(48, "mrtd"), mrConfigId: r.bytes(48, "mrconfigid"), mrOwner: r.bytes(48, "mrowner"),
    mrOwnerConfig: r.bytes(48, "mrownerconfig"),
    rtmrs: [r.bytes(48, "rtmr0"), r.bytes(48, "rtmr1"), r.bytes(48, "rtmr2"), r.bytes(48, "rtmr3")],
    reportData: r.bytes(64, "reportdata"),
  };
  if (b.length === td15ReportSize) {
    td.teeTcbSvn2 = r.bytes(16, "tee_tcb_svn2");
    td.mrServiceTd = r.bytes(48, "mrservicetd");
  }
  r.end();
  return td;
}

export function parseDcapQuote(buf: Uint8Array): DcapQuote {
  if (buf.length > quoteBytesMax) malformed("DCAP quote too large");
  const r = new Reader(buf, "DCAP quote");
  const version = r.u16le("version");
  const attestationKeyType = r.u16le("att_key_type");
  const teeType = r.u32le("tee_type");
  const qeSvn = r.u16le("qe_svn");
  const pceSvn = r.u16le("pce_svn");
  const qeVendorId = r.bytes(16, "qe_vendor_id");
  const userData = r.bytes(20, "user_data");
  if (version < 3 || version > 5) malformed(`DCAP quote: unsupported version ${version}`);
  const tee = version === 3 ? TEE_SGX : teeType;
  if (tee !== TEE_SGX && tee !== TEE_TDX) malformed(`DCAP quote: unknown tee_type 0x${teeType.toString(16)}`);
  let bodySize: number;
  if (version === 5) {
    const bodyType = r.u16le("body_type");
    bodySize = r.u32le("body_size");
    const expected = { 1: sgxReportSize, 2: td10ReportSize, 3: td15ReportSize }[bodyType];
    if (expected === undefined || expected !== bodySize) malformed(`DCAP quote v5: bad body type ${bodyType} / size ${bodySize}`);
  } else {
    bodySize = tee === TEE_TDX ? td10ReportSize : sgxReportSize;
  }
  const body = r.bytes(bodySize, "report body");
  const signedRegion = buf.subarray(0, r.pos);
  const sigLen = r.u32le("signature_data_len");
  const sd = new Reader(r.bytes(sigLen, "signature data"), "DCAP signature data");
  const trailingBytes = r.remaining;
  const signature = sd.bytes(64, "quote signature");
  const attestationKey = sd.bytes(64, "attestation key");
  let cd = sd;
  if (version >= 4) {
    const type = sd.u16le("certification_data_type");
    const size = sd.u32le("certification_data_size");
    if (type !== 6) malformed(`DCAP quote: outer certification data type ${type} (expected 6)`);
    cd = new Reader(sd.bytes(size, "QE report certification data"), "QE report certification data");
    sd.end();
  }
  const qeReport = parseSgxReport(cd.bytes(sgxReportSize, "QE report"));
  const qeReportSignature = cd.bytes(64, "QE report signature");
  const qeAuthData = cd.bytes(cd.u16le("qe_auth_data_size"), "QE auth data");
  const certificationType = cd.u16le("certification_data_type");
  const certData = cd.bytes(cd.u32le("certification_data_size"), "certification data");
  cd.end();
  let pckChain: Uint8Array[] = [];
  if (certificationType === 5) {
    pckChain = pemBlocks(Buffer.from(certData).toString("latin1"));
    if (pckChain.length === 0 || pckChain.length > 4) malformed("DCAP quote: bad PCK certificate chain");
  }
  const q: DcapQuote = {
    version, attestationKeyType, teeType: tee, qeSvn, pceSvn, qeVendorId, userData, signedRegion, signature, attestationKey,
    qeReport, qeReportSignature, qeAuthData, certificationType, pckChain, trailingBytes,
  };
  if (tee === TEE_TDX) q.td = parseTdReport(body);
  else q.sgx = parseSgxReport(body);
  return q;
}
