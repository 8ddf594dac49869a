/**
 * DCAP collateral: TCB info and QE identity (JSON signed by the Intel SGX TCB Signing certificate,
 * ECDSA P-256 over the exact JSON text of the signed object), CRLs, and TCB status evaluation
 * (Intel QVL rules: first matching TCB level, converged with the QE identity TCB status).
 */
import { fromHex, malformed, toHex } from "../bytes.ts";
import { pemBlocks } from "../x509/cert.ts";

export type DcapCollateral = {
  /** The signed JSON text exactly as published (the value of "tcbInfo"). */
  tcbInfo: string;
  tcbInfoSignature: string;
  tcbInfoIssuerChain: string;
  qeIdentity: string;
  qeIdentitySignature: string;
  qeIdentityIssuerChain: string;
  pckCrl: Uint8Array;
  rootCaCrl: Uint8Array;
};

export type TcbLevel = {
  tcb: { sgxtcbcomponents?: { svn: number }[]; pcesvn?: number; tdxtcbcomponents?: { svn: number }[]; isvsvn?: number };
  tcbStatus: string;
  advisoryIDs?: string[];
};

export type TcbInfo = {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  fmspc: string;
  pceId: string;
  tcbLevels: TcbLevel[];
  tdxModule?: { mrsigner: string; attributes: string; attributesMask: string };
  tdxModuleIdentities?: { id: string; mrsigner: string; attributes: string; attributesMask: string; tcbLevels: TcbLevel[] }[];
};

export type QeIdentity = {
  id: string;
  version: number;
  issueDate: string;
  nextUpdate: string;
  miscselect: string;
  miscselectMask: string;
  attributes: string;
  attributesMask: string;
  mrsigner: string;
  isvprodid: number;
  tcbLevels: TcbLevel[];
};

function parseJson<T>(text: string, what: string, required: string[]): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return malformed(`${what} is not JSON`);
  }
  if (typeof v !== "object" || v === null) malformed(`${what} is not an object`);
  for (const k of required) if (!(k in v)) malformed(`${what}: ${k} missing`);
  const levels = (v as { tcbLevels: unknown }).tcbLevels;
  if (!Array.isArray(levels) || levels.length > 256) malformed(`${what}: bad tcbLevels`);
  return v as T;
}

export const parseTcbInfo = (t: string) => parseJson<TcbInfo>(t, "tcbInfo", ["id", "issueDate", "nextUpdate", "fmspc", "pceId", "tcbLevels"]);
export const parseQeIdentity = (t: string) =>
  parseJson<QeIdentity>(t, "QE identity", ["id", "issueDate", "nextUpdate", "miscselect", "miscselectMask", "attributes", "attributesMask", "mrsigner", "isvprodid", "tcbLevels"]);

/**
 * Extracts the exact text of the object under `key` from a PCS response body
 * (`{"tcbInfo":{...},"signature":"..."}`), plus the signature.
 */
export function splitPcsResponse(body: string, key: "tcbInfo" | "enclaveIdentity"): { text: string; signature: string } {
  const start = body.indexOf(`"${key}"`);
  if (start < 0) malformed(`PCS response: no ${key}`);
  const open = body.indexOf("{", start);
  if (open < 0) malformed(`PCS response: ${key} is not an object`);
  let depth = 0;
  let inString = false;
  for (let i = open; i < body.length; i++) {
    const ch = body[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) {
      const sig = /"signature"\s*:\s*"([0-9a-fA-F]+)"/.exec(body.slice(i));
      if (!sig) malformed("PCS response: no signature");
      return { text: body.slice(open, i + 1), signature: sig[1]! };
    }
  }
  return malformed(`PCS response: unterminated ${key}`);
}

/** dcap-qvl / PCS collateral JSON (snake_case keys, hex CRLs). */
export function collateralFromQvlJson(text: string): DcapCollateral {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return malformed("collateral is not JSON");
  }
  const s = (k: string): string => {
    const v = j[k];
    if (typeof v !== "string") malformed(`collateral: ${k} missing`);
    return v;
  };
  return {
    tcbInfo: s("tcb_info"), tcbInfoSignature: s("tcb_info_signature"), tcbInfoIssuerChain: s("tcb_info_issuer_chain"),
    qeIdentity: s("qe_identity"), qeIdentitySignature: s("qe_identity_signature"), qeIdentityIssuerChain: s("qe_identity_issuer_chain"),
    pckCrl: fromHex(s("pck_crl")), rootCaCrl: fromHex(s("root_ca_crl")),
  };
}

export function chainBlocks(pem: string): Uint8Array[] {
  const b = pemBlocks(pem);
  if (b.length === 0) malformed("issuer chain has no certificates");
  return b;
}

/** First TCB level whose components are all ≤ the platform's (Intel QVL getMatchingTcbLevel). */
export function matchTcbLevel(info: TcbInfo, compSvn: number[], pceSvn: number, teeTcbSvn?: Uint8Array): TcbLevel | undefined {
  for (const level of info.tcbLevels) {
    const sgx = level.tcb.sgxtcbcomponents ?? [];
    if (sgx.length !== 16 || level.tcb.pcesvn === undefined) continue;
    if (!sgx.every((c, i) => compSvn[i]! >= c.svn) || pceSvn < level.tcb.pcesvn) continue;
    if (teeTcbSvn) {
      const tdx = level.tcb.tdxtcbcomponents ?? [];
      // For TDX module 1.5+ (tee_tcb_svn[1] > 0) the first two bytes are evaluated via tdxModuleIdentities.
      const start = teeTcbSvn[1]! > 0 ? 2 : 0;
      if (tdx.length !== 16 || !tdx.every((c, i) => i < start || teeTcbSvn[i]! >= c.svn)) continue;
    }
    return level;
  }
  return undefined;
}

export function matchQeLevel(id: QeIdentity, isvSvn: number): TcbLevel | undefined {
  return id.tcbLevels.find((l) => l.tcb.isvsvn !== undefined && isvSvn >= l.tcb.isvsvn);
}

/** Intel QVL convergeTcbStatusWithQeTcbStatus. */
export function convergeStatus(platform: string, qe: string): string {
  if (qe === "Revoked") return "Revoked";
  if (qe === "OutOfDate" || qe === "OutOfDateConfigurationNeeded") {
    if (platform === "UpToDate" || platform === "SWHardeningNeeded") return "OutOfDate";
    if (platform === "ConfigurationNeeded" || platform === "ConfigurationAndSWHardeningNeeded") return "OutOfDateConfigurationNeeded";
  }
  return platform;
}

export function maskedEqual(value: Uint8Array, expectedHex: string, maskHex: string): boolean {
  const e = fromHex(expectedHex), m = fromHex(maskHex);
  if (e.length !== value.length || m.length !== value.length) return false;
  return value.every((b, i) => (b & m[i]!) === (e[i]! & m[i]!));
}

export function u32leHex(n: number): string {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return toHex(b);
}
