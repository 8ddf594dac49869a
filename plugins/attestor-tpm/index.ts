/**
 * TPM 2.0 attestor, agent side: `tpmAttestor(init)(components)`.
 *
 * start()  opens the TPM (/dev/tpmrm0 or a swtpm TCP socket), runs TPM2_Startup if needed, and
 *          creates the EK (TCG default template) and an AK under it. Both are transient objects.
 * collect() returns quote evidence bound to the hub's nonce.
 * activateCredential() answers the hub's EK challenge (the hub runs makeCredential in software).
 * stop()   flushes the objects and closes the transport; bounded by readTimeoutMs per command.
 *
 * There is no attestor contract in plugins/sdk yet; this shape is what the catalog can adapt.
 */
import { ConfigError } from "../sdk/errors.ts";
import { pcrCount, quotePcrsDefault, tpmReadTimeoutMsDefault } from "./constants.ts";
import { createAk, createEk } from "./keys.ts";
import { toTpm2bPublic, type KeyAlg } from "./public.ts";
import { collectQuote, type QuoteEvidence } from "./quote.ts";
import { Tpm, type CallOptions, type LoadedObject } from "./tpm.ts";
import { deviceTransport, tcpTransport, type TpmTransport } from "./transport.ts";

export { TpmError, type TpmErrorKind } from "./errors.ts";
export { makeCredential, type MadeCredential } from "./credential.ts";
export { objectName, publicKeyPem, parsePublic, fromTpm2bPublic } from "./public.ts";
export type { QuoteEvidence } from "./quote.ts";
export { Tpm } from "./tpm.ts";
export { tcpTransport, deviceTransport, type TpmTransport } from "./transport.ts";

export interface TpmAttestorInit {
  /** Character device; default /dev/tpmrm0 when `tcp` is not given. */
  readonly device?: string;
  /** swtpm's TCP command channel instead of a device. */
  readonly tcp?: { readonly host: string; readonly port: number };
  readonly ekAlg?: KeyAlg;
  readonly akAlg?: KeyAlg;
  /** SHA-256 PCRs to quote. */
  readonly pcrs?: readonly number[];
  readonly readTimeoutMs?: number;
}

export interface TpmAttestorComponents {
  /** Injected transport (tests); otherwise built from init. */
  readonly transport?: TpmTransport;
}

export interface TpmAttestor {
  readonly name: "tpm";
  start(options?: CallOptions): Promise<void>;
  stop(options?: CallOptions): Promise<void>;
  collect(nonce: Uint8Array, options?: CallOptions): Promise<QuoteEvidence>;
  /** TPM2B_PUBLIC of the EK, for the hub to pin and to seal credentials to. */
  ekPublic(): Uint8Array;
  /** TPM2B_PUBLIC of the AK. */
  akPublic(): Uint8Array;
  activateCredential(idObject: Uint8Array, encryptedSecret: Uint8Array, options?: CallOptions): Promise<Uint8Array>;
}

interface ResolvedConfig {
  readonly transport: { kind: "device"; path: string } | { kind: "tcp"; host: string; port: number };
  readonly ekAlg: KeyAlg;
  readonly akAlg: KeyAlg;
  readonly pcrs: readonly number[];
  readonly readTimeoutMs: number;
}

/** Validate the user-facing init; every problem is reported at once, with its path. */
export function resolveTpmAttestorConfig(init: TpmAttestorInit): ResolvedConfig {
  const problems: string[] = [];
  const alg = (path: string, v: unknown): KeyAlg => {
    if (v === undefined) return "ecc";
    if (v !== "ecc" && v !== "rsa") problems.push(`${path}: must be "ecc" or "rsa"`);
    return v as KeyAlg;
  };
  if (init.device !== undefined && init.tcp !== undefined) problems.push("device, tcp: give one, not both");
  if (init.tcp && (!Number.isInteger(init.tcp.port) || init.tcp.port < 1 || init.tcp.port > 65535)) problems.push("tcp.port: must be 1..65535");
  const pcrs = init.pcrs ?? quotePcrsDefault;
  if (pcrs.length === 0) problems.push("pcrs: must not be empty");
  pcrs.forEach((p, i) => {
    if (!Number.isInteger(p) || p < 0 || p >= pcrCount) problems.push(`pcrs[${i}]: must be 0..${pcrCount - 1}`);
  });
  const readTimeoutMs = init.readTimeoutMs ?? tpmReadTimeoutMsDefault;
  if (!Number.isInteger(readTimeoutMs) || readTimeoutMs <= 0) problems.push("readTimeoutMs: must be a positive integer");
  const ekAlg = alg("ekAlg", init.ekAlg);
  const akAlg = alg("akAlg", init.akAlg);
  if (problems.length) throw new ConfigError(problems);
  return {
    transport: init.tcp ? { kind: "tcp", ...init.tcp } : { kind: "device", path: init.device ?? "/dev/tpmrm0" },
    ekAlg,
    akAlg,
    pcrs,
    readTimeoutMs,
  };
}

export function tpmAttestor(init: TpmAttestorInit = {}): (components?: TpmAttestorComponents) => TpmAttestor {
  const config = resolveTpmAttestorConfig(init);
  return (components = {}) => {
    const transport =
      components.transport ??
      (config.transport.kind === "tcp" ? tcpTransport(config.transport) : deviceTransport({ path: config.transport.path }));
    const tpm = new Tpm({ transport, readTimeoutMs: config.readTimeoutMs });
    let ek: LoadedObject | undefined;
    let ak: LoadedObject | undefined;
    const started = () => {
      if (!ek || !ak) throw new Error("tpm attestor used before start()");
      return { ek, ak };
    };

    return {
      name: "tpm",
      async start(options) {
        await tpm.ensureStarted(options);
        ek = await createEk(tpm, config.ekAlg, options);
        ak = await createAk(tpm, ek, config.akAlg, options);
      },
      async stop(options) {
        for (const o of [ak, ek]) if (o) await tpm.flushContext(o.handle, options).catch(() => {});
        ak = ek = undefined;
        await tpm.close();
      },
      collect(nonce, options) {
        return collectQuote(tpm, { ak: started().ak, nonce, pcrSelection: { hash: "sha256", pcrs: config.pcrs } }, options);
      },
      ekPublic: () => toTpm2bPublic(started().ek.publicArea),
      akPublic: () => toTpm2bPublic(started().ak.publicArea),
      activateCredential(idObject, encryptedSecret, options) {
        const { ek, ak } = started();
        return tpm.activateCredential(ak.handle, ek.handle, idObject, encryptedSecret, options);
      },
    };
  };
}
