/** Defaults for the Azure connector. */
export const imdsEndpointDefault = "http://169.254.169.254";
export const tokenApiVersion = "2018-02-01";
export const attestedApiVersion = "2020-09-01";
/** Resource (audience) the managed-identity token is requested for. */
export const resourceDefault = "https://management.azure.com/";
/** Entra ID signing keys. */
export const entraJwksUrlDefault = "https://login.microsoftonline.com/common/discovery/v2.0/keys";
export const MSI_CREDENTIAL = "azure-managed-identity";
export const IMDS_FORMAT = "azure-imds";
/** Largest access token accepted. */
export const accessTokenBytesMax = 16 * 1024;
