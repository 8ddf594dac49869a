/**
 * GCP connector.
 *
 *   authentication  agent: the metadata server's identity token for the instance's service account,
 *                   GET /computeMetadata/v1/instance/service-accounts/default/identity
 *                   ?audience=grey:<binding digest>&format=full with `Metadata-Flavor: Google`.
 *                   hub: RS256 signature against Google's JWKS (fetched + cached, or injected),
 *                   issuer, audience = this join's binding, [iat, exp), project allow-list.
 *   network         instance zone (→ region), network-interfaces/0 ip and external ip.
 *   evidence        the same token as "gcp-iit" evidence (verified by attestor-gcp-iit).
 *   key exchange    the audience is the digest of the binding (nonce, peer id, CSR key).
 *   health          metadata server (agent) and/or JWKS endpoint (hub).
 *
 * Two kinds of token come from the same metadata endpoint (`format=full`):
 *   - a Compute Engine instance's: carries `google.compute_engine` (project id, zone, instance); the
 *     `projects` allow-list applies to its project_id.
 *   - a GKE Workload Identity workload's (the GKE metadata server): no `google.compute_engine`
 *     claims; the identity is the Google service account (`email`, `email_verified`, `sub`, `azp`).
 *     Accepted when `email_verified` is true and the email is on `serviceAccounts`, or its project
 *     (the PROJECT of `NAME@PROJECT.iam.gserviceaccount.com`) is on `projects`. Claims:
 *     `workload: true`, `service_account`, `project`.
 * Allow-list: `projects` or `serviceAccounts` must be set for any token to verify (both empty:
 * everything refused).
 */
import { verifyGcpIdentityToken, type Jwk } from "../../attest/iid/gcp.ts";
import { bindingAudience } from "../sdk/binding.ts";
import { encodeCbor } from "../sdk/codec.ts";
import {
  ConnectorResponseError, failedIdentity, healthOf, identityFrom, platformFetch, probe,
  type Connector, type ConnectorComponents, type IdentityResult, type IoOptions, type NetworkInfo,
} from "../sdk/connector.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { googleJwksUrlDefault, IIT_FORMAT, metadataEndpointDefault, TOKEN_CREDENTIAL } from "./constants.ts";
import { fetchedJwks, staticJwks, type JwksSource } from "./jwks.ts";

export interface GcpConnectorInit {
  metadataEndpoint?: string;
  /** Hub: JWKS URL (default Google's), or a snapshot to use instead of fetching. */
  jwksUrl?: string;
  jwks?: { keys: Jwk[] };
  /** Hub: project ids allowed (google.compute_engine.project_id; for workload tokens, the service account's project). */
  projects?: readonly string[];
  /** Hub: Google service accounts (emails) whose Workload Identity tokens are accepted. */
  serviceAccounts?: readonly string[];
  /** Accepted clock skew on iat. */
  clockSkewMs?: number;
  probe?: readonly ("metadata" | "jwks")[];
}

/** The project of a user-managed service account (NAME@PROJECT.iam.gserviceaccount.com), if it is one. */
export function serviceAccountProject(email: string): string | undefined {
  return /^[a-z0-9-]{1,64}@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(email)?.[1];
}

function jwtPart(token: string, i: number): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(token.split(".")[i] ?? "", "base64url").toString("utf8")) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Verify a GCP identity token for `audience` at `at`: a GCE instance token (project allow-list) or a
 * Workload Identity token (service-account / project allow-list); shared by the credential path and
 * tests of real tokens.
 */
