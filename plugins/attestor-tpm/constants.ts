/**
 * Limits and defaults of the TPM attestor. Units are last in every name.
 * When a limit is reached the operation fails with a TpmError; nothing is truncated silently.
 */

/** Largest command we send. TPM 2.0 devices advertise TPM_PT_MAX_COMMAND_SIZE, typically 4096. */
export const tpmCommandBytesMax = 4096;
/** Largest response we accept; a header announcing more is refused before reading the body. */
export const tpmResponseBytesMax = 4096;
/** Default bound on one command round trip (RSA key generation on slow hardware TPMs is the worst case). */
export const tpmReadTimeoutMsDefault = 30_000;
/** A command answered TPM_RC_RETRY/YIELDED/TESTING is sent at most this many times in all. */
export const tpmRetriesMax = 5;
/** Back-off before resending, multiplied by the attempt number. */
export const tpmRetryDelayMs = 5;
/** Bound on opening the transport (TCP connect / device open). */
export const tpmConnectTimeoutMsDefault = 5_000;
/** PCR values are re-read and the quote retaken at most this many times when PCRs change mid-collection. */
export const quoteAttemptsMax = 3;
/** Default PCRs quoted (SHA-256 bank): firmware/boot (0-7) and the IMA/application PCRs commonly used on Linux. */
export const quotePcrsDefault: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 10, 16, 23];
/** Number of PCRs in a bank (TPM PC Client profile). */
export const pcrCount = 24;
/** Qualifying data (nonce) bounds accepted for a quote: TPM2B_DATA holds at most a digest (sha256 → 32; sha512 → 64). */
export const quoteNonceBytesMin = 8;
export const quoteNonceBytesMax = 64;
/** NV_Read chunk: TPM_PT_NV_BUFFER_MAX is at least 512 on every TPM we know (1024 on most, swtpm 2048). */
export const nvReadChunkBytes = 512;
/** Largest NV index we read (an EK certificate is ~1–1.5 KiB; some vendors ship chains up to ~4 KiB). */
export const nvIndexBytesMax = 8192;
