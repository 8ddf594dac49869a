/**
 * Loopback servers speaking the AWS wire protocols the connector and kms-aws use, for tests and
 * the compliance suite: IMDSv2 (token-required mode, like an instance with HttpTokens=required)
 * and the STS Query API (GetCallerIdentity verifying SigV4 with the caller's secret,
 * AssumeRoleWithWebIdentity), answering with the real XML shapes.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { parseAmzDate, parseAuthorization, signParts } from "./sigv4.ts";

export interface ImdsMockInit {
  document: Uint8Array;
  signature: string;
  rsa2048: string;
  role?: { name: string; accessKeyId: string; secretAccessKey: string; token: string };
  publicIpv4?: string;
}

export function imdsMock(init: ImdsMockInit) {
  const tokens = new Set<string>();
  const calls: string[] = [];
  const doc = JSON.parse(new TextDecoder().decode(init.document)) as Record<string, string>;
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    fetch(req) {
      const u = new URL(req.url);
      calls.push(`${req.method} ${u.pathname}`);
      if (u.pathname === "/latest/api/token") {
        if (req.method !== "PUT") return new Response("", { status: 405 });
        const ttl = Number(req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"));
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return new Response("", { status: 400 });
        const t = randomBytes(32).toString("base64");
        tokens.add(t);
        return new Response(t, { headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) } });
      }
      if (req.method !== "GET") return new Response("", { status: 405 });
      if (!tokens.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) return new Response("", { status: 401 });
      const paths: Record<string, string | Uint8Array | undefined> = {
        "/latest/dynamic/instance-identity/document": init.document,
        "/latest/dynamic/instance-identity/signature": init.signature,
        "/latest/dynamic/instance-identity/rsa2048": init.rsa2048,
        "/latest/meta-data/placement/region": doc.region,
        "/latest/meta-data/placement/availability-zone": doc.availabilityZone,
        "/latest/meta-data/local-ipv4": doc.privateIp,
        "/latest/meta-data/public-ipv4": init.publicIpv4,
        "/latest/meta-data/iam/security-credentials/": init.role?.name,
      };
      if (init.role) {
        paths[`/latest/meta-data/iam/security-credentials/${init.role.name}`] = JSON.stringify({
          Code: "Success", LastUpdated: new Date().toISOString(), Type: "AWS-HMAC", AccessKeyId: init.role.accessKeyId,
          SecretAccessKey: init.role.secretAccessKey, Token: init.role.token, Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
        });
      }
      const body = paths[u.pathname];
      return body === undefined ? new Response("", { status: 404 }) : new Response(body, { headers: { "content-type": "text/plain" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, calls, invalidateTokens: () => tokens.clear(), stop: () => server.stop(true) };
}

export interface StsPrincipal {
  secretAccessKey: string;
  sessionToken?: string;
  arn: string;
  account: string;
  userId: string;
}

const NS = 'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"';
const requestId = () => crypto.randomUUID();

function stsErrorXml(status: number, code: string, message: string): Response {
  return new Response(`<ErrorResponse ${NS}>\n  <Error>\n    <Type>Sender</Type>\n    <Code>${code}</Code>\n    <Message>${message}</Message>\n  </Error>\n  <RequestId>${requestId()}</RequestId>\n</ErrorResponse>\n`, { status, headers: { "content-type": "text/xml" } });
}

/**
 * `principals`: access key id → who it is. `webIdentity`: token → role to assume (IRSA).
 * `now` is the server's clock for the 15-minute signature window.
 */
export function stsMock(init: { principals: Record<string, StsPrincipal>; webIdentity?: Record<string, { roleArn: string; account: string }>; now?: () => number }) {
  const principals = { ...init.principals };
  const calls: string[] = [];
  const now = init.now ?? Date.now;
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      if (req.method !== "POST") return new Response("", { status: 200 }); // health probes
      const body = await req.text();
      const form = new URLSearchParams(body);
      const action = form.get("Action");
      calls.push(action ?? "?");
      if (form.get("Version") !== "2011-06-15") return stsErrorXml(400, "InvalidAction", "Could not find operation for this version");
      if (action === "AssumeRoleWithWebIdentity") {
        const wi = init.webIdentity?.[form.get("WebIdentityToken") ?? ""];
        if (!wi || wi.roleArn !== form.get("RoleArn")) return stsErrorXml(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider");
        const akid = `ASIA${randomBytes(8).toString("hex").toUpperCase()}`;
        const secret = randomBytes(30).toString("base64");
        const token = randomBytes(40).toString("base64");
        const role = wi.roleArn.split("/").pop()!;
        const session = form.get("RoleSessionName") ?? "session";
        principals[akid] = { secretAccessKey: secret, sessionToken: token, arn: `arn:aws:sts::${wi.account}:assumed-role/${role}/${session}`, account: wi.account, userId: `AROA${akid.slice(4)}:${session}` };
        return new Response(`<AssumeRoleWithWebIdentityResponse ${NS}>\n  <AssumeRoleWithWebIdentityResult>\n    <SubjectFromWebIdentityToken>system:serviceaccount:grey:agent</SubjectFromWebIdentityToken>\n    <AssumedRoleUser>\n      <Arn>${principals[akid]!.arn}</Arn>\n      <AssumedRoleId>${principals[akid]!.userId}</AssumedRoleId>\n    </AssumedRoleUser>\n    <Credentials>\n      <SessionToken>${token}</SessionToken>\n      <SecretAccessKey>${secret}</SecretAccessKey>\n      <Expiration>${new Date(now() + 3600_000).toISOString()}</Expiration>\n      <AccessKeyId>${akid}</AccessKeyId>\n    </Credentials>\n    <Audience>sts.amazonaws.com</Audience>\n  </AssumeRoleWithWebIdentityResult>\n  <ResponseMetadata>\n    <RequestId>${requestId()}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleWithWebIdentityResponse>\n`, { headers: { "content-type": "text/xml" } });
      }
      if (action !== "GetCallerIdentity") return stsErrorXml(400, "InvalidAction", `Could not find operation ${action}`);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      const auth = parseAuthorization(headers.authorization);
      if (!auth) return stsErrorXml(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
      const p = principals[auth.accessKeyId];
      if (!p) return stsErrorXml(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
      if (p.sessionToken && headers["x-amz-security-token"] !== p.sessionToken) return stsErrorXml(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
      const at = parseAmzDate(headers["x-amz-date"]);
      if (!(Math.abs(now() - at) <= 15 * 60_000)) return stsErrorXml(403, "SignatureDoesNotMatch", "Signature expired");
      const signed: Record<string, string> = {};
      for (const n of auth.signedHeaders) signed[n] = headers[n] ?? "";
      const expect = signParts({ method: "POST", url: req.url.replace(/^http:\/\/[^/]+/, `http://${headers.host}`), body, region: auth.region, service: auth.service, now: at }, { accessKeyId: auth.accessKeyId, secretAccessKey: p.secretAccessKey }, signed);
      if (!timingSafeEqual(Buffer.from(expect.signature), Buffer.from(auth.signature))) {
        return stsErrorXml(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.");
      }
      return new Response(`<GetCallerIdentityResponse ${NS}>\n  <GetCallerIdentityResult>\n    <Arn>${p.arn}</Arn>\n    <UserId>${p.userId}</UserId>\n    <Account>${p.account}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>${requestId()}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n`, { headers: { "content-type": "text/xml" } });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, calls, stop: () => server.stop(true) };
}
