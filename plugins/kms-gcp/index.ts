/**
 * GCP Cloud KMS over REST (cloudkms.googleapis.com/v1), authorised with the instance service
 * account's OAuth token from the metadata server
 * (GET /computeMetadata/v1/instance/service-accounts/default/token, Metadata-Flavor: Google).
 *
 *   wrap     POST v1/{keyName}:encrypt {plaintext, additionalAuthenticatedData} -> {name (the version), ciphertext}
 *   unwrap   POST v1/{keyName}:decrypt {ciphertext, additionalAuthenticatedData} -> {plaintext}
 *   rotate   POST v1/{keyName}/cryptoKeyVersions {} -> {name}, then
 *            POST v1/{keyName}:updatePrimaryVersion {cryptoKeyVersionId}
 *
 * Cloud KMS has no GenerateDataKey: data keys come from the local CSPRNG and are wrapped.
 * The ciphertext names its key version, so wraps made before a rotation still decrypt.
 * `keyId` of a wrap is the CryptoKeyVersion resource name the service reports.
 */
import { randomBytes } from "node:crypto";
import { BearerCache, contextAad, dataKeyBytes, kmsFetchJson, kmsRequestTimeoutMsDefault, KmsRefusedError, type Kms, type KmsComponents, type KmsOptions, type WrappedKey } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";

export const cloudKmsEndpointDefault = "https://cloudkms.googleapis.com";
export const metadataEndpointDefault = "http://metadata.google.internal";
export const tokenPath = "/computeMetadata/v1/instance/service-accounts/default/token";
/** Refresh the OAuth token this long before it expires. */
export const requestTimeoutMsDefault = kmsRequestTimeoutMsDefault;
/** Response bodies larger than this are refused. */

export interface GcpKmsInit {
  /** projects/P/locations/L/keyRings/R/cryptoKeys/K */
  keyName: string;
  endpoint?: string;
  metadataEndpoint?: string;
  requestTimeoutMs?: number;
}

const NAME = "kms-gcp";
const KEY_NAME = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/;

export function gcpKms(init: GcpKmsInit) {
  if (!KEY_NAME.test(init.keyName)) throw new TypeError(`kms-gcp: keyName "${init.keyName}" is not projects/P/locations/L/keyRings/R/cryptoKeys/K`);
  const endpoint = (init.endpoint ?? cloudKmsEndpointDefault).replace(/\/$/, "");
  const metadata = (init.metadataEndpoint ?? metadataEndpointDefault).replace(/\/$/, "");
  const timeoutMs = init.requestTimeoutMs ?? requestTimeoutMsDefault;
  const versionRe = new RegExp(`^${init.keyName.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/cryptoKeyVersions/\\d+$`);

  return (components: KmsComponents): Kms => {
    const send = (url: string, req: RequestInit, what: string, options?: KmsOptions) =>
      kmsFetchJson(NAME, components.fetch, url, req, what, { timeoutMs, ...(options?.signal ? { signal: options.signal } : {}) });
    const token = new BearerCache(components.clock, async (signal) => {
      const r = await send(`${metadata}${tokenPath}`, { headers: { "Metadata-Flavor": "Google" } }, "metadata token", signal ? { signal } : undefined);
      const value = r.body.access_token;
      if (r.status !== 200 || typeof value !== "string" || r.body.token_type !== "Bearer") throw new KmsRefusedError(NAME, `metadata token: HTTP ${r.status}`);
      return { value, expiresInS: Number(r.body.expires_in ?? 0) };
    });

    async function call<T>(path: string, body: unknown, what: string, options?: KmsOptions): Promise<T> {
      const auth = await token.get(options?.signal);
      const r = await send(`${endpoint}/v1/${path}`, { method: "POST", headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" }, body: JSON.stringify(body) }, what, options);
      if (r.status === 401) token.drop(); // expired or revoked: fetch a new one next time
      if (r.status !== 200) {
        const e = (r.body.error ?? {}) as { status?: string; message?: string };
        throw new KmsRefusedError(NAME, `${what}: ${e.status ?? `HTTP ${r.status}`}: ${e.message ?? ""}`);
      }
      return r.body as T;
    }

    const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
    const aad = (o?: KmsOptions) => b64(contextAad(o?.context));

    async function wrap(dataKey: Uint8Array, options?: KmsOptions): Promise<WrappedKey> {
      const r = await call<{ name: string; ciphertext: string }>(`${init.keyName}:encrypt`, { plaintext: b64(dataKey), additionalAuthenticatedData: aad(options) }, "encrypt", options);
      if (!versionRe.test(String(r.name)) || typeof r.ciphertext !== "string") throw new KmsRefusedError(NAME, "encrypt: response names no version of the key");
      return { kms: NAME, keyId: r.name, ciphertext: new Uint8Array(Buffer.from(r.ciphertext, "base64")) };
    }

    return {
      name: NAME, kind: "kms", apiVersion: PLUGIN_API_VERSION,
      async generateDataKey(options) {
        const plaintext = new Uint8Array(randomBytes(dataKeyBytes));
        return { plaintext, wrapped: await wrap(plaintext, options) };
      },
      wrap,
      async unwrap(w, options) {
        await token.get(options?.signal); // an unreachable service reports itself before the key id is judged
        if (!versionRe.test(w.keyId)) throw new KmsRefusedError(NAME, `unknown key ${w.keyId} (not a version of ${init.keyName})`);
        const r = await call<{ plaintext?: string }>(`${init.keyName}:decrypt`, { ciphertext: b64(w.ciphertext), additionalAuthenticatedData: aad(options) }, "decrypt", options);
        if (typeof r.plaintext !== "string") throw new KmsRefusedError(NAME, "decrypt: no plaintext");
        return new Uint8Array(Buffer.from(r.plaintext, "base64"));
      },
      async rotate(options) {
        const v = await call<{ name: string }>(`${init.keyName}/cryptoKeyVersions`, {}, "create version", options);
        if (!versionRe.test(String(v.name))) throw new KmsRefusedError(NAME, "create version: unexpected name");
        await call(`${init.keyName}:updatePrimaryVersion`, { cryptoKeyVersionId: v.name.split("/").pop() }, "update primary", options);
        return v.name;
      },
    };
  };
}
