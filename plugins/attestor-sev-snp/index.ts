/**
 * The "sev-snp" attestor: an AMD SEV-SNP attestation report with its VCEK, verified on the hub by
 * attest/sev-snp/report.ts against the configured ASK/ARK (AMD's product root, e.g. Milan).
 *
 * Binding: the guest requests the report with report_data = sha512(binding message), all 64 bytes
 * (plugins/sdk/binding.ts); the verifier's `report-data` check compares it.
 *
 * Agent side (`collect`, inside an SNP guest): Linux configfs-tsm (plugins/attestor-tsm): inblob =
 * the binding digest, outblob = the report, auxblob = the host's certificate table, from which the
 * VCEK (or VLEK) is taken. A host that supplies no certificates leaves the agent without a VCEK:
 * collect then fails (`tsm`) rather than send evidence the hub cannot check; AMD KDS is not fetched.
 *
 * Evidence (CBOR): { report: bytes (0x4a0), vcek: bytes (DER) }.
 */
import { z } from "zod";
import { verifySnpReport } from "../../attest/sev-snp/report.ts";
import type { AttestationResult, Attestor, AttestorComponents, EvidenceBinding } from "../sdk/attestor.ts";
import { bindingDigest512, failedResult, parseEvidenceData, verdictResult } from "../sdk/binding.ts";
import { encodeCbor } from "../sdk/codec.ts";
import { AttestationError } from "../sdk/errors.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";
import { parseSnpCertTable, SNP_CERT_GUIDS, tsmReport, type TsmFs } from "../attestor-tsm/report.ts";

export const SNP_FORMAT = "sev-snp";

export interface SnpAttestorInit {
  /** AMD ASK then ARK (DER), as in AMD's ask_ark_<product>.pem. */
  readonly roots?: readonly Uint8Array[];
  readonly allowDebug?: boolean;
  /** Agent side: configfs-tsm root (default /sys/kernel/config/tsm) and file operations (tests). */
  readonly tsm?: { readonly root?: string; readonly fs?: TsmFs };
}

const SnpEvidence = z.object({ report: z.instanceof(Uint8Array), vcek: z.instanceof(Uint8Array) });

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export async function verifySnpParts(
  parts: { report: Uint8Array; vcek: Uint8Array },
  opts: { at: Date; roots: readonly Uint8Array[]; reportData?: Uint8Array; allowDebug?: boolean },
): Promise<AttestationResult> {
  const [ask, ark] = opts.roots;
  if (!ask || !ark) return failedResult(SNP_FORMAT, "roots", "ASK and ARK must be configured (ask_ark_<product>.pem: ASK first, then ARK)");
  const v = await verifySnpReport({
    report: parts.report, vcek: parts.vcek, ask, ark, at: opts.at,
    ...(opts.reportData ? { reportData: opts.reportData } : {}),
    policy: { allowDebug: opts.allowDebug ?? false },
  });
  return verdictResult(SNP_FORMAT, v, (cl) => {
    const r = cl.report;
    return {
      platform: "amd-sev-snp", measurement: hex(r.measurement), "report.version": r.version, "guest.svn": r.guestSvn,
      policy: r.policy.toString(16), vmpl: r.vmpl, "host.data": hex(r.hostData), "chip.id": hex(r.chipId),
      "tcb.bootloader": r.reportedTcb.bootloader, "tcb.tee": r.reportedTcb.tee, "tcb.snp": r.reportedTcb.snp, "tcb.microcode": r.reportedTcb.microcode,
      ...(cl.productName ? { product: cl.productName } : {}),
    };
  });
}

export function snpAttestor(init: SnpAttestorInit = {}) {
  return (_components: AttestorComponents): Attestor => ({
    name: "attestor-sev-snp",
    kind: "attestor",
    apiVersion: PLUGIN_API_VERSION,
    format: SNP_FORMAT,
    async collect(binding: EvidenceBinding, options: { signal?: AbortSignal } = {}): Promise<Evidence> {
      const r = await tsmReport(bindingDigest512(binding), "sev_guest", { ...init.tsm, aux: true, ...(options.signal ? { signal: options.signal } : {}) });
      const certs = r.auxblob ? parseSnpCertTable(r.auxblob) : new Map<string, Uint8Array>();
      const vcek = certs.get(SNP_CERT_GUIDS.vcek) ?? certs.get(SNP_CERT_GUIDS.vlek);
      if (!vcek) throw new AttestationError("tsm", "the SNP host supplied no VCEK/VLEK in the report's certificate table (auxblob): the hub could not check the report");
      return { format: SNP_FORMAT, data: encodeCbor({ report: r.outblob, vcek }) };
    },
    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult> {
      const r = parseEvidenceData(SNP_FORMAT, evidence.data, SnpEvidence, "{ report: bytes, vcek: bytes }");
      if (!r.ok) return r.result;
      return verifySnpParts(r.value, { at: now, roots: init.roots ?? [], reportData: bindingDigest512(binding), allowDebug: init.allowDebug ?? false });
    },
  });
}
