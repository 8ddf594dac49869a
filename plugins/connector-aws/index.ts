/**
 * AWS connector.
 *
 *   authentication  agent: temporary credentials (IMDS role, IRSA web identity, or static) sign
 *                   sts:GetCallerIdentity with SigV4, including the signed header x-grey-binding =
 *                   binding audience; it sends the signed request, never a secret.
 *                   hub: checks the request is exactly GetCallerIdentity, the binding header is
 *                   signed and matches, the signature date is fresh, then replays it to its own STS
 *                   endpoint and applies the account / role / region allow-lists to the answer.
 *   network         IMDS placement/region, availability-zone, local-ipv4, public-ipv4.
 *   evidence        IMDSv2 instance identity document + /rsa2048 PKCS7 (format "aws-iid", verified
 *                   by attestor-aws-iid or by this connector's "aws-iid-document" credential type,
 *                   which adds the account / region allow-lists). IID carries no nonce: fresh=false.
 *   key exchange    the STS request signs the binding (nonce, peer id, CSR key).
 *   health          IMDS token endpoint (agent) and/or STS endpoint (hub).
 *
 * Allow-lists: `accounts` must be set for any credential to verify (empty: everything refused);
 * `roles` (names or role ARNs) and `regions` restrict further when set.
 */
import { readFileSync } from "node:fs";
import { verifyAwsIidParts } from "../attestor-iid/index.ts";
import { bindingAudience } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import {
  ConnectorUnavailableError, failedIdentity, healthOf, identityFrom, platformFetch, probe,
  type Check, type Connector, type ConnectorComponents, type Credential, type EvidenceBinding, type IdentityResult, type IoOptions, type NetworkInfo,
} from "../sdk/connector.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import {
  bindingHeader, getCallerIdentityBody, IID_CREDENTIAL, IID_FORMAT, imdsEndpointDefault, presignMaxAgeMs, STS_CREDENTIAL, stsEndpointDefault, stsRegionDefault,
} from "./constants.ts";
import { Imds } from "./imds.ts";
import { parseAmzDate, parseAuthorization, signV4, type AwsCredentials } from "./sigv4.ts";
import { assumeRoleWithWebIdentity, parseCallerIdentity, roleOf, stsError } from "./sts.ts";

export type AwsCredentialSource =
  | { kind: "imds" }
  | { kind: "web-identity"; tokenFile: string; roleArn: string; sessionName?: string }
  | { kind: "static"; credentials: AwsCredentials };

export interface AwsConnectorInit {
  imdsEndpoint?: string;
  /** STS endpoint the agent signs for and the hub sends to (they must agree). */
  stsEndpoint?: string;
  stsRegion?: string;
  /** Agent: where its AWS credentials come from (default: the instance role via IMDS). */
  credentials?: AwsCredentialSource;
  /** Hub: allow-lists. */
  accounts?: readonly string[];
  roles?: readonly string[];
  regions?: readonly string[];
  /** Hub: pinned AWS instance-identity certificates (DER) for "aws-iid-document". */
  iidCertificates?: readonly Uint8Array[];
  /** What health() probes (default: both). */
  probe?: readonly ("imds" | "sts")[];
}

interface PresignedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

const utf8 = new TextDecoder();

