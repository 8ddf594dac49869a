/**
 * Cloud connectors: how a node proves who it is on its platform (AWS, GCP,
 * Azure, an on-premises PKI, ...) and how the hub checks it.
 *
 * A connector is a factory `(init) => (components) => Connector` and has five
 * duties, each one method pair (agent side produces, hub side verifies):
 *
 *   1. authentication   authenticate() → Credential      verifyCredential() → IdentityResult
 *                       a platform credential naming a principal (IAM role, service
 *                       account, managed identity, certificate subject), bound to the join.
 *   2. network setup    network() → NetworkInfo
 *                       what the platform says about where the node is (region, zone,
 *                       private/public addresses) so the host can listen and advertise.
 *   3. evidence         evidence() → Evidence            (verified by an attestor of `format`)
 *                       signed instance identity from the platform's metadata service.
 *   4. key exchange     every credential and evidence binds `binding.subjectPublicKey`, the
 *                       key the federation CA is about to certify; a connector whose platform
 *                       holds the node's key (HSM) also exposes `keyHolder` to sign with it.
 *   5. health           health() → HealthReport
 *                       can the platform endpoints be reached, and how fast.
 *
 * Binding: the agent passes the EvidenceBinding of the join/renewal (hub nonce,
 * peer id, CSR key). Every credential carries a digest of it (sdk/binding.ts) in
 * a field the platform signs: a credential made for another nonce, node or key
 * does not verify. Platforms that cannot carry the digest must say so with a
 * `fresh: false` claim; the hub policy decides whether that is acceptable.
 *
 * Lifecycle: the host calls `start()` (optional) before anything else and
 * `stop()` at shutdown. Every method that does I/O takes `{ signal }` and must
 * return or reject promptly when it fires.
 *
 * Errors: verify methods never throw for bad input, they return a failed
 * result naming the check. Agent-side methods throw the typed errors below
 * (match them by `name`/`code`, not `instanceof`: an external plugin bundles
 * its own copy of this file).
 *
 * Contract version: part of PLUGIN_API_VERSION (sdk/plugin.ts).
 */
import type { AttestationResult, Check, EvidenceBinding } from "./attestor.ts";
import { GreyError } from "./errors.ts";
import type { HostComponents, PluginMeta } from "./plugin.ts";
import type { Evidence } from "./wire.ts";

export type { Check, EvidenceBinding, Evidence };

/** A platform credential: opaque bytes (usually CBOR) tagged with its type, e.g. "aws-sts-get-caller-identity". */
export interface Credential {
  type: string;
  data: Uint8Array;
}

/** What verifyCredential returns: an AttestationResult whose `format` is the credential type, plus the principal. */
export interface IdentityResult extends AttestationResult {
  /** Stable name of the authenticated principal (role ARN, service-account email, object id, cert subject). */
  principal?: string;
}

export interface NetworkInfo {
  platform: string;
  region?: string;
  zone?: string;
  /** Addresses reachable inside the platform's network. */
  privateAddresses: string[];
  /** Addresses reachable from outside, when the platform knows them. */
  publicAddresses: string[];
}

export type HealthStatus = "ok" | "degraded" | "down";

export interface HealthReport {
  status: HealthStatus;
  /** One entry per endpoint or dependency probed. */
  checks: { name: string; ok: boolean; latencyMs?: number; detail?: string }[];
}

