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
 * Allow-list: `projects` must be set for any token to verify (empty: everything refused).
 */
import { verifyGcpIdentityToken, type Jwk } from "../../attest/iid/gcp.ts";
import { bindingAudience } from "../sdk/binding.ts";
import { encodeCbor } from "../sdk/codec.ts";
import {
  ConnectorResponseError, failedIdentity, healthOf, platformFetch, probe,
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
  /** Hub: project ids allowed (google.compute_engine.project_id). */
  projects?: readonly string[];
  /** Accepted clock skew on iat. */
  clockSkewMs?: number;
  probe?: readonly ("metadata" | "jwks")[];
}

/** Verify a GCE identity token for `audience` at `at`; shared by the credential path and tests of real tokens. */
export async function verifyGcpToken(token: string, opts: { audience: string; at: Date; jwks: JwksSource; projects: readonly string[]; clockSkewMs?: number }, options: IoOptions = {}): Promise<IdentityResult> {
  if (opts.projects.length === 0) return failedIdentity(TOKEN_CREDENTIAL, "project", "no projects allowed (set projects)");
  const kid = (() => {
    try {
      return (JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8")) as { kid?: string }).kid;
    } catch {
      return undefined;
    }
  })();
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
        return verifyGcpToken(token, { audience: bindingAudience(binding), at: now, jwks, projects: init.projects ?? [], ...(init.clockSkewMs ? { clockSkewMs: init.clockSkewMs } : {}) }, options);
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
