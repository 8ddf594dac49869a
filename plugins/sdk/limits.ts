/**
 * Every bound in one place. Units come last in the name. Each constant says
 * what happens when the limit is reached.
 */

/** Largest CBOR frame accepted on any protocol stream. Larger: stream reset, `MessageTooLargeError`. */
export const wireMessageBytesMax = 64 * 1024;
/** Largest evidence blob inside a join/renew request. Larger: join refused. */
export const evidenceBytesMax = 48 * 1024;
/** How long one request/response exchange on a protocol stream may take. Then: stream aborted. */
export const streamExchangeTimeoutMs = 10_000;
/** Inbound streams per protocol the hub serves at once. Beyond: new streams are refused by libp2p. */
export const inboundStreamsPerProtocolMax = 256;

/** Dialing the hub: attempts before `RetriesExhaustedError`, with exponential backoff between. */
export const dialAttemptsMax = 8;
export const dialBackoffBaseMs = 250;
export const dialBackoffCapMs = 5_000;
/** DHT provider lookups: attempts before giving up (first lookup after start often finds nothing). */
export const findProvidersAttemptsMax = 10;
export const findProvidersTimeoutMs = 5_000;

/** Peers listed to an agent in one heartbeat reply. More members: the list is truncated (sorted by cluster id). */
export const peersPerHeartbeatMax = 256;
/** Multiaddrs recorded per member. Extra: dropped. */
export const multiaddrsPerPeerMax = 16;
/** Join tokens that may be outstanding (unused, unexpired). Beyond: `token create` fails. */
export const outstandingTokensMax = 10_000;
/** Join token lifetime bounds. */
export const tokenTtlMsMax = 7 * 24 * 3600_000;
export const tokenTtlMsDefault = 3600_000;

/** Member certificate lifetime (short-lived; renewed at `certRenewFraction` of lifetime). */
export const memberCertTtlMsDefault = 3600_000;
export const memberCertTtlMsMin = 10_000;
export const certRenewFraction = 0.66;
/** Hub nonce validity for answering a join/renew challenge. Later: evidence refused as stale. */
export const nonceTtlMs = 30_000;

/** Default heartbeat period and the failure thresholds derived from it. */
export const heartbeatIntervalMsDefault = 2_000;
/** A member that misses this many periods is "suspect", twice as many: "offline". */
export const heartbeatMissedSuspect = 3;

/** HTTP API: largest request body. Larger: 413. */
export const apiBodyBytesMax = 1024 * 1024;
/** HTTP API: page size for list endpoints (default and cap). */
export const apiPageSizeDefault = 100;
export const apiPageSizeMax = 1000;
