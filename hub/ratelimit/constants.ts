/** Rate limiter defaults and bounds. Units come last; each says what happens when reached. */

/** Keys (clients/peers) tracked at once. Beyond: the least recently seen key is forgotten (it starts again with a full bucket). */
export const rateLimitKeysMaxDefault = 10_000;
/** Requests per second each key earns, and the bucket size (the burst a quiet key may send at once). */
export const rateLimitPerSecondDefault = 20;
export const rateLimitBurstDefault = 40;
/** Upper bounds checked when a limiter is built. Larger: the factory throws. */
export const rateLimitKeysMax = 1_000_000;
export const rateLimitBurstMax = 1_000_000;
