/** TPM 2.0 constants from TCG TPM Library Part 2 (Structures). Only the values this client uses. */

export const TPM_ST = { NO_SESSIONS: 0x8001, SESSIONS: 0x8002, ATTEST_QUOTE: 0x8018, HASHCHECK: 0x8024 } as const;

export const TPM_CC = {
  CreatePrimary: 0x0131,
  NV_Read: 0x014e,
  ActivateCredential: 0x0147,
  Startup: 0x0144,
  PolicySecret: 0x0151,
  Create: 0x0153,
  Load: 0x0157,
  Unseal: 0x015e,
  Quote: 0x0158,
  Sign: 0x015d,
  FlushContext: 0x0165,
  NV_ReadPublic: 0x0169,
  ReadPublic: 0x0173,
  StartAuthSession: 0x0176,
  GetRandom: 0x017b,
  PCR_Read: 0x017e,
  PCR_Extend: 0x0182,
} as const;

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAPSS: 0x0016,
  ECDSA: 0x0018,
  ECC: 0x0023,
  CFB: 0x0043,
} as const;

export const TPM_ECC_NIST_P256 = 0x0003;

export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009, // TPM_RS_PW: the password pseudo-session
  ENDORSEMENT: 0x4000000b,
} as const;

/** TCG EK Credential Profile: NV indices of the EK certificates for the default (low range) templates. */
export const TPM_NV_EK_CERT = { rsa: 0x01c00002, ecc: 0x01c0000a } as const;

export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;
export const TPM_SE = { HMAC: 0x00, POLICY: 0x01 } as const;

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
} as const;

export const TPMA_SESSION_continueSession = 0x01;

/** TPM_GENERATED_VALUE: first field of every TPMS_ATTEST the TPM signs. */
export const TPM_GENERATED_VALUE = 0xff544347;

export type HashName = "sha1" | "sha256" | "sha384" | "sha512";

export const hashAlgs: Record<HashName, { alg: number; bytes: number }> = {
  sha1: { alg: TPM_ALG.SHA1, bytes: 20 },
  sha256: { alg: TPM_ALG.SHA256, bytes: 32 },
  sha384: { alg: TPM_ALG.SHA384, bytes: 48 },
  sha512: { alg: TPM_ALG.SHA512, bytes: 64 },
};

export function hashByAlg(alg: number): HashName | undefined {
  for (const [name, h] of Object.entries(hashAlgs)) if (h.alg === alg) return name as HashName;
  return undefined;
}
