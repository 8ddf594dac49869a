/** Every built-in verifier, configured from the policy's hub-wide verifier settings. */
import { dcapAttestor } from "../../plugins/attestor-dcap/index.ts";
import { awsIidAttestor, azureImdsAttestor, gcpIitAttestor } from "../../plugins/attestor-iid/index.ts";
import type { Jwk } from "../../attest/iid/gcp.ts";
import { nitroAttestor } from "../../plugins/attestor-nitro/index.ts";
import { snpAttestor } from "../../plugins/attestor-sev-snp/index.ts";
import { tpmQuoteAttestor } from "../../plugins/attestor-tpm/attestor.ts";
import type { AttestorFactory } from "../../plugins/sdk/attestor.ts";
import type { VerifierSettings } from "./parse.ts";

export function policyAttestors(v: VerifierSettings = {}): AttestorFactory[] {
  const tpm = v["tpm2-quote"];
  return [
    tpmQuoteAttestor({ ...(tpm?.akRoots ? { akRoots: tpm.akRoots } : {}), ...(tpm?.ekRoots ? { ekRoots: tpm.ekRoots } : {}), allowSha1: tpm?.allowSha1 ?? false }),
    nitroAttestor(v["nitro-enclave"] ?? {}),
    snpAttestor(v["sev-snp"] ?? {}),
    dcapAttestor(v.dcap ? { roots: v.dcap.roots, ...(v.dcap.tcbStatuses ? { allowedStatuses: v.dcap.tcbStatuses } : {}), requireCollateral: v.dcap.requireCollateral ?? false } : {}),
    awsIidAttestor(v["aws-iid"] ?? {}),
    gcpIitAttestor(v["gcp-iit"] ? { jwks: v["gcp-iit"].jwks as { keys: Jwk[] } } : {}),
    azureImdsAttestor(v["azure-imds"] ?? {}),
  ];
}
