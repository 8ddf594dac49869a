/**
 * Intel SGX / TDX DCAP quote verification (v3, v4, v5, ECDSA-256 attestation key). Checks:
 *   structure        quote parses, attestation key type ECDSA P-256, PCK chain present (type 5)
 *   pck.*            PCK leaf → PCK Platform/Processor CA → configured Intel SGX Root CA at `at`,
 *                    with revocation against the root CA CRL and PCK CRL when collateral is given
 *   qe-report-signature  QE report signed by the PCK key
 *   qe-binding       QE report_data = SHA-256(attestation key || QE auth data) || 32 zero bytes
 *   quote-signature  header + body signed by the attestation key
 *   report-data      report_data == expected (zero-padded), when given
 * With collateral:
 *   tcb-info.*       TCB signing chain to the root; tcb-info.signature; tcb-info.window (issueDate ≤ at ≤ nextUpdate);
 *                    tcb-info.match (id SGX/TDX, FMSPC and PCE-ID equal the PCK certificate's)
 *   qe-identity.*    same for the QE identity; qe-identity.match (MRSIGNER, ISVPRODID, masked MISCSELECT/ATTRIBUTES)
 *   tcb-status       matching TCB level, converged with the QE TCB level; status in policy.allowedStatuses
 */
import { bytesEqual, fromHex, malformed, toHex } from "../bytes.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { parseCertificate, type Certificate } from "../x509/cert.ts";
import { checkChain, type CertInput } from "../x509/chain.ts";
import { ecPointToSpki } from "../x509/keys.ts";
import { hashBytes, verifySignature } from "../x509/sig.ts";
import {
  chainBlocks, convergeStatus, maskedEqual, matchQeLevel, matchTcbLevel, parseQeIdentity, parseTcbInfo, type DcapCollateral, type TcbInfo,
} from "./collateral.ts";
import { pckExtensions, type PckExtensions } from "./pck.ts";
import { TEE_TDX, parseDcapQuote, type DcapQuote } from "./quote.ts";

export const defaultAllowedStatuses = ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"];

export type DcapInput = {
  quote: Uint8Array;
  roots: CertInput[];
  at: Date;
  collateral?: DcapCollateral;
  reportData?: Uint8Array;
  policy?: { allowedStatuses?: string[] };
};

export type DcapClaims = {
  quote: DcapQuote;
  pck: Certificate;
  pckExtensions: PckExtensions;
  tcbStatus?: string;
  advisoryIds?: string[];
};

const p256 = { kind: "ecdsa", hash: "sha256", encoding: "raw" } as const;

export function verifyDcapQuote(input: DcapInput): Promise<Verdict<DcapClaims>> {
  return runChecks("structure", (c: Checks) => {
    const quote = parseDcapQuote(input.quote);
    if (quote.attestationKeyType !== 2) malformed(`attestation key type ${quote.attestationKeyType} (only ECDSA P-256 = 2)`);
    if (quote.certificationType !== 5) malformed(`certification data type ${quote.certificationType} (only PCK chain = 5)`);
    const [leaf, ...chainRest] = quote.pckChain.map(parseCertificate);
    const pck = leaf!;
    const ext = pckExtensions(pck);
    c.pass("structure", `quote v${quote.version}, ${quote.teeType === TEE_TDX ? "TDX" : "SGX"}, FMSPC ${ext.fmspc}`);

    const col = input.collateral;
    checkChain(c.sub("pck"), {
      leaf: pck, intermediates: chainRest, roots: input.roots, at: input.at,
      ...(col ? { crls: [col.rootCaCrl, col.pckCrl], requireCrls: true } : {}),
    });
    c.require("qe-report-signature", verifySignature(pck.spki, p256, quote.qeReport.raw, quote.qeReportSignature), "QE report signed by the PCK key");
    const expectedQeData = new Uint8Array(64);
    expectedQeData.set(hashBytes("sha256", Buffer.concat([quote.attestationKey, quote.qeAuthData])));
    c.require("qe-binding", bytesEqual(expectedQeData, quote.qeReport.reportData), "QE report_data = SHA-256(attestation key || QE auth data)");
    const attKey = ecPointToSpki(Buffer.concat([new Uint8Array([4]), quote.attestationKey]));
    c.require("quote-signature", verifySignature(attKey, p256, quote.signedRegion, quote.signature), "header + body signed by the attestation key");

    const reportData = quote.td?.reportData ?? quote.sgx!.reportData;
    if (input.reportData) {
      if (input.reportData.length > 64) malformed("expected report_data longer than 64 bytes");
      const want = new Uint8Array(64);
      want.set(input.reportData);
      c.require("report-data", bytesEqual(want, reportData), `report_data ${toHex(reportData).slice(0, 32)}…`);
    } else {
      c.pass("report-data", "not requested");
    }

    const claims: DcapClaims = { quote, pck, pckExtensions: ext };
    if (col) checkCollateral(c, input, col, quote, ext, claims);
    return claims;
  });
}

