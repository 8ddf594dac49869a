/**
 * KMS on the host's TPM 2.0 (or swtpm): a data key is sealed to the TPM — TPM2_Create of a
 * keyedhash data object under a storage primary key (ECC P-256, AES-128-CFB, owner hierarchy),
 * opened with TPM2_Load + TPM2_Unseal. The sealed blob is only usable on this TPM.
 *
 * KEK versions: the storage primary is re-derived from the owner seed and its template, whose
 * `unique` field is sha256("grey-kms-tpm/vN"); each N is another key, and every version can be
 * re-derived, so wraps made before a rotation still unseal. rotate() moves new wraps to N+1 for
 * this instance; set `version` in the config to make a rotation permanent.
 *
 * wrapped.ciphertext = TPM2B_PRIVATE || TPM2B_PUBLIC of the sealed object; the sealed data is
 * sha256(context) || dataKey, and unwrap compares the prefix (context binding, as AAD).
 * A TPM that cannot be reached is KmsUnavailableError; a blob the TPM refuses (TPM_RC_INTEGRITY
 * after tampering, another TPM) is KmsRefusedError.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { parseTpmSpec } from "../attestor-tpm/attestor.ts";
import { TpmError } from "../attestor-tpm/errors.ts";
import { TpmReader, TpmWriter } from "../attestor-tpm/marshal.ts";
import { TPM_ALG, TPM_ECC_NIST_P256, TPM_RH, TPMA_OBJECT as A } from "../attestor-tpm/spec.ts";
import { passwordSession, Tpm } from "../attestor-tpm/tpm.ts";
import { deviceTransport, tcpTransport } from "../attestor-tpm/transport.ts";
import { GreyError } from "../sdk/errors.ts";
import { contextAad, dataKeyBytes, KmsRefusedError, KmsUnavailableError, type Kms, type KmsComponents, type KmsOptions, type WrappedKey } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";

export interface TpmKmsInit {
  /** "swtpm:HOST:PORT" or a device such as /dev/tpmrm0. */
  tpm: string;
  /** Current KEK version (default 1). */
  version?: number;
  readTimeoutMs?: number;
}

const NAME = "kms-tpm";
export const kekVersionMax = 1_000_000;
const KEY_ID = /^tpm\/srk-ecc\/v(\d{1,7})$/;
const keyId = (v: number) => `tpm/srk-ecc/v${v}`;
const digest = (o?: KmsOptions) => createHash("sha256").update(contextAad(o?.context)).digest();

/** Storage primary template (TPMT_PUBLIC): restricted ECC P-256 decryption key, AES-128-CFB. */
export function storagePrimaryTemplate(version: number): Uint8Array {
  const unique = createHash("sha256").update(`grey-kms-tpm/v${version}`).digest();
  const attrs = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt;
  return new TpmWriter(512)
    .u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(attrs).tpm2b()
    .u16(TPM_ALG.AES).u16(128).u16(TPM_ALG.CFB).u16(TPM_ALG.NULL).u16(TPM_ECC_NIST_P256).u16(TPM_ALG.NULL)
    .tpm2b(unique).tpm2b()
    .finish();
}

/** Sealed data object template: keyedhash, no scheme, empty auth, bound to this TPM and parent. */
export function sealedTemplate(): Uint8Array {
  return new TpmWriter(128).u16(TPM_ALG.KEYEDHASH).u16(TPM_ALG.SHA256).u32(A.fixedTPM | A.fixedParent | A.userWithAuth | A.noDA).tpm2b().u16(TPM_ALG.NULL).tpm2b().finish();
}

