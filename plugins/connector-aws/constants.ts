/** Defaults for the AWS connector (every one can be overridden in `init`). */

/** EC2 instance metadata service (IMDSv2). */
export const imdsEndpointDefault = "http://169.254.169.254";
/** Lifetime requested for an IMDSv2 session token (X-aws-ec2-metadata-token-ttl-seconds; AWS max 21600). */
export const imdsTokenTtlSeconds = 21_600;
/** Global STS endpoint (signing region us-east-1). Regional: https://sts.REGION.amazonaws.com. */
export const stsEndpointDefault = "https://sts.amazonaws.com";
export const stsRegionDefault = "us-east-1";
export const stsApiVersion = "2011-06-15";
/** The only request body the hub will forward to STS. */
export const getCallerIdentityBody = `Action=GetCallerIdentity&Version=${stsApiVersion}`;
/** Signed header carrying the join binding (like Vault's X-Vault-AWS-IAM-Server-ID). */
export const bindingHeader = "x-grey-binding";
/** A presigned GetCallerIdentity older (or newer) than this is refused by the hub. AWS itself allows 15 min. */
export const presignMaxAgeMs = 15 * 60_000;
/** Credential types this connector verifies. */
export const STS_CREDENTIAL = "aws-sts-get-caller-identity";
export const IID_CREDENTIAL = "aws-iid-document";
export const IID_FORMAT = "aws-iid";
