/**
 * Attestation comes in pairs: `collect` runs on the agent and produces
 * evidence bound to a hub nonce and to the key being certified; `verify` runs
 * on the hub and returns a result that names every check it made.
 */
import type { Evidence } from "./wire.ts";
import type { HostComponents, PluginMeta } from "./plugin.ts";

export type { Evidence };

/** What the evidence must be bound to. */
export interface EvidenceBinding {
  /** Fresh hub-issued nonce. */
  nonce: Uint8Array;
  /** The libp2p peer id (string) of the node producing the evidence. */
  peerId: string;
  /** DER SubjectPublicKeyInfo of the key being certified (from the CSR). */
  subjectPublicKey: Uint8Array;
}

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface AttestationResult {
  format: string;
  ok: boolean;
  checks: Check[];
  /** Name of the first failed check, when !ok. */
  failed?: string;
  /** What the evidence proves, flat and printable (platform, measurements, instance id...). */
  claims: Record<string, string | number | boolean>;
}

export interface AttestorComponents extends HostComponents {
  /** The node's persistent Ed25519 identity (agent side only). Never exposes the private key. */
  identity?: NodeIdentity;
}

export interface NodeIdentity {
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/**
 * A hub→agent challenge sent after the evidence verified, for formats whose key trust needs a round
 * trip: TPM credential activation (TPM2_MakeCredential by the hub to the EK for the AK's Name; only
 * the TPM holding both keys recovers the secret with TPM2_ActivateCredential). Sizes are bounded by
 * the wire messages (plugins/sdk/wire.ts JoinActivate).
 */
export interface ActivationChallenge {
  /** TPM2B_ID_OBJECT contents (integrity HMAC + encrypted credential). */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents (seed encrypted to the EK). */
  encryptedSecret: Uint8Array;
}

export interface Attestor extends PluginMeta {
  readonly kind: "attestor";
  /** Evidence format this plugin produces/verifies, e.g. "dev", "tpm2-quote". */
  readonly format: string;
  /** Agent side. Absent on verify-only plugins. */
  collect?(binding: EvidenceBinding, options?: { signal?: AbortSignal }): Promise<Evidence>;
  /** Hub side. Absent on collect-only plugins. `now` is the verification time. */
  verify?(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult>;
  /**
   * Hub side, optional: build an activation challenge for evidence that `verify` accepted. Returns
   * the challenge to send and the secret the agent must give back; the host keeps the secret,
   * compares the answer in constant time, and issues nothing unless it matches. Called only when the
   * hub's policy asks for activation (tpm2-quote with EK trust).
   */
  challenge?(evidence: Evidence): Promise<{ challenge: ActivationChallenge; secret: Uint8Array }>;
  /** Agent side, optional: answer a challenge with the recovered secret (TPM2_ActivateCredential). */
  activate?(challenge: ActivationChallenge, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

export type AttestorFactory = (components: AttestorComponents) => Attestor;
