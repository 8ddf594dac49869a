/**
 * The "tpm2-quote" attestor in the host's contract: `tpmQuoteAttestor(init)(components)`.
 *
 * Agent side (`collect`): opens the TPM for one quote (swtpm's TCP channel or /dev/tpmrm0 — never
 * held open between quotes, so other TPM users are not locked out), loads the AK and quotes the
 * configured SHA-256 PCRs with extraData = sha256(binding message) (plugins/sdk/binding.ts).
 *
 * The AK is a *primary* restricted signing key in the endorsement hierarchy (the `akTemplate`):
 * CreatePrimary is deterministic for a given TPM, so the same TPM always presents the same AK and
 * the hub can pin it by its TPM Name in its attestation policy. Nothing here trusts an AK on first
 * use. The evidence also carries the EK public area (and the EK certificate from NV when the TPM has
 * one), so a hub that trusts EKs instead of AKs can prove the AK lives in that TPM by credential
 * activation at join (`challenge` on the hub, `activate` on the agent; see ek.ts).
 *
 * Hub side (`verify`): attest/tpm2/quote.ts with the AK from the evidence, the binding digest as the
 * expected nonce; claims carry the AK name, the EK name/trust and every quoted PCR for the policy.
 */
import { z } from "zod";
import { verifyTpmQuote, type AkTrust } from "../../attest/tpm2/quote.ts";
import { parseTpmsAttest } from "../../attest/tpm2/structures.ts";
import type { ActivationChallenge, AttestationResult, Attestor, AttestorComponents, EvidenceBinding } from "../sdk/attestor.ts";
import { bindingDigest256, failedResult, verdictResult } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import { ConfigError } from "../sdk/errors.ts";
import { evidenceBytesMax } from "../sdk/limits.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";
import { pcrCount, quotePcrsDefault, tpmReadTimeoutMsDefault } from "./constants.ts";
import { akTemplate, fromTpm2bPublic, objectName, publicKeyPem, toTpm2bPublic, type KeyAlg } from "./public.ts";
import { ekChallenge, ekNameOf, loadEk, readEkCert, verifyEk, type LoadedEk } from "./ek.ts";
import { collectQuote } from "./quote.ts";
import { TPM_RH } from "./spec.ts";
import { Tpm, type CallOptions, type LoadedObject } from "./tpm.ts";
import { deviceTransport, tcpTransport, type TpmTransport } from "./transport.ts";

export const TPM_QUOTE_FORMAT = "tpm2-quote";

export interface TpmQuoteAttestorInit {
  /** Agent side: "swtpm:HOST:PORT" (swtpm's TCP command channel) or a device path (default /dev/tpmrm0). */
  readonly tpm?: string;
  readonly akAlg?: KeyAlg;
  /** Agent side: the EK presented with the quote and used for credential activation (default "rsa", the EK TPMs certify most). */
  readonly ekAlg?: KeyAlg;
  /** SHA-256 PCRs to quote. */
  readonly pcrs?: readonly number[];
  readonly readTimeoutMs?: number;
  /** Hub side: roots (DER) for AK certificates; evidence carrying `akCert` is then checked against them. */
  readonly akRoots?: readonly Uint8Array[];
  /** Hub side: roots (DER) for EK certificates (TPM manufacturer CAs); evidence carrying `ekCert` is then checked against them. */
  readonly ekRoots?: readonly Uint8Array[];
  /** Hub side: accept SHA-1 signatures / PCR banks (default false). */
  readonly allowSha1?: boolean;
}

