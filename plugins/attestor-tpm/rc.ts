/**
 * TPM_RC decoding (TCG TPM Library Part 2, section 6.6). A response code is either format 0
 * (a plain error or warning number) or format 1 (an error number plus the parameter, handle or
 * session it refers to).
 */

const fmt0Errors: Record<number, string> = {
  0x000: "INITIALIZE", 0x001: "FAILURE", 0x003: "SEQUENCE", 0x00b: "PRIVATE", 0x019: "HMAC",
  0x020: "DISABLED", 0x021: "EXCLUSIVE", 0x024: "AUTH_TYPE", 0x025: "AUTH_MISSING", 0x026: "POLICY",
  0x027: "PCR", 0x028: "PCR_CHANGED", 0x02d: "UPGRADE", 0x02e: "TOO_MANY_CONTEXTS",
  0x02f: "AUTH_UNAVAILABLE", 0x030: "REBOOT", 0x031: "UNBALANCED", 0x042: "COMMAND_SIZE",
  0x043: "COMMAND_CODE", 0x044: "AUTHSIZE", 0x045: "AUTH_CONTEXT", 0x046: "NV_RANGE", 0x047: "NV_SIZE",
  0x048: "NV_LOCKED", 0x049: "NV_AUTHORIZATION", 0x04a: "NV_UNINITIALIZED", 0x04b: "NV_SPACE",
  0x04c: "NV_DEFINED", 0x050: "BAD_CONTEXT", 0x051: "CPHASH", 0x052: "PARENT", 0x053: "NEEDS_TEST",
  0x054: "NO_RESULT", 0x055: "SENSITIVE",
};

const fmt0Warnings: Record<number, string> = {
  0x001: "CONTEXT_GAP", 0x002: "OBJECT_MEMORY", 0x003: "SESSION_MEMORY", 0x004: "MEMORY",
  0x005: "SESSION_HANDLES", 0x006: "OBJECT_HANDLES", 0x007: "LOCALITY", 0x008: "YIELDED",
  0x009: "CANCELED", 0x00a: "TESTING", 0x010: "REFERENCE_H0", 0x011: "REFERENCE_H1",
  0x012: "REFERENCE_H2", 0x018: "REFERENCE_S0", 0x019: "REFERENCE_S1", 0x01a: "REFERENCE_S2",
  0x020: "NV_RATE", 0x021: "LOCKOUT", 0x022: "RETRY", 0x023: "NV_UNAVAILABLE",
};

const fmt1Errors: Record<number, string> = {
  0x01: "ASYMMETRIC", 0x02: "ATTRIBUTES", 0x03: "HASH", 0x04: "VALUE", 0x05: "HIERARCHY",
  0x07: "KEY_SIZE", 0x08: "MGF", 0x09: "MODE", 0x0a: "TYPE", 0x0b: "HANDLE", 0x0c: "KDF", 0x0d: "RANGE",
  0x0e: "AUTH_FAIL", 0x0f: "NONCE", 0x10: "PP", 0x12: "SCHEME", 0x15: "SIZE", 0x16: "SYMMETRIC",
  0x17: "TAG", 0x18: "SELECTOR", 0x1a: "INSUFFICIENT", 0x1b: "SIGNATURE", 0x1c: "KEY",
  0x1d: "POLICY_FAIL", 0x1f: "INTEGRITY", 0x20: "TICKET", 0x21: "RESERVED_BITS", 0x22: "BAD_AUTH",
  0x23: "EXPIRED", 0x24: "POLICY_CC", 0x25: "BINDING", 0x26: "CURVE", 0x27: "ECC_POINT",
};

export interface DecodedRc {
  /** Stable name like "TPM_RC_INTEGRITY"; "TPM_RC_UNKNOWN_0x…" for codes not in the table. */
  readonly name: string;
  /** The code without its parameter/handle/session number (compare against this, not the raw rc). */
  readonly base: number;
  readonly warning: boolean;
  /** For format-1 codes: which parameter (1-based), handle or session the error refers to. */
  readonly subject?: { readonly kind: "parameter" | "handle" | "session"; readonly index: number };
}

export function decodeRc(rc: number): DecodedRc {
  const unknown = (base: number) => `TPM_RC_UNKNOWN_0x${base.toString(16).padStart(3, "0")}`;
  if (rc & 0x080) {
    const number = rc & 0x03f;
    const base = 0x080 | number;
    const name = fmt1Errors[number] ? `TPM_RC_${fmt1Errors[number]}` : unknown(base);
    const n = (rc >> 8) & 0xf;
    if (rc & 0x040) return { name, base, warning: false, subject: { kind: "parameter", index: n } };
    if (n === 0) return { name, base, warning: false };
    if (n & 0x8) return { name, base, warning: false, subject: { kind: "session", index: n & 0x7 } };
    return { name, base, warning: false, subject: { kind: "handle", index: n } };
  }
  const base = rc & 0xfff;
  if ((rc & 0x100) === 0) return { name: `TPM_RC_TPM12_0x${rc.toString(16)}`, base, warning: false };
  const number = rc & 0x07f;
  if (rc & 0x800) {
    return { name: fmt0Warnings[number] ? `TPM_RC_${fmt0Warnings[number]}` : unknown(base), base, warning: true };
  }
  return { name: fmt0Errors[number] ? `TPM_RC_${fmt0Errors[number]}` : unknown(base), base, warning: false };
}

/** Base codes worth naming in calling code. */
export const TPM_RC = {
  INITIALIZE: 0x100,
  PCR_CHANGED: 0x128,
  VALUE: 0x084,
  HANDLE: 0x08b,
  AUTH_FAIL: 0x08e,
  POLICY_FAIL: 0x09d,
  INTEGRITY: 0x09f,
  BAD_AUTH: 0x0a2,
  OBJECT_MEMORY: 0x902,
  YIELDED: 0x908,
  TESTING: 0x90a,
  RETRY: 0x922,
} as const;
