/**
 * Azure Key Vault key wrapping (REST, api-version 7.4, RSA-OAEP-256), authorised with the VM's
 * managed identity token from IMDS
 * (GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net, Metadata: true).
 *
 *   wrap     POST {vault}/keys/{name}/wrapkey   {alg, value (base64url)} -> {kid (…/keys/NAME/VERSION), value}
 *   unwrap   POST {vault}/keys/{name}/{version}/unwrapkey {alg, value}  -> {kid, value}
 *   rotate   POST {vault}/keys/{name}/rotate -> {key: {kid}}
 *
 * RSA-OAEP carries no associated data, so the wrapped payload is sha256(context) || dataKey and
 * unwrap compares the prefix: a wrap made for another context is refused. `keyId` of a wrap is the
 * versioned key URL (kid), so wraps made before a rotation name the version that opens them.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { BearerCache, contextAad, dataKeyBytes, kmsFetchJson, kmsRequestTimeoutMsDefault, KmsRefusedError, type Kms, type KmsComponents, type KmsOptions, type WrappedKey } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";

export const imdsEndpointDefault = "http://169.254.169.254";
export const imdsTokenApiVersion = "2018-02-01";
export const keyVaultApiVersion = "7.4";
export const vaultResource = "https://vault.azure.net";
export const wrapAlg = "RSA-OAEP-256";
export const requestTimeoutMsDefault = kmsRequestTimeoutMsDefault;

export interface AzureKmsInit {
  /** https://NAME.vault.azure.net */
  vaultUrl: string;
  keyName: string;
  imdsEndpoint?: string;
  requestTimeoutMs?: number;
}

const NAME = "kms-azure";
const digest = (o?: KmsOptions) => createHash("sha256").update(contextAad(o?.context)).digest();

export function azureKms(init: AzureKmsInit) {
  const vault = init.vaultUrl.replace(/\/$/, "");
  const imds = (init.imdsEndpoint ?? imdsEndpointDefault).replace(/\/$/, "");
  const timeoutMs = init.requestTimeoutMs ?? requestTimeoutMsDefault;
  if (!/^[0-9a-zA-Z-]{1,127}$/.test(init.keyName)) throw new TypeError(`kms-azure: key name "${init.keyName}" is not 1-127 letters, digits or '-'`);
  const keyBase = `${vault}/keys/${init.keyName}`;
  const kidRe = new RegExp(`^${keyBase.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/([0-9a-zA-Z]{1,64})$`);

  return (components: KmsComponents): Kms => {
    const send = (url: string, req: RequestInit, what: string, options?: KmsOptions) =>
      kmsFetchJson(NAME, components.fetch, url, req, what, { timeoutMs, ...(options?.signal ? { signal: options.signal } : {}) });
    const token = new BearerCache(components.clock, async (signal) => {
      const q = new URLSearchParams({ "api-version": imdsTokenApiVersion, resource: vaultResource });
      const r = await send(`${imds}/metadata/identity/oauth2/token?${q}`, { headers: { Metadata: "true" } }, "IMDS token", signal ? { signal } : undefined);
      const value = r.body.access_token;
      if (r.status !== 200 || typeof value !== "string") throw new KmsRefusedError(NAME, `IMDS token: HTTP ${r.status}: ${String(r.body.error_description ?? r.body.error ?? "")}`);
      return { value, expiresInS: Number(r.body.expires_in ?? 0) };
    });

    async function call(url: string, body: unknown, what: string, options?: KmsOptions): Promise<Record<string, unknown>> {
      const auth = await token.get(options?.signal);
      const r = await send(`${url}?api-version=${keyVaultApiVersion}`, { method: "POST", headers: { authorization: `Bearer ${auth}`, "content-type": "application/json" }, body: JSON.stringify(body) }, what, options);
      if (r.status === 401) token.drop();
      if (r.status !== 200) {
        const e = (r.body.error ?? {}) as { code?: string; message?: string };
        throw new KmsRefusedError(NAME, `${what}: ${e.code ?? `HTTP ${r.status}`}: ${e.message ?? ""}`);
      }
      return r.body;
    }

    async function wrap(dataKey: Uint8Array, options?: KmsOptions): Promise<WrappedKey> {
      const payload = Buffer.concat([digest(options), dataKey]);
      const r = await call(`${keyBase}/wrapkey`, { alg: wrapAlg, value: payload.toString("base64url") }, "wrapkey", options);
      payload.fill(0);
      if (typeof r.kid !== "string" || !kidRe.test(r.kid) || typeof r.value !== "string") throw new KmsRefusedError(NAME, "wrapkey: response names no version of the key");
      return { kms: NAME, keyId: r.kid, ciphertext: new Uint8Array(Buffer.from(r.value, "base64url")) };
    }

    return {
      name: NAME, kind: "kms", apiVersion: PLUGIN_API_VERSION,
      async generateDataKey(options) {
        const plaintext = new Uint8Array(randomBytes(dataKeyBytes));
        return { plaintext, wrapped: await wrap(plaintext, options) };
      },
      wrap,
      async unwrap(w, options) {
        await token.get(options?.signal);
        if (!kidRe.test(w.keyId)) throw new KmsRefusedError(NAME, `unknown key ${w.keyId} (not a version of ${keyBase})`);
        const r = await call(`${w.keyId}/unwrapkey`, { alg: wrapAlg, value: Buffer.from(w.ciphertext).toString("base64url") }, "unwrapkey", options);
        const out = typeof r.value === "string" ? Buffer.from(r.value, "base64url") : Buffer.alloc(0);
        const want = digest(options);
        if (out.length !== 32 + dataKeyBytes) throw new KmsRefusedError(NAME, "unwrapkey: not a grey data key");
        if (!timingSafeEqual(out.subarray(0, 32), want)) throw new KmsRefusedError(NAME, "unwrapkey: wrapped for another context");
        const key = new Uint8Array(out.subarray(32));
        out.fill(0);
        return key;
      },
      async rotate(options) {
        const r = await call(`${keyBase}/rotate`, undefined, "rotate", options);
        const kid = (r.key as { kid?: unknown } | undefined)?.kid;
        if (typeof kid !== "string" || !kidRe.test(kid)) throw new KmsRefusedError(NAME, "rotate: response names no new version");
        return kid;
      },
    };
  };
}