/** Wire shape of the evidence (CBOR map in Evidence.data). */
const TpmQuoteEvidence = z.object({
  attest: z.instanceof(Uint8Array),
  signature: z.instanceof(Uint8Array),
  /** TPM2B_PUBLIC of the AK. */
  akPublic: z.instanceof(Uint8Array),
  /** Optional AK certificate (DER) and intermediates. */
  akCert: z.instanceof(Uint8Array).optional(),
  akIntermediates: z.array(z.instanceof(Uint8Array)).max(4).optional(),
  /** TPM2B_PUBLIC of the EK and its certificate from NV (absent from agents older than EK activation). */
  ekPublic: z.instanceof(Uint8Array).optional(),
  ekCert: z.instanceof(Uint8Array).optional(),
  pcrHash: z.enum(["sha1", "sha256", "sha384", "sha512"]),
  /** PCR index (decimal string) → value. */
  pcrs: z.record(z.string().regex(/^\d{1,2}$/), z.instanceof(Uint8Array)),
});
export type TpmQuoteParts = z.infer<typeof TpmQuoteEvidence>;

/** Parse a transport spec: "swtpm:HOST:PORT" or an absolute device path. */
export function parseTpmSpec(spec: string): { kind: "tcp"; host: string; port: number } | { kind: "device"; path: string } {
  const m = /^swtpm:(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  if (m) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw new ConfigError([`--tpm: port ${port} out of range`]);
    return { kind: "tcp", host: (m[1] ?? m[2])!, port };
  }
  if (spec.startsWith("/")) return { kind: "device", path: spec };
  throw new ConfigError([`--tpm: "${spec}" is neither swtpm:HOST:PORT nor a device path like /dev/tpmrm0`]);
}

function openTransport(spec: string): TpmTransport {
  const t = parseTpmSpec(spec);
  return t.kind === "tcp" ? tcpTransport({ host: t.host, port: t.port }) : deviceTransport({ path: t.path });
}

/** Run `use` with a started TPM and the (primary, deterministic) AK loaded; always flushes and closes. */
export async function withAk<T>(spec: string, init: Pick<TpmQuoteAttestorInit, "akAlg" | "readTimeoutMs">, use: (tpm: Tpm, ak: LoadedObject) => Promise<T>, options: CallOptions = {}): Promise<T> {
  return withTpm(spec, init, async (tpm) => {
    const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, akTemplate(init.akAlg ?? "ecc"), options);
    try {
      return await use(tpm, ak);
    } finally {
      await tpm.flushContext(ak.handle, options).catch(() => {});
    }
  }, options);
}

/** Run `use` with a started TPM; always closes. */
async function withTpm<T>(spec: string, init: Pick<TpmQuoteAttestorInit, "readTimeoutMs">, use: (tpm: Tpm) => Promise<T>, options: CallOptions = {}): Promise<T> {
  const tpm = new Tpm({ transport: openTransport(spec), readTimeoutMs: init.readTimeoutMs ?? tpmReadTimeoutMsDefault });
  try {
    await tpm.ensureStarted(options);
    return await use(tpm);
  } finally {
    await tpm.close();
  }
}

/** Run `use` with the EK loaded (flushed afterwards when it was created here). */
async function withEk<T>(tpm: Tpm, alg: KeyAlg, use: (ek: LoadedEk) => Promise<T>, options: CallOptions = {}): Promise<T> {
  const ek = await loadEk(tpm, alg, options);
  try {
    return await use(ek);
  } finally {
    if (ek.transient) await tpm.flushContext(ek.handle, options).catch(() => {});
  }
}

/** The EK an operator pins in the hub policy (ekNames): its TPM Name (hex), SPKI PEM, and whether NV holds a certificate. */
export function readEk(spec: string, init: Pick<TpmQuoteAttestorInit, "ekAlg" | "readTimeoutMs"> = {}, options: CallOptions = {}): Promise<{ name: string; pem: string; certificate: boolean }> {
  const alg = init.ekAlg ?? "rsa";
  return withTpm(spec, init, (tpm) => withEk(tpm, alg, async (ek) => ({
    name: Buffer.from(objectName(ek.publicArea)).toString("hex"),
    pem: publicKeyPem(ek.publicArea),
    certificate: (await readEkCert(tpm, alg, options)) !== undefined,
  }), options), options);
}

/** The AK an operator pins in the hub policy: its TPM Name (hex) and SPKI PEM. */
export function readAk(spec: string, init: Pick<TpmQuoteAttestorInit, "akAlg" | "readTimeoutMs"> = {}, options: CallOptions = {}): Promise<{ name: string; pem: string }> {
  return withAk(spec, init, async (_tpm, ak) => ({ name: Buffer.from(objectName(ak.publicArea)).toString("hex"), pem: publicKeyPem(ak.publicArea) }), options);
}

