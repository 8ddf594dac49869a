/** Bounds for metering and billing. Units come last; each says what happens when reached. */

/** Longest invoice period. Longer: `InvoicePeriodError`. */
export const invoicePeriodMsMax = 366 * 24 * 3600_000;
/** Largest usage quantity in one record (SQLite INTEGER is signed 64-bit). Larger: `MalformedInputError`. */
export const usageQuantityMax = 2n ** 62n;
/** Length of a usage record id / subtask id. Longer: `MalformedInputError`. */
export const usageIdCharsMax = 128;
/** Rate card files read from a rate card directory. More: `RateCardError`. */
export const rateCardFilesMax = 1000;
/** Largest rate card file. Larger: `RateCardError`. */
export const rateCardBytesMax = 64 * 1024;
/** Largest price in one rate card line, in minor units. Larger: `RateCardError`. */
export const priceMinorUnitsMax = 1_000_000_000_000;
