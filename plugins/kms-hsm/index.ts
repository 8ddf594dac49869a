/**
 * KMS on an HSM over PKCS#11: the KEK is a non-extractable AES-256 key on the token (labels
 * LABEL.v1, LABEL.v2, ...; the highest is current). Data keys are wrapped with AES-256-GCM inside
 * the token: wrapped = iv(12) || ciphertext || tag(16), AAD = the canonical context.
 * rotate() generates LABEL.v(n+1). A token that cannot be opened is KmsUnavailableError.
 */
import { randomBytes } from "node:crypto";
import { contextAad, dataKeyBytes, KmsRefusedError, KmsUnavailableError, type Kms, type KmsComponents, type KmsOptions, type WrappedKey } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { Pkcs11Error, withSession, type Pkcs11Config, type Pkcs11Session } from "../connector-onprem/pkcs11.ts";

export interface HsmKmsInit {
  pkcs11: Pkcs11Config;
  /** Base label of the KEK versions. */
  label: string;
  /** Versions probed for "current" (bounded search). */
  versionsMax?: number;
}

const NAME = "kms-hsm";

export function hsmKms(init: HsmKmsInit) {
  const max = init.versionsMax ?? 256;
  return (_components: KmsComponents): Kms => {
    async function session<T>(fn: (s: Pkcs11Session) => T, options?: KmsOptions): Promise<T> {
      options?.signal?.throwIfAborted();
      try {
        return await withSession(init.pkcs11, fn);
      } catch (err) {
        if (err instanceof KmsRefusedError) throw err;
        if (err instanceof Pkcs11Error && /no key labelled/.test(err.message)) throw new KmsRefusedError(NAME, err.message, { cause: err });
        if (err instanceof Pkcs11Error && !/CKR_/.test(err.message)) throw new KmsUnavailableError(NAME, err.message, { cause: err });
        throw new KmsRefusedError(NAME, (err as Error).message, { cause: err });
      }
    }
    const current = (s: Pkcs11Session): number => {
      let v = 0;
      while (v < max && s.hasKey(`${init.label}.v${v + 1}`)) v++;
      return v;
    };
    const wrapIn = (s: Pkcs11Session, key: Uint8Array, options?: KmsOptions): WrappedKey => {
      let v = current(s);
      if (v === 0) {
        s.generateAesKey(`${init.label}.v1`);
        v = 1;
      }
      const iv = randomBytes(12);
      const ct = s.aesGcm("encrypt", `${init.label}.v${v}`, iv, contextAad(options?.context), key);
      return { kms: NAME, keyId: `${init.label}.v${v}`, ciphertext: new Uint8Array(Buffer.concat([iv, ct])) };
    };
    return {
      name: NAME, kind: "kms", apiVersion: PLUGIN_API_VERSION,
      async generateDataKey(options) {
        const plaintext = new Uint8Array(randomBytes(dataKeyBytes));
        return { plaintext, wrapped: await session((s) => wrapIn(s, plaintext, options), options) };
      },
      wrap: (key, options) => session((s) => wrapIn(s, key, options), options),
      unwrap: (w, options) => session((s) => {
        if (!w.keyId.startsWith(`${init.label}.v`) || !s.hasKey(w.keyId)) throw new KmsRefusedError(NAME, `unknown key ${w.keyId}`);
        if (w.ciphertext.length < 12 + 16) throw new KmsRefusedError(NAME, "wrapped key too short");
        try {
          return s.aesGcm("decrypt", w.keyId, w.ciphertext.subarray(0, 12), contextAad(options?.context), w.ciphertext.subarray(12));
        } catch (err) {
          throw new KmsRefusedError(NAME, `unwrap refused (tampered, or another context): ${(err as Error).message}`, { cause: err });
        }
      }, options),
      rotate: (options) => session((s) => {
        const next = current(s) + 1;
        s.generateAesKey(`${init.label}.v${next}`);
        return `${init.label}.v${next}`;
      }, options),
    };
  };
}
