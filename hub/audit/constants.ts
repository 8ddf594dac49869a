/** Audit log vocabulary and bounds. Units come last; each says what happens when reached. */
import { apiPageSizeMax } from "../../plugins/sdk/limits.ts";

/** Every cross-cluster operation the hub records. Others: `MalformedInputError` on append. */
export const AUDIT_KINDS = [
  "join",
  "attestation",
  "task-delegation",
  "agreement-change",
  "preemption",
  "key-rotation",
  "failover",
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** Largest `details` JSON per record. Larger: append refused with `MalformedInputError`. */
export const auditDetailsBytesMax = 16 * 1024;
/** Longest actor / subject. Longer: append refused with `MalformedInputError`. */
export const auditNameCharsMax = 512;
/** Records per page (GET /v1/audit and export batches). A larger ?limit= is capped. */
export const auditPageSizeMax = apiPageSizeMax;
export const auditPageSizeDefault = 100;
