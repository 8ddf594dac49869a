/**
 * The agent's key hierarchy: an EK from the TCG default template in the endorsement hierarchy (the
 * same key on every CreatePrimary, so the hub can pin its public part) and an AK created as its
 * child — exactly what `tpm2_createek` + `tpm2_createak` make. The EK authorizes its use with
 * PolicySecret(endorsement), so Create and Load run inside a policy session.
 */
import { akTemplate, ekTemplate, type KeyAlg } from "./public.ts";
import { TPM_RH } from "./spec.ts";
import type { CallOptions, LoadedObject, Tpm } from "./tpm.ts";

export function createEk(tpm: Tpm, alg: KeyAlg, options?: CallOptions): Promise<LoadedObject> {
  return tpm.createPrimary(TPM_RH.ENDORSEMENT, ekTemplate(alg), options);
}

export interface CreatedAk extends LoadedObject {
  /** TPM2B_PRIVATE contents: lets the agent reload the same AK later (under the same EK). */
  readonly privateBlob: Uint8Array;
}

export async function createAk(tpm: Tpm, ek: LoadedObject, alg: KeyAlg, options?: CallOptions): Promise<CreatedAk> {
  const created = await tpm.withEndorsementPolicy((s) => tpm.create(ek.handle, s, akTemplate(alg), options), options);
  const loaded = await loadAk(tpm, ek, created.privateBlob, created.publicArea, options);
  return { ...loaded, privateBlob: created.privateBlob };
}

export function loadAk(tpm: Tpm, ek: LoadedObject, privateBlob: Uint8Array, publicArea: Uint8Array, options?: CallOptions): Promise<LoadedObject> {
  return tpm.withEndorsementPolicy((s) => tpm.load(ek.handle, s, privateBlob, publicArea, options), options);
}
