/**
 * Key management services for envelope encryption: the host encrypts data
 * locally with a fresh data key (AES-256-GCM) and stores only the data key
 * wrapped by a key-encryption key (KEK) that never leaves the KMS (AWS KMS,
 * GCP Cloud KMS, Azure Key Vault, an HSM over PKCS#11).
 *
 * A plugin is a factory `(init) => (components) => Kms`.
 *
 *   generateDataKey()  fresh 32-byte data key + the same key wrapped by the current KEK version
 *   wrap(dataKey)      wrap a key the host made
 *   unwrap(wrapped)    recover the data key; the wrapped form names the KEK version it needs
 *   rotate()           make a new KEK version current. Keys wrapped before stay unwrappable;
 *                      new wraps use the new version. (Re-wrap = unwrap + wrap.)
 *
 * Errors (match by `name`/`code`):
 *   KmsUnavailableError  the service could not be reached (network, timeout, 5xx): retry later
 *   KmsRefusedError      the service answered and refused (unknown key, disabled version,
 *                        denied, ciphertext not for this key / tampered)
 *
 * `context` is additional authenticated data: unwrap with a different context fails.
 *
 * Contract version: part of PLUGIN_API_VERSION (sdk/plugin.ts).
 */
import { GreyError } from "./errors.ts";
import type { HostComponents, PluginMeta } from "./plugin.ts";

export interface WrappedKey {
  /** Which KMS plugin made it, e.g. "kms-aws". */
  kms: string;
  /** KEK identifier including the version used (ARN, resource name, key URL, label#version). */
  keyId: string;
  /** The wrapped data key as the service returned it. */
  ciphertext: Uint8Array;
}

export interface DataKey {
  /** 32 bytes. The caller must zero it when done (`plaintext.fill(0)`). */
  plaintext: Uint8Array;
  wrapped: WrappedKey;
}

export interface KmsOptions {
  signal?: AbortSignal;
  /** Additional authenticated data bound to the wrap (e.g. "grey/ca-key"). */
  context?: Record<string, string>;
}

export interface Kms extends PluginMeta {
  readonly kind: "kms";
  start?(): Promise<void>;
  stop?(): Promise<void>;
  generateDataKey(options?: KmsOptions): Promise<DataKey>;
  wrap(dataKey: Uint8Array, options?: KmsOptions): Promise<WrappedKey>;
  unwrap(wrapped: WrappedKey, options?: KmsOptions): Promise<Uint8Array>;
  /** Makes a new KEK version current; returns its keyId. */
  rotate(options?: KmsOptions): Promise<string>;
}

export interface KmsComponents extends HostComponents {
  fetch: typeof fetch;
}

export type KmsFactory = (components: KmsComponents) => Kms;

/** Data keys are AES-256 keys. */
export const dataKeyBytes = 32;

export class KmsUnavailableError extends GreyError {
  constructor(readonly kms: string, message: string, options?: { cause?: unknown }) {
    super("ERR_KMS_UNAVAILABLE", `${kms}: key service unavailable: ${message}`, options);
  }
}

export class KmsRefusedError extends GreyError {
  constructor(readonly kms: string, message: string, options?: { cause?: unknown }) {
    super("ERR_KMS_REFUSED", `${kms}: ${message}`, options);
  }
}

/** Canonical AAD bytes for a context (sorted keys, JSON), for KMS plugins that run their own AEAD. */
export function contextAad(context: Record<string, string> | undefined): Uint8Array {
  const sorted = Object.fromEntries(Object.entries(context ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return new TextEncoder().encode(JSON.stringify(sorted));
}

/** Cloud KMS HTTP calls: deadline per request, largest JSON response accepted, token refresh margin. */
export const kmsRequestTimeoutMsDefault = 5_000;
export const kmsResponseBytesMax = 64 * 1024;
export const kmsTokenRefreshMarginMs = 60_000;

/**
 * One HTTP exchange with a cloud key service, with the error mapping every
 * KMS plugin needs: network failure, 5xx and 429 → KmsUnavailableError (retry
 * later); oversize or non-JSON answers → KmsRefusedError. Other statuses are
 * returned for the caller to interpret.
 */
export async function kmsFetchJson(
  kms: string,
  fetchFn: typeof fetch,
  url: string,
  req: RequestInit,
  what: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const timeout = AbortSignal.timeout(options.timeoutMs ?? kmsRequestTimeoutMsDefault);
  let res: Response;
  try {
    res = await fetchFn(url, { ...req, signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout });
  } catch (err) {
    throw new KmsUnavailableError(kms, `${what}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  if (res.status >= 500 || res.status === 429) throw new KmsUnavailableError(kms, `${what}: HTTP ${res.status}`);
  if (text.length > kmsResponseBytesMax) throw new KmsRefusedError(kms, `${what}: response larger than ${kmsResponseBytesMax} bytes`);
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new KmsRefusedError(kms, `${what}: HTTP ${res.status}, not JSON`);
  }
}

/** A cached OAuth bearer token (metadata server / IMDS), refreshed before it expires or after a 401. */
export class BearerCache {
  #token: { value: string; expiresAt: number } | undefined;
  constructor(private readonly clock: { now(): number }, private readonly fetchToken: (signal?: AbortSignal) => Promise<{ value: string; expiresInS: number }>) {}

  async get(signal?: AbortSignal): Promise<string> {
    if (this.#token && this.#token.expiresAt - kmsTokenRefreshMarginMs > this.clock.now()) return this.#token.value;
    const t = await this.fetchToken(signal);
    this.#token = { value: t.value, expiresAt: this.clock.now() + t.expiresInS * 1000 };
    return t.value;
  }

  /** Forget the token (the service answered 401). */
  drop(): void {
    this.#token = undefined;
  }
}