export function tpmKms(init: TpmKmsInit) {
  const spec = parseTpmSpec(init.tpm);
  return (_components: KmsComponents): Kms => {
    let current = init.version ?? 1;

    async function withPrimary<T>(version: number | undefined, use: (tpm: Tpm, parent: number) => Promise<T>, options?: KmsOptions): Promise<T> {
      const call = options?.signal ? { signal: options.signal } : {};
      const tpm = new Tpm({ transport: spec.kind === "tcp" ? tcpTransport({ host: spec.host, port: spec.port }) : deviceTransport({ path: spec.path }), ...(init.readTimeoutMs ? { readTimeoutMs: init.readTimeoutMs } : {}) });
      try {
        await tpm.ensureStarted(call);
        if (version === undefined) return await use(tpm, 0);
        const srk = await tpm.createPrimary(TPM_RH.OWNER, storagePrimaryTemplate(version), call);
        try {
          return await use(tpm, srk.handle);
        } finally {
          await tpm.flushContext(srk.handle, call).catch(() => {});
        }
      } catch (err) {
        if (err instanceof KmsRefusedError || err instanceof KmsUnavailableError) throw err;
        if (err instanceof TpmError && (err.kind === "response-code" || err.kind === "malformed-response")) throw new KmsRefusedError(NAME, `TPM refused: ${err.message}`, { cause: err });
        if (err instanceof GreyError && !(err instanceof TpmError)) throw err;
        throw new KmsUnavailableError(NAME, `TPM ${init.tpm}: ${(err as Error).message}`, { cause: err });
      } finally {
        await tpm.close().catch(() => {});
      }
    }

    const wrap = (dataKey: Uint8Array, options?: KmsOptions): Promise<WrappedKey> => {
      const v = current;
      return withPrimary(v, async (tpm, srk) => {
        const data = Buffer.concat([digest(options), dataKey]);
        const sealed = await tpm.createSealed(srk, passwordSession, sealedTemplate(), data, options?.signal ? { signal: options.signal } : {});
        data.fill(0);
        return { kms: NAME, keyId: keyId(v), ciphertext: new TpmWriter(4096).tpm2b(sealed.privateBlob).tpm2b(sealed.publicArea).finish() };
      }, options);
    };

    return {
      name: NAME, kind: "kms", apiVersion: PLUGIN_API_VERSION,
      async generateDataKey(options) {
        const plaintext = new Uint8Array(randomBytes(dataKeyBytes));
        return { plaintext, wrapped: await wrap(plaintext, options) };
      },
      wrap,
      async unwrap(w, options) {
        const m = KEY_ID.exec(w.keyId);
        const version = m && Number(m[1]) >= 1 && Number(m[1]) <= kekVersionMax ? Number(m[1]) : undefined;
        // The TPM is opened first: an unreachable TPM reports itself before the key id is judged.
        return withPrimary(version, async (tpm, srk) => {
          if (version === undefined) throw new KmsRefusedError(NAME, `unknown key ${w.keyId}`);
          let priv: Uint8Array, pub: Uint8Array;
          try {
            const r = new TpmReader(w.ciphertext, "sealed key");
            priv = r.tpm2b();
            pub = r.tpm2b();
            r.end();
          } catch (err) {
            throw new KmsRefusedError(NAME, "wrapped key is not a sealed TPM object", { cause: err });
          }
          const call = options?.signal ? { signal: options.signal } : {};
          const obj = await tpm.load(srk, passwordSession, priv, pub, call);
          let out: Uint8Array;
          try {
            out = await tpm.unseal(obj.handle, passwordSession, call);
          } finally {
            await tpm.flushContext(obj.handle, call).catch(() => {});
          }
          if (out.byteLength !== 32 + dataKeyBytes) throw new KmsRefusedError(NAME, "sealed object is not a grey data key");
          if (!timingSafeEqual(out.subarray(0, 32), digest(options))) throw new KmsRefusedError(NAME, "sealed for another context");
          return out.slice(32);
        }, options);
      },
      async rotate(options) {
        if (current >= kekVersionMax) throw new KmsRefusedError(NAME, `KEK version limit ${kekVersionMax} reached`);
        await withPrimary(current + 1, async () => undefined, options); // the new version must be derivable now
        current++;
        return keyId(current);
      },
    };
  };
}