export function decodeTpmQuoteEvidence(data: Uint8Array): TpmQuoteParts {
  const r = TpmQuoteEvidence.safeParse(decodeCbor(data, evidenceBytesMax));
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  return r.data;
}

/**
 * Verify quote parts. `nonce`: the expected extraData (the binding digest on the hub; raw bytes from
 * the CLI), or undefined to report the extraData without checking it.
 */
export async function verifyTpmQuoteParts(parts: TpmQuoteParts, opts: { at: Date; nonce?: Uint8Array; akRoots?: readonly Uint8Array[]; ekRoots?: readonly Uint8Array[]; allowSha1?: boolean }): Promise<AttestationResult> {
  let akPublicArea: Uint8Array;
  let akName: string;
  try {
    akPublicArea = fromTpm2bPublic(parts.akPublic);
    akName = Buffer.from(objectName(akPublicArea)).toString("hex");
  } catch (err) {
    return failedResult(TPM_QUOTE_FORMAT, "structure", `AK public: ${(err as Error).message}`);
  }
  const ak: AkTrust = parts.akCert && opts.akRoots?.length
    ? { kind: "cert", cert: parts.akCert, intermediates: parts.akIntermediates ?? [], roots: [...opts.akRoots], tpmtPublic: akPublicArea }
    : { kind: "key", tpm2bPublic: parts.akPublic };
  const values: Record<number, Uint8Array> = {};
  for (const [k, v] of Object.entries(parts.pcrs)) values[Number(k)] = v;
  let nonce = opts.nonce;
  let unchecked = false;
  if (!nonce) {
    // no expectation: let the verifier see its own extraData, and say so in the check
    try {
      nonce = parseTpmsAttest(parts.attest).extraData;
      unchecked = true;
    } catch {
      nonce = new Uint8Array();
    }
  }
  const v = await verifyTpmQuote({
    attest: parts.attest, signature: parts.signature, ak, pcrs: [{ hash: parts.pcrHash, values }], nonce, at: opts.at,
    policy: { allowSha1: opts.allowSha1 ?? false },
  });
  if (unchecked) for (const c of v.checks) if (c.name === "nonce") c.detail = `not checked (no nonce given): ${c.detail ?? ""}`;
  const ek = parts.ekPublic ? await verifyEk(parts.ekPublic, parts.ekCert, opts.ekRoots, opts.at) : { checks: [], claims: {} };
  return verdictResult(TPM_QUOTE_FORMAT, v, (cl) => {
    const claims: AttestationResult["claims"] = {
      platform: "tpm2", "ak.name": akName, "ak.trust": ak.kind === "cert" ? "certificate" : "key",
      "tpm.firmware": cl.attest.firmwareVersion.toString(16), "tpm.clock": Number(cl.attest.clock),
      "tpm.resets": cl.attest.resetCount, "pcr.bank": parts.pcrHash,
    };
    for (const bank of cl.pcrs) for (const [i, val] of Object.entries(bank.values)) claims[`pcr.${bank.hash}.${i}`] = Buffer.from(val).toString("hex");
    if (cl.akCert) claims["ak.subject"] = String(cl.akCert.subject).slice(0, 256);
    return { ...claims, ...ek.claims };
  }, ek.checks);
}