/** A key held by the platform (HSM slot, TPM) that can prove possession by signing. */
export interface KeyHolder {
  /** DER SubjectPublicKeyInfo. */
  publicKey(): Promise<Uint8Array>;
  /** Signature over `data` (ECDSA P-256: DER; RSA: PKCS#1 v1.5), SHA-256. */
  sign(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

export interface IoOptions {
  signal?: AbortSignal;
}

export interface Connector extends PluginMeta {
  readonly kind: "connector";
  /** Platform this connector speaks to, e.g. "aws", "gcp", "azure", "onprem". */
  readonly platform: string;
  /** Credential types verifyCredential accepts. */
  readonly credentialTypes: readonly string[];
  /** Evidence format evidence() produces (an attestor of that format verifies it), if any. */
  readonly evidenceFormat?: string;

  start?(): Promise<void>;
  stop?(): Promise<void>;

  /** Duty 1, agent side. Throws ConnectorUnavailableError when the platform cannot be reached. */
  authenticate?(binding: EvidenceBinding, options?: IoOptions): Promise<Credential>;
  /** Duty 1, hub side. `now` is the verification time. Never throws for bad credentials. */
  verifyCredential?(credential: Credential, binding: EvidenceBinding, now: Date, options?: IoOptions): Promise<IdentityResult>;
  /** Duty 2. */
  network?(options?: IoOptions): Promise<NetworkInfo>;
  /** Duty 3, agent side. */
  evidence?(binding: EvidenceBinding, options?: IoOptions): Promise<Evidence>;
  /** Duty 4: a platform-held key, when there is one. */
  readonly keyHolder?: KeyHolder;
  /** Duty 5. Never throws: an unreachable platform is status "down". */
  health(options?: IoOptions): Promise<HealthReport>;
}

/**
 * What connectors receive. `fetch` is injected so tests (and proxies) can
 * replace the network; connectors never call the global fetch.
 */
export interface ConnectorComponents extends HostComponents {
  fetch: typeof fetch;
}

export type ConnectorFactory = (components: ConnectorComponents) => Connector;

/** The platform endpoint could not be reached or answered with a server error. */
export class ConnectorUnavailableError extends GreyError {
  constructor(readonly platform: string, readonly endpoint: string, message: string, options?: { cause?: unknown }) {
    super("ERR_CONNECTOR_UNAVAILABLE", `${platform}: ${endpoint}: ${message}`, options);
  }
}

/** The platform answered but refused or returned something unusable (4xx, bad shape). */
export class ConnectorResponseError extends GreyError {
  constructor(readonly platform: string, readonly endpoint: string, readonly status: number, message: string) {
    super("ERR_CONNECTOR_RESPONSE", `${platform}: ${endpoint}: HTTP ${status}: ${message}`);
  }
}

/** A failed IdentityResult with a single check. */
export function failedIdentity(type: string, check: string, detail: string): IdentityResult {
  return { format: type, ok: false, checks: [{ name: check, ok: false, detail: detail.slice(0, 4096) }], failed: check, claims: {} };
}

/** Builds an IdentityResult from an ordered list of checks (stops at the first failure). */
export function identityFrom(type: string, checks: Check[], claims: AttestationResult["claims"], principal?: string): IdentityResult {
  const failed = checks.find((c) => !c.ok);
  if (failed) return { format: type, ok: false, checks, failed: failed.name, claims: {} };
  return { format: type, ok: true, checks, claims, ...(principal !== undefined ? { principal } : {}) };
}

/** Default budget for one platform HTTP call (IMDS, STS, metadata server). */
export const platformRequestTimeoutMs = 5_000;
/** Largest platform response read. Larger: ConnectorResponseError. */
export const platformResponseBytesMax = 256 * 1024;

/**
 * One HTTP call to a platform endpoint with a deadline: network failures, timeouts and 5xx become
 * ConnectorUnavailableError; the response body is read up to `platformResponseBytesMax`.
 */
export async function platformFetch(
  fetchFn: typeof fetch,
  platform: string,
  url: string,
  init: RequestInit & { timeoutMs?: number },
  options: IoOptions = {},
): Promise<{ status: number; headers: Headers; body: Uint8Array; text(): string }> {
  const timeout = AbortSignal.timeout(init.timeoutMs ?? platformRequestTimeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const endpoint = url.replace(/\?.*$/, "");
  let res: Response;
  try {
    res = await fetchFn(url, { ...init, signal, redirect: "manual" });
  } catch (err) {
    const why = timeout.aborted ? `no answer in ${init.timeoutMs ?? platformRequestTimeoutMs} ms` : (err as Error).message;
    throw new ConnectorUnavailableError(platform, endpoint, why, { cause: err });
  }
  const buf = new Uint8Array(await res.arrayBuffer().catch(() => new ArrayBuffer(0)));
  if (buf.byteLength > platformResponseBytesMax) throw new ConnectorResponseError(platform, endpoint, res.status, `response of ${buf.byteLength} bytes exceeds ${platformResponseBytesMax}`);
  if (res.status >= 500) throw new ConnectorUnavailableError(platform, endpoint, `HTTP ${res.status}`);
  return { status: res.status, headers: res.headers, body: buf, text: () => new TextDecoder().decode(buf) };
}

/** Health of one endpoint: any HTTP answer below 500 counts as reachable. */
export async function probe(fetchFn: typeof fetch, platform: string, name: string, url: string, init: RequestInit, options: IoOptions = {}): Promise<HealthReport["checks"][number]> {
  const started = performance.now();
  try {
    const r = await platformFetch(fetchFn, platform, url, { ...init, timeoutMs: 2_000 }, options);
    return { name, ok: true, latencyMs: Math.round(performance.now() - started), detail: `HTTP ${r.status}` };
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message.slice(0, 300) };
  }
}

/** "ok" when every check passed, "down" when none did, else "degraded". */
export function healthOf(checks: HealthReport["checks"]): HealthReport {
  const ok = checks.filter((c) => c.ok).length;
  return { status: ok === checks.length ? "ok" : ok === 0 ? "down" : "degraded", checks };
}
