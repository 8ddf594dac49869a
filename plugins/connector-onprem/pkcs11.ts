/**
 * PKCS#11 (HSM) access through pkcs11js: find a token by label, log in, and use keys by label —
 * ECDSA P-256 signing (connector-onprem proof of possession) and AES-256-GCM (kms-hsm).
 * The native module is loaded on first use only. A module is initialised once per process and
 * shared (C_Initialize may run once per process); sessions are per use.
 */
import { createHash } from "node:crypto";
import { GreyError } from "../sdk/errors.ts";

export class Pkcs11Error extends GreyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_PKCS11", message, options);
  }
}

export interface Pkcs11Config {
  /** Path of the PKCS#11 module (.so), e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  tokenLabel: string;
  pin: string;
}

type P11 = typeof import("pkcs11js");
type Lib = InstanceType<P11["PKCS11"]>;
const modules = new Map<string, { p11: P11; lib: Lib }>();

async function load(module: string): Promise<{ p11: P11; lib: Lib }> {
  const have = modules.get(module);
  if (have) return have;
  let p11: P11;
  try {
    p11 = await import("pkcs11js");
  } catch (err) {
    throw new Pkcs11Error(`pkcs11js unavailable: ${(err as Error).message}`, { cause: err });
  }
  const lib = new p11.PKCS11();
  try {
    lib.load(module);
    lib.C_Initialize();
  } catch (err) {
    throw new Pkcs11Error(`cannot load PKCS#11 module ${module}: ${(err as Error).message}`, { cause: err });
  }
  const entry = { p11, lib };
  modules.set(module, entry);
  return entry;
}

const P256_OID_DER = Buffer.from("06082a8648ce3d030107", "hex");
const EC_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");

/** A logged-in session on one token. Call close() when done. */
export class Pkcs11Session {
  private constructor(private readonly p11: P11, private readonly lib: Lib, private readonly session: Buffer) {}

  static async open(cfg: Pkcs11Config): Promise<Pkcs11Session> {
    const { p11, lib } = await load(cfg.module);
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === cfg.tokenLabel);
      if (!slot) throw new Pkcs11Error(`no token labelled "${cfg.tokenLabel}" in ${cfg.module}`);
      const session = lib.C_OpenSession(slot, p11.CKF_SERIAL_SESSION | p11.CKF_RW_SESSION);
      try {
        lib.C_Login(session, p11.CKU_USER, cfg.pin);
      } catch (err) {
        if (!String((err as Error).message).includes("CKR_USER_ALREADY_LOGGED_IN")) {
          lib.C_CloseSession(session);
          throw err;
        }
      }
      return new Pkcs11Session(p11, lib, session);
    } catch (err) {
      if (err instanceof Pkcs11Error) throw err;
      throw new Pkcs11Error(`token "${cfg.tokenLabel}": ${(err as Error).message}`, { cause: err });
    }
  }

  close(): void {
    try {
      this.lib.C_CloseSession(this.session);
    } catch {
      // already closed
    }
  }

  find(label: string, cls: number): Buffer | undefined {
    const { p11, lib, session } = this;
    lib.C_FindObjectsInit(session, [{ type: p11.CKA_LABEL, value: label }, { type: p11.CKA_CLASS, value: cls }]);
    const found = lib.C_FindObjects(session, 1)[0];
    lib.C_FindObjectsFinal(session);
    return found;
  }

  private require(label: string, cls: number): Buffer {
    const h = this.find(label, cls);
    if (!h) throw new Pkcs11Error(`no key labelled "${label}" on the token`);
    return h;
  }

  /** Generate a token-resident, non-extractable ECDSA P-256 key pair. */
  generateEcKey(label: string): void {
    const { p11, lib, session } = this;
    lib.C_GenerateKeyPair(session, { mechanism: p11.CKM_EC_KEY_PAIR_GEN },
      [{ type: p11.CKA_LABEL, value: label }, { type: p11.CKA_TOKEN, value: true }, { type: p11.CKA_VERIFY, value: true }, { type: p11.CKA_EC_PARAMS, value: P256_OID_DER }],
      [{ type: p11.CKA_LABEL, value: label }, { type: p11.CKA_TOKEN, value: true }, { type: p11.CKA_SIGN, value: true }, { type: p11.CKA_PRIVATE, value: true }, { type: p11.CKA_SENSITIVE, value: true }, { type: p11.CKA_EXTRACTABLE, value: false }]);
  }

  /** DER SPKI of an EC P-256 public key (from CKA_EC_POINT, a DER OCTET STRING around 04||X||Y). */
  ecPublicKey(label: string): Uint8Array {
    const { p11, lib, session } = this;
    const [attr] = lib.C_GetAttributeValue(session, this.require(label, p11.CKO_PUBLIC_KEY), [{ type: p11.CKA_EC_POINT }]);
    let point = attr!.value as Buffer;
    if (point[0] === 0x04 && point[1] === 0x41) point = point.subarray(2);
    if (point.length !== 65) throw new Pkcs11Error(`key "${label}" is not an uncompressed P-256 point`);
    return new Uint8Array(Buffer.concat([EC_SPKI_PREFIX, point]));
  }

  /** ECDSA P-256 over SHA-256(data): raw r||s (64 bytes). */
  signEcdsa(label: string, data: Uint8Array): Uint8Array {
    const { p11, lib, session } = this;
    lib.C_SignInit(session, { mechanism: p11.CKM_ECDSA }, this.require(label, p11.CKO_PRIVATE_KEY));
    return new Uint8Array(lib.C_Sign(session, createHash("sha256").update(data).digest(), Buffer.alloc(128)));
  }

  /** Generate a token-resident, non-extractable AES-256 key. */
  generateAesKey(label: string): void {
    const { p11, lib, session } = this;
    lib.C_GenerateKey(session, { mechanism: p11.CKM_AES_KEY_GEN }, [
      { type: p11.CKA_LABEL, value: label }, { type: p11.CKA_TOKEN, value: true }, { type: p11.CKA_VALUE_LEN, value: 32 },
      { type: p11.CKA_ENCRYPT, value: true }, { type: p11.CKA_DECRYPT, value: true }, { type: p11.CKA_SENSITIVE, value: true }, { type: p11.CKA_EXTRACTABLE, value: false },
    ]);
  }

  hasKey(label: string): boolean {
    return this.find(label, this.p11.CKO_SECRET_KEY) !== undefined;
  }

  /** AES-GCM with a 12-byte IV and 128-bit tag; output is ciphertext || tag. */
  aesGcm(op: "encrypt" | "decrypt", label: string, iv: Uint8Array, aad: Uint8Array, data: Uint8Array): Uint8Array {
    const { p11, lib, session } = this;
    const key = this.require(label, p11.CKO_SECRET_KEY);
    const mech = { mechanism: p11.CKM_AES_GCM, parameter: { type: p11.CK_PARAMS_GCM, iv: Buffer.from(iv), aad: Buffer.from(aad), ivBits: iv.length * 8, tagBits: 128 } };
    const out = Buffer.alloc(data.length + 32);
    if (op === "encrypt") {
      lib.C_EncryptInit(session, mech, key);
      return new Uint8Array(lib.C_Encrypt(session, Buffer.from(data), out));
    }
    lib.C_DecryptInit(session, mech, key);
    return new Uint8Array(lib.C_Decrypt(session, Buffer.from(data), out));
  }
}

/** Open, run, close. */
export async function withSession<T>(cfg: Pkcs11Config, fn: (s: Pkcs11Session) => T | Promise<T>): Promise<T> {
  const s = await Pkcs11Session.open(cfg);
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}