function resolveInit(init: TpmQuoteAttestorInit): { pcrs: number[] } {
  const problems: string[] = [];
  const pcrs = [...(init.pcrs ?? quotePcrsDefault)];
  if (pcrs.length === 0) problems.push("pcrs: must not be empty");
  pcrs.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= pcrCount) problems.push(`pcrs[${i}]: must be 0..${pcrCount - 1}`);
  });
  if (init.akAlg !== undefined && init.akAlg !== "ecc" && init.akAlg !== "rsa") problems.push('akAlg: must be "ecc" or "rsa"');
  if (init.ekAlg !== undefined && init.ekAlg !== "ecc" && init.ekAlg !== "rsa") problems.push('ekAlg: must be "ecc" or "rsa"');
  if (init.tpm !== undefined) {
    try {
      parseTpmSpec(init.tpm);
    } catch (err) {
      problems.push(...((err as ConfigError).problems ?? [(err as Error).message]));
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { pcrs };
}

export function tpmQuoteAttestor(init: TpmQuoteAttestorInit = {}) {
  const { pcrs } = resolveInit(init);
  return (_components: AttestorComponents): Attestor => ({
    name: "attestor-tpm",
    kind: "attestor",
    apiVersion: PLUGIN_API_VERSION,
    format: TPM_QUOTE_FORMAT,

    async collect(binding: EvidenceBinding, options: { signal?: AbortSignal } = {}): Promise<Evidence> {
      const ekAlg = init.ekAlg ?? "rsa";
      const { q, ekPublic, ekCert } = await withTpm(init.tpm ?? "/dev/tpmrm0", init, async (tpm) => {
        // EK first (read, then flushed): swtpm without a resource manager has three object slots.
        const ekPublic = await withEk(tpm, ekAlg, async (ek) => toTpm2bPublic(ek.publicArea), options);
        const ekCert = await readEkCert(tpm, ekAlg, options);
        const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, akTemplate(init.akAlg ?? "ecc"), options);
        try {
          const q = await collectQuote(tpm, { ak, nonce: bindingDigest256(binding), pcrSelection: { hash: "sha256", pcrs } }, options);
          return { q, ekPublic, ekCert };
        } finally {
          await tpm.flushContext(ak.handle, options).catch(() => {});
        }
      }, options);
      const values: Record<string, Uint8Array> = {};
      for (const [k, hex] of Object.entries(q.pcrs)) values[k] = new Uint8Array(Buffer.from(hex, "hex"));
      return {
        format: TPM_QUOTE_FORMAT,
        data: encodeCbor({
          attest: q.tpmsAttest, signature: q.signature, akPublic: q.akPublic, pcrHash: q.pcrSelection.hash, pcrs: values,
          ekPublic, ...(ekCert ? { ekCert } : {}),
        }),
      };
    },

    /** Agent side: recover the hub's secret with TPM2_ActivateCredential (same deterministic AK, same EK). */
    async activate(challenge: ActivationChallenge, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
      return withAk(init.tpm ?? "/dev/tpmrm0", init, (tpm, ak) =>
        withEk(tpm, init.ekAlg ?? "rsa", (ek) => tpm.activateCredential(ak.handle, ek.handle, challenge.credentialBlob, challenge.encryptedSecret, options), options), options);
    },

    /** Hub side: seal a fresh secret to the evidence's EK for its AK's Name. Throws when the evidence has no EK. */
    async challenge(evidence: Evidence): Promise<{ challenge: ActivationChallenge; secret: Uint8Array }> {
      const parts = decodeTpmQuoteEvidence(evidence.data);
      if (!parts.ekPublic) throw new Error("the evidence carries no EK (agent too old for credential activation)");
      ekNameOf(parts.ekPublic); // parses, or throws
      return ekChallenge(parts.ekPublic, parts.akPublic);
    },

    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult> {
      if (evidence.format !== TPM_QUOTE_FORMAT) return failedResult(TPM_QUOTE_FORMAT, "format", `expected ${TPM_QUOTE_FORMAT}, got ${evidence.format}`);
      let parts: TpmQuoteParts;
      try {
        parts = decodeTpmQuoteEvidence(evidence.data);
      } catch (err) {
        return failedResult(TPM_QUOTE_FORMAT, "structure", (err as Error).message);
      }
      return verifyTpmQuoteParts(parts, {
        at: now, nonce: bindingDigest256(binding), allowSha1: init.allowSha1 ?? false,
        ...(init.akRoots ? { akRoots: init.akRoots } : {}), ...(init.ekRoots ? { ekRoots: init.ekRoots } : {}),
      });
    },
  });
}
