/**
 * Bounds for agreements. Units come last in the name; each says what happens
 * when it is reached.
 */

/** Largest agreement document (YAML or JSON). Larger: refused before parsing, `AgreementInvalidError`. */
export const agreementDocumentBytesMax = 64 * 1024;
/** Problems reported for one document. More: the list ends with one "... and N more" problem. */
export const agreementProblemsMax = 100;
/** Agreements the store holds. Beyond: `applyAgreement` of a new pair fails with `AgreementLimitError`. */
export const agreementsMax = 10_000;
/** Versions kept per agreement. Beyond: the oldest versions are pruned (the current one is always kept). */
export const agreementVersionsKeptMax = 100;
/** Largest cpu limit: ten million cores. Larger: the field is refused. */
export const cpuMilliCoresMax = 10_000_000 * 1000;
/** Largest memory limit (4 PiB; keeps every byte count a safe integer). Larger: the field is refused. */
export const memoryBytesMax = 2 ** 52;
/** max_burst bounds: 1x (no burst) to 10x, resolution 0.001x. Outside: the field is refused. */
export const burstPermilleMin = 1000;
export const burstPermilleMax = 10_000;
/** Default max_burst when `scheduling.max_burst` is absent: no burst. */
export const burstPermilleDefault = 1000;
