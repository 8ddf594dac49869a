/**
 * AWS Signature Version 4 (header form), as specified in the AWS General Reference
 * "Signature Version 4 signing process" and checked against AWS's published test suite
 * (sigv4.test.ts). Used to sign sts:GetCallerIdentity (connector) and KMS calls (kms-aws).
 */
import { createHash, createHmac } from "node:crypto";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  url: string;
  /** Headers to send and sign (host and x-amz-date are added). */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  region: string;
  service: string;
  /** Signing time (ms since epoch). */
  now: number;
}

const sha256hex = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 percent-encoding as SigV4 wants it (unreserved: A-Z a-z 0-9 - _ . ~). */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function amzDate(now: number): string {
  return new Date(now).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function canonicalQuery(u: URL): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of u.searchParams) pairs.push([uriEncode(k), uriEncode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function canonicalPath(u: URL): string {
  const segments = u.pathname.split("/").map((s) => uriEncode(decodeURIComponent(s)));
  return segments.join("/") || "/";
}

function canonicalHeaders(headers: Record<string, string>): { names: string; block: string } {
  const byName = new Map<string, string[]>();
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    byName.set(name, [...(byName.get(name) ?? []), v.trim().replace(/\s+/g, " ")]);
  }
  const names = [...byName.keys()].sort();
  return { names: names.join(";"), block: names.map((n) => `${n}:${byName.get(n)!.join(",")}\n`).join("") };
}

export interface SignedParts {
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
  signedHeaders: string;
  scope: string;
}

/** The intermediate values (exposed for tests and for verifiers that re-derive them). */
export function signParts(input: SignInput, creds: AwsCredentials, headers: Record<string, string>): SignedParts {
  const u = new URL(input.url);
  const date = headers["x-amz-date"]!;
  const day = date.slice(0, 8);
  const { names, block } = canonicalHeaders(headers);
  const canonicalRequest = [input.method.toUpperCase(), canonicalPath(u), canonicalQuery(u), block, names, sha256hex(input.body ?? "")].join("\n");
  const scope = `${day}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", date, scope, sha256hex(canonicalRequest)].join("\n");
  const kDate = hmac(`AWS4${creds.secretAccessKey}`, day);
  const kSigning = hmac(hmac(hmac(kDate, input.region), input.service), "aws4_request");
  const signature = createHmac("sha256", kSigning).update(stringToSign).digest("hex");
  return { canonicalRequest, stringToSign, signature, signedHeaders: names, scope };
}

/** Returns every header to send: the caller's, host, x-amz-date, x-amz-security-token (if any) and authorization. */
export function signV4(input: SignInput, creds: AwsCredentials): Record<string, string> {
  const u = new URL(input.url);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers ?? {})) headers[k.toLowerCase()] = v;
  headers.host ??= u.host;
  headers["x-amz-date"] ??= amzDate(input.now);
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const p = signParts(input, creds, headers);
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${p.scope}, SignedHeaders=${p.signedHeaders}, Signature=${p.signature}`;
  return headers;
}

export interface ParsedAuthorization {
  accessKeyId: string;
  day: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

/** Parse an `Authorization: AWS4-HMAC-SHA256 ...` header; undefined when it is not one. */
export function parseAuthorization(value: string | undefined): ParsedAuthorization | undefined {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(value ?? "");
  if (!m) return undefined;
  return { accessKeyId: m[1]!, day: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(";"), signature: m[6]! };
}

/** Parse an x-amz-date value ("20150830T123600Z") to ms; NaN when malformed. */
export function parseAmzDate(value: string | undefined): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? "");
  return m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
}
