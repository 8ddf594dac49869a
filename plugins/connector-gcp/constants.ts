/** Defaults for the GCP connector. */
export const metadataEndpointDefault = "http://metadata.google.internal";
/** Google's JWKS for identity tokens (RS256). */
export const googleJwksUrlDefault = "https://www.googleapis.com/oauth2/v3/certs";
/** How long a fetched JWKS is used when the response has no Cache-Control max-age. */
export const jwksCacheMsDefault = 3600_000;
/** Upper bound on a JWKS cache lifetime whatever max-age says. */
export const jwksCacheMsMax = 24 * 3600_000;
/** Keys accepted in one JWKS. More: refused. */
export const jwksKeysMax = 32;
export const TOKEN_CREDENTIAL = "gcp-identity-token";
export const IIT_FORMAT = "gcp-iit";
