/**
 * The on-prem node key held in a TPM 2.0 (our own client, plugins/attestor-tpm): an unrestricted
 * ECDSA P-256/SHA-256 signing key that never leaves the TPM.
 *
 * Which key:
 *   - default: a primary key in the storage (owner) hierarchy from a fixed template whose `unique`
 *     field is SHA-256("grey-onprem-key/v1\0" || label). Primary keys are derived from the hierarchy
 *     seed and the template, so the same TPM gives the same key on every TPM2_CreatePrimary — nothing
 *     to store on disk, and the enterprise certificate stays valid until the owner hierarchy is
 *     cleared (TPM2_Clear: a new seed, a new key; connector health then reports the mismatch).
 *   - `handle`: a persistent key (0x81xxxxxx) an operator provisioned (e.g. tpm2_create +
 *     tpm2_evictcontrol); it must be an unrestricted ECC P-256 signing key with the ECDSA/SHA-256
 *     scheme and an empty auth value.
 *
 * Signing: the message is hashed in software (SHA-256) and the digest signed with TPM2_Sign and a
 * NULL hashcheck ticket (allowed for unrestricted keys). The signature is returned as raw r || s.
 */
import { createHash } from "node:crypto";
import { parseTpmSpec } from "../attestor-tpm/attestor.ts";
import { tpmReadTimeoutMsDefault } from "../attestor-tpm/constants.ts";
import { TpmWriter } from "../attestor-tpm/marshal.ts";
import { leftPad, parsePublic, publicKeyObject } from "../attestor-tpm/public.ts";
import { TPMA_OBJECT as A, TPM_ALG, TPM_ECC_NIST_P256, TPM_RH } from "../attestor-tpm/spec.ts";
import { Tpm, type CallOptions, type LoadedObject } from "../attestor-tpm/tpm.ts";
import { deviceTransport, tcpTransport } from "../attestor-tpm/transport.ts";

export interface TpmKeyConfig {
  /** "swtpm:HOST:PORT" (swtpm's TCP command channel) or a device path (/dev/tpmrm0). */
  tpm: string;
  /** A persistent key handle (0x81000000–0x81ffffff) instead of the derived primary key. */
  handle?: number;
  /** Distinguishes derived keys on one TPM (default "grey-onprem"). */
  label?: string;
  readTimeoutMs?: number;
}

export const tpmKeyLabelDefault = "grey-onprem";
const UNIQUE_DOMAIN = "grey-onprem-key/v1\0";

/** 0x00040472: fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA | sign. */
export const tpmSigningKeyAttributes = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.sign;

/** TPMT_PUBLIC of the derived key: ECC P-256, unrestricted signing, ECDSA/SHA-256, unique from the label. */
export function tpmSigningKeyTemplate(label = tpmKeyLabelDefault): Uint8Array {
  const unique = new Uint8Array(createHash("sha256").update(UNIQUE_DOMAIN + label).digest());
  const w = new TpmWriter(256);
  w.u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(tpmSigningKeyAttributes).tpm2b(); // empty authPolicy
  w.u16(TPM_ALG.NULL); // symmetric
  w.u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).u16(TPM_ECC_NIST_P256).u16(TPM_ALG.NULL); // scheme, curve, kdf
  w.tpm2b(unique).tpm2b(); // unique: x = H(label), y empty
  return w.finish();
}

/** Run `use` with a started TPM and the key available; a derived key is flushed afterwards, the TPM closed. */
export async function withTpmKey<T>(cfg: TpmKeyConfig, use: (tpm: Tpm, key: LoadedObject) => Promise<T>, options: CallOptions = {}): Promise<T> {
  const t = parseTpmSpec(cfg.tpm);
  const transport = t.kind === "tcp" ? tcpTransport({ host: t.host, port: t.port }) : deviceTransport({ path: t.path });
  const tpm = new Tpm({ transport, readTimeoutMs: cfg.readTimeoutMs ?? tpmReadTimeoutMsDefault });
  try {
    await tpm.ensureStarted(options);
    if (cfg.handle !== undefined) {
      const key = await tpm.readPublic(cfg.handle, options);
      checkSigningKey(key.publicArea);
      return await use(tpm, key);
    }
    const key = await tpm.createPrimary(TPM_RH.OWNER, tpmSigningKeyTemplate(cfg.label), options);
    try {
      return await use(tpm, key);
    } finally {
      await tpm.flushContext(key.handle, options).catch(() => {});
    }
  } finally {
    await tpm.close();
  }
}

function checkSigningKey(publicArea: Uint8Array): void {
  const p = parsePublic(publicArea);
  const ok = p.type === "ecc" && p.ecc?.curve === TPM_ECC_NIST_P256 && (p.attributes & A.sign) !== 0 && (p.attributes & A.restricted) === 0
    && p.scheme.alg === TPM_ALG.ECDSA && p.scheme.hashAlg === TPM_ALG.SHA256;
  if (!ok) throw new Error("the TPM key is not an unrestricted ECC P-256 signing key with the ECDSA/SHA-256 scheme");
}

/** DER SubjectPublicKeyInfo of a TPM key's public area (what the enterprise CA certifies). */
export function tpmKeySpki(publicArea: Uint8Array): Uint8Array {
  return new Uint8Array(publicKeyObject(publicArea).export({ type: "spki", format: "der" }));
}

/** The key's public part as DER SPKI. */
export function tpmPublicKey(cfg: TpmKeyConfig, options?: CallOptions): Promise<Uint8Array> {
  return withTpmKey(cfg, async (_tpm, key) => tpmKeySpki(key.publicArea), options);
}

/** ECDSA P-256 over SHA-256(data) inside the TPM; raw r || s (64 bytes). */
export function tpmSignEcdsa(cfg: TpmKeyConfig, data: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
  const digest = new Uint8Array(createHash("sha256").update(data).digest());
  return withTpmKey(cfg, async (tpm, key) => {
    const sig = await tpm.sign(key.handle, digest, undefined, options);
    if (!sig.ecdsa || sig.hashAlg !== TPM_ALG.SHA256) throw new Error(`TPM2_Sign returned algorithm 0x${sig.sigAlg.toString(16)}/0x${sig.hashAlg.toString(16)}, expected ECDSA/SHA-256`);
    const out = new Uint8Array(64);
    out.set(leftPad(sig.ecdsa.r, 32), 0);
    out.set(leftPad(sig.ecdsa.s, 32), 32);
    return out;
  }, options);
}
