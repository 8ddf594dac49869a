/** Limits and defaults of the attestation policy. */

/** A policy file larger than this is refused before parsing. */
export const policyFileBytesMax = 256 * 1024;
/** A trust-root file (PEM bundle / JWKS) larger than this is refused. */
export const rootsFileBytesMax = 512 * 1024;
/** Allowed values per list (PCR values, AK names, measurements...). */
export const allowListItemsMax = 256;
/** Evidence age limit when a boundary does not set maxAge. */
export const maxAgeMsDefault = 5 * 60_000;
/** Upper bound for resultTtl: a result older than this must be renewed. */
export const resultTtlMsMax = 7 * 24 * 3600_000;
