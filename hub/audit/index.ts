/** Hash-chained, hub-signed audit log of cross-cluster operations. */
export * from "./constants.ts";
export { AuditLog, canonicalJson, GENESIS_HASH, recordHash, verifyAuditLog, type AuditEntry, type AuditLogOptions, type AuditRecord, type AuditVerification, type VerifyOptions } from "./log.ts";
export { auditRoutes, type AuditRoutesDeps } from "./routes.ts";
