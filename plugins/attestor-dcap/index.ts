/**
 * The "dcap" attestor (hub side): an Intel SGX or TDX DCAP quote (v3/v4/v5, ECDSA P-256, embedded
 * PCK chain) verified by attest/dcap/verify.ts to the Intel SGX Root CA; with collateral (TCB info,
 * QE identity, CRLs in dcap-qvl JSON) also the TCB status.
 *
 * Binding: report_data (64 bytes, SGX enclave report or TD report) = sha512(binding message)
 * (plugins/sdk/binding.ts); the verifier's `report-data` check compares it.
 *
 * Agent side (`collect`, inside a TDX guest): Linux configfs-tsm (plugins/attestor-tsm) with provider
 * tdx_guest: inblob = the binding digest, outblob = the DCAP quote (the kernel has the host's QE sign
 * the TD report). Collateral is not fetched on the agent (the hub may require it: requireCollateral).
 * SGX enclaves get quotes from AESM, not configfs-tsm: SGX stays verify-only here.
 *
 * Evidence (CBOR): { quote: bytes, collateral?: string (dcap-qvl collateral JSON) }.
 */
import { z } from "zod";
import { collateralFromQvlJson, type DcapCollateral } from "../../attest/dcap/collateral.ts";
import { TEE_TDX } from "../../attest/dcap/quote.ts";
import { verifyDcapQuote } from "../../attest/dcap/verify.ts";
import type { AttestationResult, Attestor, AttestorComponents, EvidenceBinding } from "../sdk/attestor.ts";
import { bindingDigest512, failedResult, parseEvidenceData, verdictResult } from "../sdk/binding.ts";
import { encodeCbor } from "../sdk/codec.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";
import { tsmReport, type TsmFs } from "../attestor-tsm/report.ts";

export const DCAP_FORMAT = "dcap";

export interface DcapAttestorInit {
  /** Intel SGX Root CA (DER). */
  readonly roots?: readonly Uint8Array[];
  /** TCB statuses accepted (default: attest/dcap defaultAllowedStatuses). */
  readonly allowedStatuses?: readonly string[];
  /** Require collateral (TCB status); default false (quote, QE and PCK chain only). */
  readonly requireCollateral?: boolean;
  /** Agent side: configfs-tsm root (default /sys/kernel/config/tsm) and file operations (tests). */
  readonly tsm?: { readonly root?: string; readonly fs?: TsmFs };
}

const DcapEvidence = z.object({ quote: z.instanceof(Uint8Array), collateral: z.string().optional() });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export async function verifyDcapParts(
  parts: { quote: Uint8Array; collateral?: string },
  opts: { at: Date; roots: readonly Uint8Array[]; reportData?: Uint8Array; allowedStatuses?: readonly string[]; requireCollateral?: boolean },
): Promise<AttestationResult> {
  if (opts.roots.length === 0) return failedResult(DCAP_FORMAT, "roots", "no Intel SGX Root CA configured");
  if (opts.requireCollateral && !parts.collateral) return failedResult(DCAP_FORMAT, "collateral", "collateral required by configuration");
  let collateral: DcapCollateral | undefined;
  try {
    if (parts.collateral) collateral = collateralFromQvlJson(parts.collateral);
  } catch (err) {
    return failedResult(DCAP_FORMAT, "structure", `collateral: ${(err as Error).message}`);
  }
  const v = await verifyDcapQuote({
    quote: parts.quote, roots: [...opts.roots], at: opts.at,
    ...(collateral ? { collateral } : {}),
    ...(opts.reportData ? { reportData: opts.reportData } : {}),
    ...(opts.allowedStatuses ? { policy: { allowedStatuses: [...opts.allowedStatuses] } } : {}),
  });
  return verdictResult(DCAP_FORMAT, v, (cl) => {
    const q = cl.quote;
    const claims: AttestationResult["claims"] = {
      platform: q.teeType === TEE_TDX ? "intel-tdx" : "intel-sgx", "quote.version": q.version, fmspc: cl.pckExtensions.fmspc,
      "tcb.status": cl.tcbStatus ?? "not evaluated (no collateral)", advisories: (cl.advisoryIds ?? []).join(","),
    };
    if (q.sgx) Object.assign(claims, { mrenclave: hex(q.sgx.mrEnclave), mrsigner: hex(q.sgx.mrSigner), "isv.prodid": q.sgx.isvProdId, "isv.svn": q.sgx.isvSvn, measurement: hex(q.sgx.mrEnclave) });
    if (q.td) {
      Object.assign(claims, { mrtd: hex(q.td.mrTd), measurement: hex(q.td.mrTd), mrseam: hex(q.td.mrSeam) });
      q.td.rtmrs.forEach((r, i) => (claims[`rtmr.${i}`] = hex(r)));
    }
    return claims;
  });
}

export function dcapAttestor(init: DcapAttestorInit = {}) {
  return (_components: AttestorComponents): Attestor => ({
    name: "attestor-dcap",
    kind: "attestor",
    apiVersion: PLUGIN_API_VERSION,
    format: DCAP_FORMAT,
    async collect(binding: EvidenceBinding, options: { signal?: AbortSignal } = {}): Promise<Evidence> {
      const r = await tsmReport(bindingDigest512(binding), "tdx_guest", { ...init.tsm, ...(options.signal ? { signal: options.signal } : {}) });
      return { format: DCAP_FORMAT, data: encodeCbor({ quote: r.outblob }) };
    },
    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult> {
      const r = parseEvidenceData(DCAP_FORMAT, evidence.data, DcapEvidence, "{ quote: bytes, collateral?: string }");
      if (!r.ok) return r.result;
      return verifyDcapParts(r.value, {
        at: now, roots: init.roots ?? [], reportData: bindingDigest512(binding),
        ...(init.allowedStatuses ? { allowedStatuses: init.allowedStatuses } : {}), requireCollateral: init.requireCollateral ?? false,
      });
    },
  });
}
