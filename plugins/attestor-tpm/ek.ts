/**
 * The EK side of tpm2-quote evidence: the agent reads its EK (persistent handle if the TPM was
 * provisioned, otherwise the TCG default template as a primary — the same key either way on a
 * provisioned TPM) and the EK certificate from NV if the manufacturer stored one; the hub checks
 * the EK (attributes, optional certificate chain to `ekRoots`) and, when its policy trusts the EK
 * rather than the AK, seals a secret to the EK for the AK's Name (credential activation).
 *
 * What activation proves: TPM2_ActivateCredential releases the secret only inside the TPM that holds
 * the EK's private key, and only if an object with exactly the quoted AK's Name (its public area,
 * attributes included: fixedTPM, restricted, sign) is loaded there. So a quote verified with that AK
 * comes from the TPM whose EK the policy trusts.
 */
import { createPublicKey, randomBytes } from "node:crypto";
import { verifyChain } from "../../attest/x509/chain.ts";
import { parseCertificate } from "../../attest/x509/cert.ts";
import type { Check } from "../sdk/attestor.ts";
import { makeCredential } from "./credential.ts";
import { TpmError } from "./errors.ts";
import { createEk } from "./keys.ts";
import { fromTpm2bPublic, objectName, parsePublic, publicKeyObject, type KeyAlg } from "./public.ts";
import { TPMA_OBJECT as A, TPM_NV_EK_CERT } from "./spec.ts";
import type { CallOptions, LoadedObject, Tpm } from "./tpm.ts";

/** TCG provisioning guidance: persistent handles of the RSA / ECC EK. */
export const ekPersistentHandle = { rsa: 0x81010001, ecc: 0x81010002 } as const;
/** Secret sealed in an activation challenge (TPM2B_DIGEST of the EK's nameAlg, SHA-256). */
export const activationSecretBytes = 32;
/** Attributes every EK (TCG default templates) has: a restricted decryption key bound to its TPM. */
const ekRequiredAttributes = A.fixedTPM | A.fixedParent | A.restricted | A.decrypt;

export interface LoadedEk extends LoadedObject {
  /** True when created here (CreatePrimary) and therefore to be flushed. */
  readonly transient: boolean;
}

/** The EK: the persistent one when present and of the wanted type, otherwise CreatePrimary(default template). */
export async function loadEk(tpm: Tpm, alg: KeyAlg, options?: CallOptions): Promise<LoadedEk> {
  try {
    const persisted = await tpm.readPublic(ekPersistentHandle[alg], options);
    if (parsePublic(persisted.publicArea).type === alg) return { ...persisted, transient: false };
  } catch (err) {
    if (!(err instanceof TpmError && err.kind === "response-code")) throw err;
  }
  return { ...(await createEk(tpm, alg, options)), transient: true };
}

/** The EK certificate from its NV index, or undefined when the TPM has none. */
export async function readEkCert(tpm: Tpm, alg: KeyAlg, options?: CallOptions): Promise<Uint8Array | undefined> {
  try {
    return await tpm.nvRead(TPM_NV_EK_CERT[alg], options);
  } catch (err) {
    if (err instanceof TpmError && err.kind === "response-code") return undefined;
    throw err;
  }
}

/** EK TPM Name (hex) of a TPM2B_PUBLIC. */
export function ekNameOf(ekPublic: Uint8Array): string {
  return Buffer.from(objectName(fromTpm2bPublic(ekPublic))).toString("hex");
}

export type EkVerdict = { checks: Check[]; claims: Record<string, string> };

/**
 * Hub-side EK checks (named `ek.*`): the public area parses and has EK attributes; with `roots` and a
 * certificate, the certificate chains to them at `at` (`ek.cert.<check>`) and certifies this very
 * key (`ek.binding`). Claims: `ek.name`, `ek.trust` = certificate | key, `ek.subject`.
 */
export async function verifyEk(ekPublic: Uint8Array, ekCert: Uint8Array | undefined, roots: readonly Uint8Array[] | undefined, at: Date): Promise<EkVerdict> {
  const checks: Check[] = [];
  const claims: Record<string, string> = {};
  let area: Uint8Array;
  try {
    area = fromTpm2bPublic(ekPublic);
    const p = parsePublic(area);
    const ok = (p.attributes & ekRequiredAttributes) === ekRequiredAttributes && (p.attributes & A.sign) === 0;
    checks.push({ name: "ek.attributes", ok, detail: `0x${p.attributes.toString(16).padStart(8, "0")}${ok ? "" : " — an EK is a fixedTPM restricted decryption key"}` });
    if (!ok) return { checks, claims };
  } catch (err) {
    checks.push({ name: "ek.structure", ok: false, detail: (err as Error).message });
    return { checks, claims };
  }
  claims["ek.name"] = Buffer.from(objectName(area)).toString("hex");
  claims["ek.trust"] = "key";
  if (!ekCert || !roots?.length) return { checks, claims };
  const chain = await verifyChain({ leaf: ekCert, roots: [...roots], at });
  for (const c of chain.checks) checks.push({ ...c, name: `ek.cert.${c.name}` });
  if (!chain.ok) return { checks, claims };
  let bound = false;
  try {
    const certKey = createPublicKey({ key: Buffer.from(parseCertificate(ekCert).spki), format: "der", type: "spki" });
    bound = certKey.equals(publicKeyObject(area));
  } catch {
    bound = false;
  }
  checks.push({ name: "ek.binding", ok: bound, detail: bound ? "EK certificate certifies the EK in the evidence" : "EK certificate is for another key" });
  if (bound) {
    claims["ek.trust"] = "certificate";
    claims["ek.subject"] = String(chain.claims.path[0]?.subject ?? "").slice(0, 256) || "(empty subject)";
  }
  return { checks, claims };
}

/** Hub side: seal a fresh secret to the EK for the AK's Name (software TPM2_MakeCredential). */
export function ekChallenge(ekPublic: Uint8Array, akPublic: Uint8Array, random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))) {
  const secret = random(activationSecretBytes);
  const made = makeCredential(fromTpm2bPublic(ekPublic), objectName(fromTpm2bPublic(akPublic)), secret, { randomBytes: random });
  return { challenge: { credentialBlob: made.idObject, encryptedSecret: made.encryptedSecret }, secret };
}