export async function verifyGcpToken(token: string, opts: { audience: string; at: Date; jwks: JwksSource; projects: readonly string[]; serviceAccounts?: readonly string[]; clockSkewMs?: number }, options: IoOptions = {}): Promise<IdentityResult> {
  const accounts = opts.serviceAccounts ?? [];
  if (opts.projects.length === 0 && accounts.length === 0) return failedIdentity(TOKEN_CREDENTIAL, "project", "no projects or service accounts allowed (set projects or serviceAccounts)");
  const kid = jwtPart(token, 0)?.kid as string | undefined;
  const google = jwtPart(token, 1)?.google as { compute_engine?: unknown } | undefined;
  if (typeof google !== "object" || google === null || google.compute_engine === undefined) return verifyWorkloadToken(token, kid, { ...opts, serviceAccounts: accounts }, options);
  if (opts.projects.length === 0) return failedIdentity(TOKEN_CREDENTIAL, "project", "a Compute Engine token needs a project allow-list (set projects)");
  let jwks: { keys: Jwk[] };
  try {
    jwks = await opts.jwks.get(kid, options);
  } catch (err) {
    return failedIdentity(TOKEN_CREDENTIAL, "jwks", (err as Error).message);
  }
  const v = await verifyGcpIdentityToken({ token, jwks, at: opts.at, audience: opts.audience, projects: [...opts.projects], ...(opts.clockSkewMs ? { clockSkewMs: opts.clockSkewMs } : {}) });
  if (!v.ok) return { format: TOKEN_CREDENTIAL, ok: false, checks: v.checks, failed: v.failed, claims: {} };
  const p = v.claims.payload;
  const g = v.claims.gce ?? {};
  const principal = typeof p.email === "string" ? p.email : String(p.sub);
  return {
    format: TOKEN_CREDENTIAL, ok: true, checks: v.checks, principal,
    claims: {
      platform: "gce", fresh: true, subject: String(p.sub), ...(typeof p.email === "string" ? { email: p.email } : {}),
      ...(g.project_id ? { "project.id": g.project_id } : {}), ...(g.zone ? { zone: g.zone } : {}), ...(g.instance_id ? { "instance.id": g.instance_id } : {}),
    },
  };
}

/** A token without google.compute_engine claims: the workload's Google service account is the identity. */
async function verifyWorkloadToken(token: string, kid: string | undefined, opts: { audience: string; at: Date; jwks: JwksSource; projects: readonly string[]; serviceAccounts: readonly string[]; clockSkewMs?: number }, options: IoOptions): Promise<IdentityResult> {
  let jwks: { keys: Jwk[] };
  try {
    jwks = await opts.jwks.get(kid, options);
  } catch (err) {
    return failedIdentity(TOKEN_CREDENTIAL, "jwks", (err as Error).message);
  }
  // signature, issuer, audience, time; the allow-list is the workload check below
  const v = await verifyGcpIdentityToken({ token, jwks, at: opts.at, audience: opts.audience, ...(opts.clockSkewMs ? { clockSkewMs: opts.clockSkewMs } : {}) });
  if (!v.ok) return { format: TOKEN_CREDENTIAL, ok: false, checks: v.checks, failed: v.failed, claims: {} };
  const checks = v.checks.filter((c) => c.name !== "project");
  const p = v.claims.payload;
  const email = typeof p.email === "string" ? p.email : undefined;
  const project = email ? serviceAccountProject(email) : undefined;
  const refuse = (detail: string) => identityFrom(TOKEN_CREDENTIAL, [...checks, { name: "workload", ok: false, detail }], {});
  if (!email) return refuse("no email claim: not a service account identity");
  if (p.email_verified !== true) return refuse(`email ${email} is not verified`);
  if (typeof p.sub !== "string" || p.sub === "") return refuse("no sub claim");
  const byAccount = opts.serviceAccounts.includes(email);
  const byProject = project !== undefined && opts.projects.includes(project);
  if (!byAccount && !byProject) return refuse(`service account ${email} is not on the allow-list`);
  checks.push({ name: "workload", ok: true, detail: `service account ${email} (allowed by ${byAccount ? "serviceAccounts" : "projects"})` });
  return identityFrom(TOKEN_CREDENTIAL, checks, {
    platform: "gcp", workload: true, fresh: true, subject: p.sub, service_account: email, email,
    ...(typeof p.azp === "string" ? { azp: p.azp } : {}), ...(project ? { project, "project.id": project } : {}),
  }, email);
}

