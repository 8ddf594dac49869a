/**
 * The "nitro-enclave" attestor (hub side): an AWS Nitro Enclaves attestation document (COSE_Sign1,
 * ES384, certificate chain to the AWS Nitro root) verified by attest/nitro/document.ts.
 *
 * Binding: the enclave asks the NSM for a document with `nonce` = sha256(binding message)
 * (plugins/sdk/binding.ts); the verifier's `nonce` check compares it. Verify-only: inside an
 * enclave the document comes from /dev/nsm through an ioctl (NSM_IOCTL_REQUEST, a CBOR request and
 * response in iovecs), and Bun has no ioctl API (bun:ffi could call libc's ioctl, but only where a
 * loadable libc exists in the enclave image, which the single-file agent does not assume; not
 * attempted). configfs-tsm has no Nitro provider. A helper inside the enclave that issues the ioctl
 * and hands the document to the agent would add `collect`.
 *
 * Evidence (CBOR in Evidence.data): { document: bytes }.
 */
import { z } from "zod";
import { verifyNitroDocument } from "../../attest/nitro/document.ts";
import type { AttestationResult, Attestor, AttestorComponents, EvidenceBinding } from "../sdk/attestor.ts";
import { bindingDigest256, failedResult, verdictResult } from "../sdk/binding.ts";
import { decodeCbor } from "../sdk/codec.ts";
import { evidenceBytesMax } from "../sdk/limits.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";

export const NITRO_FORMAT = "nitro-enclave";

export interface NitroAttestorInit {
  /** Trust roots (DER): the AWS Nitro Enclaves root G1. */
  readonly roots?: readonly Uint8Array[];
  /** Accept debug-mode enclaves (PCR0-2 zero). Default false. */
  readonly allowDebug?: boolean;
}

const NitroEvidence = z.object({ document: z.instanceof(Uint8Array) });

export async function verifyNitroParts(
  parts: { document: Uint8Array },
  opts: { at: Date; roots: readonly Uint8Array[]; nonce?: Uint8Array; allowDebug?: boolean },
): Promise<AttestationResult> {
  if (opts.roots.length === 0) return failedResult(NITRO_FORMAT, "roots", "no AWS Nitro root configured");
  const v = await verifyNitroDocument({
    document: parts.document, roots: [...opts.roots], at: opts.at,
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
    policy: { allowDebug: opts.allowDebug ?? false },
  });
  return verdictResult(NITRO_FORMAT, v, (cl) => {
    const d = cl.document;
    const claims: AttestationResult["claims"] = {
      platform: "aws-nitro-enclave", "module.id": d.moduleId, digest: d.digest, timestamp: d.timestamp.toISOString(), debug: cl.debug,
    };
    for (const [i, val] of d.pcrs) claims[`pcr.${d.digest.toLowerCase()}.${i}`] = Buffer.from(val).toString("hex");
    return claims;
  });
}

export function nitroAttestor(init: NitroAttestorInit = {}) {
  return (_components: AttestorComponents): Attestor => ({
    name: "attestor-nitro",
    kind: "attestor",
    apiVersion: PLUGIN_API_VERSION,
    format: NITRO_FORMAT,
    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult> {
      const r = NitroEvidence.safeParse(safeDecode(evidence.data));
      if (!r.success) return failedResult(NITRO_FORMAT, "structure", "evidence is not { document: bytes }");
      return verifyNitroParts(r.data, { at: now, roots: init.roots ?? [], nonce: bindingDigest256(binding), allowDebug: init.allowDebug ?? false });
    },
  });
}

function safeDecode(data: Uint8Array): unknown {
  try {
    return decodeCbor(data, evidenceBytesMax);
  } catch {
    return undefined;
  }
}
