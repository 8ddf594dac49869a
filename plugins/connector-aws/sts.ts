/**
 * STS over its Query API: the agent presigns sts:GetCallerIdentity with SigV4 (it never sends its
 * AWS secret), the hub replays the signed request to its configured STS endpoint and reads back
 * who signed it. IRSA: AssumeRoleWithWebIdentity (unsigned) trades a projected service-account
 * token for temporary credentials.
 */
import { ConnectorResponseError, platformFetch, type IoOptions } from "../sdk/connector.ts";
import { stsApiVersion } from "./constants.ts";
import type { AwsCredentials } from "./sigv4.ts";

/** Text of the first <tag>…</tag> (STS XML has no attributes on these elements). */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]{0,4096})</${tag}>`).exec(xml);
  return m ? unescapeXml(m[1]!) : undefined;
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

export interface CallerIdentity {
  arn: string;
  account: string;
  userId: string;
}

export function parseCallerIdentity(xml: string): CallerIdentity | undefined {
  if (!xml.includes("<GetCallerIdentityResult>")) return undefined;
  const arn = xmlText(xml, "Arn");
  const account = xmlText(xml, "Account");
  const userId = xmlText(xml, "UserId");
  return arn && account && userId ? { arn, account, userId } : undefined;
}

/** `<ErrorResponse><Error><Code>…` → "Code: Message". */
export function stsError(xml: string): string {
  return `${xmlText(xml, "Code") ?? "error"}: ${xmlText(xml, "Message") ?? "(no message)"}`;
}

/** arn:aws:sts::ACCT:assumed-role/NAME/SESSION → role name and canonical role ARN. */
export function roleOf(arn: string): { name: string; arn: string } | undefined {
  const assumed = /^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role\/([\w+=,.@-]+)\/[\w+=,.@-]+$/.exec(arn);
  if (assumed) return { name: assumed[3]!, arn: `arn:${assumed[1]}:iam::${assumed[2]}:role/${assumed[3]}` };
  const role = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/.exec(arn);
  return role ? { name: role[1]!, arn } : undefined;
}

export async function assumeRoleWithWebIdentity(
  fetchFn: typeof fetch,
  endpoint: string,
  req: { roleArn: string; sessionName: string; token: string },
  options: IoOptions = {},
): Promise<AwsCredentials & { expiration?: string }> {
  const body = new URLSearchParams({ Action: "AssumeRoleWithWebIdentity", RoleArn: req.roleArn, RoleSessionName: req.sessionName, WebIdentityToken: req.token, Version: stsApiVersion }).toString();
  const r = await platformFetch(fetchFn, "aws", `${endpoint}/`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" }, body }, options);
  const xml = r.text();
  if (r.status !== 200) throw new ConnectorResponseError("aws", `${endpoint}/ AssumeRoleWithWebIdentity`, r.status, stsError(xml));
  const accessKeyId = xmlText(xml, "AccessKeyId");
  const secretAccessKey = xmlText(xml, "SecretAccessKey");
  const sessionToken = xmlText(xml, "SessionToken");
  if (!accessKeyId || !secretAccessKey || !sessionToken) throw new ConnectorResponseError("aws", `${endpoint}/`, r.status, "AssumeRoleWithWebIdentity response without Credentials");
  const expiration = xmlText(xml, "Expiration");
  return { accessKeyId, secretAccessKey, sessionToken, ...(expiration ? { expiration } : {}) };
}
