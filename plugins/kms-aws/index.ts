/**
 * AWS KMS over its JSON API (POST /, X-Amz-Target: TrentService.<Op>, application/x-amz-json-1.1,
 * SigV4 service "kms"): GenerateDataKey (AES_256), Encrypt, Decrypt with an EncryptionContext.
 * `keyId` is usually an alias ("alias/grey-ca"): rotate() creates a new key (CreateKey) and points
 * the alias at it (UpdateAlias); wraps made before stay decryptable under their own key ARN.
 */
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { KmsRefusedError, KmsUnavailableError, type Kms, type KmsComponents, type KmsOptions } from "../sdk/kms.ts";
import { signV4, type AwsCredentials } from "../connector-aws/sigv4.ts";

export interface AwsKmsInit {
  region: string;
  /** Key id, ARN or alias ("alias/NAME") used for new wraps. */
  keyId: string;
  credentials: AwsCredentials | (() => Promise<AwsCredentials>);
  /** Default https://kms.REGION.amazonaws.com. */
  endpoint?: string;
  requestTimeoutMs?: number;
}

const NAME = "kms-aws";

export function awsKms(init: AwsKmsInit) {
  const endpoint = (init.endpoint ?? `https://kms.${init.region}.amazonaws.com`).replace(/\/$/, "");
  return (components: KmsComponents): Kms => {
    async function call<T>(op: string, body: Record<string, unknown>, options?: KmsOptions): Promise<T> {
      const creds = typeof init.credentials === "function" ? await init.credentials() : init.credentials;
      const payload = JSON.stringify(body);
      const headers = signV4({
        method: "POST", url: `${endpoint}/`, body: payload, region: init.region, service: "kms", now: components.clock.now(),
        headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `TrentService.${op}` },
      }, creds);
      const timeout = AbortSignal.timeout(init.requestTimeoutMs ?? 5_000);
      let res: Response;
      try {
        res = await components.fetch(`${endpoint}/`, { method: "POST", headers, body: payload, signal: options?.signal ? AbortSignal.any([options.signal, timeout]) : timeout });
      } catch (err) {
        throw new KmsUnavailableError(NAME, `${op}: ${(err as Error).message}`, { cause: err });
      }
      const text = await res.text();
      if (res.status >= 500) throw new KmsUnavailableError(NAME, `${op}: HTTP ${res.status}`);
      if (res.status === 200 && text === "") return {} as T; // UpdateAlias answers with an empty body
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(text) as Record<string, unknown>;
      } catch {
        throw new KmsRefusedError(NAME, `${op}: HTTP ${res.status}, not JSON`);
      }
      if (res.status !== 200) throw new KmsRefusedError(NAME, `${op}: ${String(j.__type ?? "error").split("#").pop()}: ${String(j.message ?? j.Message ?? "")}`);
      return j as T;
    }
    const ctx = (o?: KmsOptions) => (o?.context ? { EncryptionContext: o.context } : {});
    const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
    const bytes = (s: unknown) => new Uint8Array(Buffer.from(String(s), "base64"));

    return {
      name: NAME, kind: "kms", apiVersion: PLUGIN_API_VERSION,
      async generateDataKey(options) {
        const r = await call<{ CiphertextBlob: string; Plaintext: string; KeyId: string }>("GenerateDataKey", { KeyId: init.keyId, KeySpec: "AES_256", ...ctx(options) }, options);
        return { plaintext: bytes(r.Plaintext), wrapped: { kms: NAME, keyId: r.KeyId, ciphertext: bytes(r.CiphertextBlob) } };
      },
      async wrap(dataKey, options) {
        const r = await call<{ CiphertextBlob: string; KeyId: string }>("Encrypt", { KeyId: init.keyId, Plaintext: b64(dataKey), ...ctx(options) }, options);
        return { kms: NAME, keyId: r.KeyId, ciphertext: bytes(r.CiphertextBlob) };
      },
      async unwrap(w, options) {
        const r = await call<{ Plaintext: string }>("Decrypt", { CiphertextBlob: b64(w.ciphertext), KeyId: w.keyId, ...ctx(options) }, options);
        return bytes(r.Plaintext);
      },
      async rotate(options) {
        const created = await call<{ KeyMetadata: { Arn: string; KeyId: string } }>("CreateKey", { KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT", Description: "grey federation KEK (rotated)" }, options);
        if (init.keyId.startsWith("alias/")) await call("UpdateAlias", { AliasName: init.keyId, TargetKeyId: created.KeyMetadata.KeyId }, options);
        else throw new KmsRefusedError(NAME, "rotate needs keyId to be an alias (alias/NAME)");
        return created.KeyMetadata.Arn;
      },
    };
  };
}