export function gcpConnector(init: GcpConnectorInit = {}) {
  const md = (init.metadataEndpoint ?? metadataEndpointDefault).replace(/\/$/, "");
  return (components: ConnectorComponents): Connector => {
    const jwks = init.jwks ? staticJwks(init.jwks) : fetchedJwks(init.jwksUrl ?? googleJwksUrlDefault, components.fetch, components.clock.now);
    const headers = { "Metadata-Flavor": "Google" };

    async function metadata(path: string, options: IoOptions): Promise<string | undefined> {
      const url = `${md}/computeMetadata/v1/${path}`;
      const r = await platformFetch(components.fetch, "gcp", url, { headers }, options);
      if (r.status === 404) return undefined;
      if (r.status !== 200 || r.headers.get("metadata-flavor") !== "Google") throw new ConnectorResponseError("gcp", url, r.status, "not the GCE metadata server");
      return r.text().trim();
    }

    async function identityToken(audience: string, options: IoOptions): Promise<string> {
      const token = await metadata(`instance/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`, options);
      if (!token || token.split(".").length !== 3) throw new ConnectorResponseError("gcp", `${md}/computeMetadata/v1/instance/service-accounts/default/identity`, 200, "no identity token");
      return token;
    }

    return {
      name: "connector-gcp", kind: "connector", apiVersion: PLUGIN_API_VERSION, platform: "gcp",
      credentialTypes: [TOKEN_CREDENTIAL], evidenceFormat: IIT_FORMAT,

      async authenticate(binding, options = {}) {
        return { type: TOKEN_CREDENTIAL, data: new TextEncoder().encode(await identityToken(bindingAudience(binding), options)) };
      },

      async verifyCredential(credential, binding, now, options = {}) {
        if (credential.type !== TOKEN_CREDENTIAL) return failedIdentity(String(credential.type), "type", "not a GCP identity token");
        let token: string;
        try {
          token = new TextDecoder("utf-8", { fatal: true }).decode(credential.data);
        } catch {
          return failedIdentity(TOKEN_CREDENTIAL, "structure", "token is not UTF-8");
        }
        return verifyGcpToken(token, { audience: bindingAudience(binding), at: now, jwks, projects: init.projects ?? [], serviceAccounts: init.serviceAccounts ?? [], ...(init.clockSkewMs ? { clockSkewMs: init.clockSkewMs } : {}) }, options);
      },

      async network(options = {}): Promise<NetworkInfo> {
        const [zonePath, ip, ext] = await Promise.all([
          metadata("instance/zone", options),
          metadata("instance/network-interfaces/0/ip", options),
          metadata("instance/network-interfaces/0/access-configs/0/external-ip", options),
        ]);
        const zone = zonePath?.split("/").pop();
        const region = zone?.replace(/-[a-z]$/, "");
        return { platform: "gcp", ...(region ? { region } : {}), ...(zone ? { zone } : {}), privateAddresses: ip ? [ip] : [], publicAddresses: ext ? [ext] : [] };
      },

      async evidence(binding, options = {}) {
        return { format: IIT_FORMAT, data: encodeCbor({ token: await identityToken(bindingAudience(binding), options) }) };
      },

      async health(options = {}) {
        const what = init.probe ?? (init.jwks ? ["metadata"] : ["metadata", "jwks"]);
        return healthOf(await Promise.all(what.map((w) => w === "metadata"
          ? probe(components.fetch, "gcp", "metadata", `${md}/computeMetadata/v1/`, { headers }, options)
          : probe(components.fetch, "gcp", "jwks", init.jwksUrl ?? googleJwksUrlDefault, {}, options))));
      },
    };
  };
}