/** TDX module identity (tcbInfo v3): SEAM signer/attributes and, for module 1.x+, its TCB level. */
function checkTdxModule(c: Checks, tcbInfo: TcbInfo, quote: DcapQuote): string {
  const td = quote.td!;
  const major = td.teeTcbSvn[1]!;
  const ids = tcbInfo.tdxModuleIdentities;
  if (major > 0 && ids) {
    const id = `TDX_${major.toString(16).padStart(2, "0").toUpperCase()}`;
    const ident = ids.find((m) => m.id === id);
    if (!ident) c.fail("tdx-module", `no TDX module identity ${id}`);
    const ok = toHex(td.mrSignerSeam) === ident.mrsigner.toLowerCase() && maskedEqual(td.seamAttributes, ident.attributes, ident.attributesMask);
    c.require("tdx-module", ok, `${id}: MRSIGNERSEAM/SEAMATTRIBUTES ${ok ? "match" : "differ"}`);
    const lvl = ident.tcbLevels.find((l) => l.tcb.isvsvn !== undefined && td.teeTcbSvn[0]! >= l.tcb.isvsvn);
    return lvl?.tcbStatus ?? "NoMatchingTcbLevel";
  }
  const m = tcbInfo.tdxModule;
  if (m) {
    const ok = toHex(td.mrSignerSeam) === m.mrsigner.toLowerCase() && maskedEqual(td.seamAttributes, m.attributes, m.attributesMask);
    c.require("tdx-module", ok, `TDX module MRSIGNERSEAM/SEAMATTRIBUTES ${ok ? "match" : "differ"}`);
  } else {
    c.pass("tdx-module", "no TDX module identity in tcbInfo");
  }
  return "UpToDate";
}

function checkSignedJson(c: Checks, name: string, text: string, sigHex: string, chainPem: string, input: DcapInput): void {
  const [signer, ...rest] = chainBlocks(chainPem).map(parseCertificate);
  checkChain(c.sub(`${name}.chain`), { leaf: signer!, intermediates: rest, roots: input.roots, at: input.at });
  const sig = fromHex(sigHex);
  c.require(`${name}.signature`, verifySignature(signer!.spki, p256, new TextEncoder().encode(text), sig), `signed by "${signer!.subject}"`);
}

/** Verifies one signed collateral item (tcbInfo / QE identity JSON text) on its own. */
export function verifyCollateralItem(item: { text: string; signature: string; issuerChain: string; roots: CertInput[]; at: Date }): Promise<Verdict<{ issueDate: string; nextUpdate: string }>> {
  return runChecks("structure", (c: Checks) => {
    let body: { issueDate?: unknown; nextUpdate?: unknown };
    try {
      body = JSON.parse(item.text) as typeof body;
    } catch {
      return malformed("collateral item is not JSON");
    }
    if (typeof body.issueDate !== "string" || typeof body.nextUpdate !== "string") malformed("collateral item: issueDate/nextUpdate missing");
    checkSignedJson(c, "item", item.text, item.signature, item.issuerChain, { quote: new Uint8Array(0), roots: item.roots, at: item.at });
    return { issueDate: body.issueDate, nextUpdate: body.nextUpdate };
  });
}

