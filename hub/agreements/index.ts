/** Resource-sharing agreements: parsing, storage, admission policy and HTTP routes. */
export * from "./constants.ts";
export * from "./errors.ts";
export { admit, burstCeiling, priorityRank, runningSubtask, type AdmitRequest, type Admission, type Demand, type ProviderUsage, type RunningSubtask } from "./admission.ts";
export { errorResponse } from "./http.ts";
export { BILLING_MODELS, DEFAULT_PRIORITY, parseAgreement, PRIORITIES, type AgreementTerms, type BillingModel, type ParseOptions, type Priority } from "./parse.ts";
export { agreementRoutes, identityUri, type AgreementRoutesDeps, type AgreementRoutesEnv } from "./routes.ts";
export { agreementId, AgreementStore, type Agreement, type ApplyResult } from "./store.ts";
export { decimal, formatBytes, formatMilliCores, formatPermille, parseBurst, parseBytes, parseCpu } from "./units.ts";
