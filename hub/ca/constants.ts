/** Bounds of the federation CA. Units last. */

/** CA certificate lifetime. */
export const caCertTtlMs = 10 * 365 * 24 * 3600_000;
/** Hub server/client and admin client certificate lifetime. */
export const hubCertTtlMs = 365 * 24 * 3600_000;
export const adminCertTtlMs = 365 * 24 * 3600_000;
/** Longest member certificate the CA issues (members renew; shorter is better). Longer: refused. */
export const memberCertTtlMsMax = 30 * 24 * 3600_000;
/** notBefore is set this far in the past, so a peer whose clock lags a little still accepts a fresh certificate. */
export const certBackdateMs = 60_000;
/** Largest CSR accepted. Larger: refused as malformed. */
export const csrBytesMax = 8192;
/** Random serial length (RFC 5280 allows up to 20 octets; the top bit is cleared to keep it positive). */
export const serialBytes = 16;