export function awsConnector(init: AwsConnectorInit = {}) {
  const imdsEndpoint = (init.imdsEndpoint ?? imdsEndpointDefault).replace(/\/$/, "");
  const stsEndpoint = (init.stsEndpoint ?? stsEndpointDefault).replace(/\/$/, "");
  const stsRegion = init.stsRegion ?? stsRegionDefault;
  const source = init.credentials ?? { kind: "imds" as const };

  return (components: ConnectorComponents): Connector => {
    const imds = new Imds(imdsEndpoint, components.fetch, components.clock.now);

    async function credentials(options: IoOptions): Promise<AwsCredentials> {
      if (source.kind === "static") return source.credentials;
      if (source.kind === "web-identity") {
        const token = readFileSync(source.tokenFile, "utf8").trim();
        return assumeRoleWithWebIdentity(components.fetch, stsEndpoint, { roleArn: source.roleArn, sessionName: source.sessionName ?? "grey-agent", token }, options);
      }
      const role = (await imds.text("/latest/meta-data/iam/security-credentials/", options))?.split("\n")[0];
      if (!role) throw new ConnectorUnavailableError("aws", imdsEndpoint, "no instance role attached");
      const j = JSON.parse((await imds.text(`/latest/meta-data/iam/security-credentials/${role}`, options)) ?? "{}") as Record<string, string>;
      if (j.Code !== "Success" || !j.AccessKeyId || !j.SecretAccessKey) throw new ConnectorUnavailableError("aws", imdsEndpoint, `instance role credentials unavailable (${j.Code ?? "no code"})`);
      return { accessKeyId: j.AccessKeyId, secretAccessKey: j.SecretAccessKey, ...(j.Token ? { sessionToken: j.Token } : {}) };
    }

    function policy(checks: Check[], account: string, region: string | undefined, role?: { name: string; arn: string }): void {
      const accounts = init.accounts ?? [];
      const notListed = (ok: boolean, what: string) => (ok ? what : `${what} is not on the allow-list`);
      const accountOk = accounts.includes(account);
      checks.push({ name: "account", ok: accountOk, detail: accounts.length ? notListed(accountOk, `account ${account}`) : `account ${account}: no accounts allowed (set accounts)` });
      if (init.roles?.length) {
        const ok = !!role && (init.roles.includes(role.name) || init.roles.includes(role.arn));
        checks.push({ name: "role", ok, detail: notListed(ok, `role ${role?.arn ?? "(not a role)"}`) });
      }
      if (init.regions?.length) {
        const ok = !!region && init.regions.includes(region);
        checks.push({ name: "region", ok, detail: notListed(ok, `region ${region ?? "(none)"}`) });
      }
    }

    async function verifySts(data: Uint8Array, binding: EvidenceBinding, now: Date, options: IoOptions): Promise<IdentityResult> {
      let req: PresignedRequest;
      try {
        req = decodeCbor(data, 16 * 1024) as PresignedRequest;
        if (typeof req?.method !== "string" || typeof req.url !== "string" || typeof req.body !== "string" || typeof req.headers !== "object" || req.headers === null) throw new Error("expected { method, url, headers, body }");
      } catch (err) {
        return failedIdentity(STS_CREDENTIAL, "structure", (err as Error).message);
      }
      const h = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
      const checks: Check[] = [{ name: "structure", ok: true }];
      const push = (name: string, ok: boolean, detail: string) => (checks.push({ name, ok, detail }), ok);
      if (!push("request", req.method === "POST" && req.body === getCallerIdentityBody, "POST Action=GetCallerIdentity")) return identityFrom(STS_CREDENTIAL, checks, {});
      const auth = parseAuthorization(h.authorization);
      const signed = auth?.signedHeaders ?? [];
      if (!push("signature-scope", !!auth && auth.service === "sts" && ["host", "x-amz-date", bindingHeader].every((x) => signed.includes(x)), `SigV4 for sts, signed: ${signed.join(";") || "(none)"}`)) return identityFrom(STS_CREDENTIAL, checks, {});
      if (!push("binding", h[bindingHeader] === bindingAudience(binding), "signed x-grey-binding matches this join (nonce, peer id, key)")) return identityFrom(STS_CREDENTIAL, checks, {});
      const signedAt = parseAmzDate(h["x-amz-date"]);
      if (!push("time", Math.abs(now.getTime() - signedAt) <= presignMaxAgeMs, `signed at ${h["x-amz-date"] ?? "?"}`)) return identityFrom(STS_CREDENTIAL, checks, {});
      if (!push("endpoint", h.host === new URL(stsEndpoint).host, `signed for host ${h.host}`)) return identityFrom(STS_CREDENTIAL, checks, {});
      let xml: string;
      try {
        const r = await platformFetch(components.fetch, "aws", `${stsEndpoint}/`, { method: "POST", headers: h, body: req.body }, options);
        xml = r.text();
        if (!push("sts", r.status === 200, r.status === 200 ? "GetCallerIdentity accepted" : `HTTP ${r.status} ${stsError(xml)}`)) return identityFrom(STS_CREDENTIAL, checks, {});
      } catch (err) {
        push("sts", false, (err as Error).message);
        return identityFrom(STS_CREDENTIAL, checks, {});
      }
      const id = parseCallerIdentity(xml);
      if (!push("response", !!id, id ? id.arn : "GetCallerIdentityResponse without Arn/Account/UserId")) return identityFrom(STS_CREDENTIAL, checks, {});
      const role = roleOf(id!.arn);
      policy(checks, id!.account, auth!.region, role);
      return identityFrom(STS_CREDENTIAL, checks, { platform: "aws", fresh: true, "account.id": id!.account, arn: id!.arn, ...(role ? { role: role.name } : {}), "sts.region": auth!.region }, role?.arn ?? id!.arn);
    }

    async function verifyIid(data: Uint8Array, now: Date): Promise<IdentityResult> {
      let parts: { document: Uint8Array; pkcs7?: Uint8Array; signature?: string };
      try {
        parts = decodeCbor(data, 48 * 1024) as typeof parts;
        if (!(parts?.document instanceof Uint8Array)) throw new Error("expected { document, pkcs7 | signature }");
      } catch (err) {
        return failedIdentity(IID_CREDENTIAL, "structure", (err as Error).message);
      }
      const r = await verifyAwsIidParts(parts, { at: now, roots: init.iidCertificates ?? [] });
      const checks: Check[] = r.checks.map((c) => ({ ...c }));
      if (!r.ok) return { ...r, format: IID_CREDENTIAL, checks };
      policy(checks, String(r.claims["account.id"]), String(r.claims.region));
      return identityFrom(IID_CREDENTIAL, checks, { ...r.claims }, `aws:${String(r.claims["account.id"])}:${String(r.claims["instance.id"])}`);
    }

    return {
      name: "connector-aws", kind: "connector", apiVersion: PLUGIN_API_VERSION, platform: "aws",
      credentialTypes: [STS_CREDENTIAL, IID_CREDENTIAL], evidenceFormat: IID_FORMAT,

      async authenticate(binding, options = {}): Promise<Credential> {
        const creds = await credentials(options);
        const url = `${stsEndpoint}/`;
        const headers = signV4({
          method: "POST", url, body: getCallerIdentityBody, region: stsRegion, service: "sts", now: components.clock.now(),
          headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8", [bindingHeader]: bindingAudience(binding) },
        }, creds);
        return { type: STS_CREDENTIAL, data: encodeCbor({ method: "POST", url, headers, body: getCallerIdentityBody } satisfies PresignedRequest) };
      },

      async verifyCredential(credential, binding, now, options = {}) {
        if (credential.type === STS_CREDENTIAL) return verifySts(credential.data, binding, now, options);
        if (credential.type === IID_CREDENTIAL) return verifyIid(credential.data, now);
        return failedIdentity(String(credential.type), "type", "not an AWS credential");
      },

      async network(options = {}): Promise<NetworkInfo> {
        const [region, zone, local, pub] = await Promise.all([
          imds.text("/latest/meta-data/placement/region", options),
          imds.text("/latest/meta-data/placement/availability-zone", options),
          imds.text("/latest/meta-data/local-ipv4", options),
          imds.text("/latest/meta-data/public-ipv4", options),
        ]);
        return { platform: "aws", ...(region ? { region } : {}), ...(zone ? { zone } : {}), privateAddresses: local ? [local] : [], publicAddresses: pub ? [pub] : [] };
      },

      async evidence(_binding, options = {}) {
        const document = await imds.require("/latest/dynamic/instance-identity/document", options);
        const rsa2048 = utf8.decode(await imds.require("/latest/dynamic/instance-identity/rsa2048", options));
        const pkcs7 = new Uint8Array(Buffer.from(rsa2048.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, ""), "base64"));
        return { format: IID_FORMAT, data: encodeCbor({ document, pkcs7 }) };
      },

      async health(options = {}) {
        const what = init.probe ?? ["imds", "sts"];
        const checks = await Promise.all(what.map((w) => w === "imds"
          ? probe(components.fetch, "aws", "imds", `${imdsEndpoint}/latest/api/token`, { method: "PUT", headers: { "X-aws-ec2-metadata-token-ttl-seconds": "60" } }, options)
          : probe(components.fetch, "aws", "sts", `${stsEndpoint}/`, { method: "GET" }, options)));
        return healthOf(checks);
      },
    };
  };
}