function window(c: Checks, name: string, issueDate: string, nextUpdate: string, at: Date): void {
  const from = new Date(issueDate).getTime(), to = new Date(nextUpdate).getTime(), t = at.getTime();
  if (Number.isNaN(from) || Number.isNaN(to)) malformed(`${name}: bad issueDate/nextUpdate`);
  c.require(`${name}.window`, from <= t && t <= to, `${issueDate} … ${nextUpdate}`);
}

function checkCollateral(c: Checks, input: DcapInput, col: DcapCollateral, quote: DcapQuote, ext: PckExtensions, claims: DcapClaims): void {
  const tdx = quote.teeType === TEE_TDX;
  const tcbInfo = parseTcbInfo(col.tcbInfo);
  checkSignedJson(c, "tcb-info", col.tcbInfo, col.tcbInfoSignature, col.tcbInfoIssuerChain, input);
  window(c, "tcb-info", tcbInfo.issueDate, tcbInfo.nextUpdate, input.at);
  const idOk = tcbInfo.id === (tdx ? "TDX" : "SGX") || (!tdx && tcbInfo.id === undefined);
  c.require("tcb-info.match", idOk && tcbInfo.fmspc.toLowerCase() === ext.fmspc && tcbInfo.pceId.toLowerCase() === ext.pceId,
    `tcbInfo ${tcbInfo.id} FMSPC ${tcbInfo.fmspc} PCE-ID ${tcbInfo.pceId}; PCK FMSPC ${ext.fmspc} PCE-ID ${ext.pceId}`);

  const qeId = parseQeIdentity(col.qeIdentity);
  checkSignedJson(c, "qe-identity", col.qeIdentity, col.qeIdentitySignature, col.qeIdentityIssuerChain, input);
  window(c, "qe-identity", qeId.issueDate, qeId.nextUpdate, input.at);
  const qe = quote.qeReport;
  const misc = (qe.miscSelect & parseInt(qeId.miscselectMask, 16)) >>> 0 === (parseInt(qeId.miscselect, 16) & parseInt(qeId.miscselectMask, 16)) >>> 0;
  const qeOk = qeId.id === (tdx ? "TD_QE" : "QE") && toHex(qe.mrSigner) === qeId.mrsigner.toLowerCase() && qe.isvProdId === qeId.isvprodid &&
    misc && maskedEqual(qe.attributes, qeId.attributes, qeId.attributesMask);
  c.require("qe-identity.match", qeOk, `QE ${qeId.id}: MRSIGNER ${toHex(qe.mrSigner).slice(0, 16)}…, ISVPRODID ${qe.isvProdId}`);

  const level = matchTcbLevel(tcbInfo, ext.compSvn, ext.pceSvn, tdx ? quote.td!.teeTcbSvn : undefined);
  const qeLevel = matchQeLevel(qeId, qe.isvSvn);
  const platform = level?.tcbStatus ?? "NoMatchingTcbLevel";
  const qeStatus = qeLevel?.tcbStatus ?? "NoMatchingTcbLevel";
  let status = convergeStatus(platform, qeStatus);
  if (tdx) status = convergeStatus(status, checkTdxModule(c, tcbInfo, quote));
  const advisories = [...new Set([...(level?.advisoryIDs ?? []), ...(qeLevel?.advisoryIDs ?? [])])];
  claims.tcbStatus = status;
  claims.advisoryIds = advisories;
  const allowed = input.policy?.allowedStatuses ?? defaultAllowedStatuses;
  c.require("tcb-status", allowed.includes(status), `${status} (platform ${platform}, QE ${qeStatus})${advisories.length ? ` advisories ${advisories.join(",")}` : ""}`);
}
