/**
 * Azure connector.
 *
 *   authentication  agent: IMDS managed-identity token
 *                   GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R (Metadata: true)
 *                   plus the attested document GET /metadata/attested/document?api-version=2020-09-01
 *                   &nonce=<binding nonce> (CMS signed by metadata.azure.com).
 *                   hub: token RS256 against Entra ID's JWKS (fetched + cached, or injected), issuer
 *                   for its tenant, audience = R, [nbf, exp), tenant allow-list; attested document
 *                   with attest/iid (chain to the configured Microsoft roots, signer name, freshness,
 *                   nonce = this join's binding); subscription allow-list; the token's VM resource id
 *                   (xms_mirid) must name the document's subscription.
 *   network         IMDS /metadata/instance/compute (location, zone) and network.
 *   evidence        the attested document as "azure-imds" evidence (verified by attestor-azure-imds).
 *   key exchange    the attested document's nonce is the binding digest (nonce, peer id, CSR key).
 *   health          IMDS (agent) and/or the Entra JWKS endpoint (hub).
 *
 * Allow-lists: `tenants` and `subscriptions` must both be set for a credential to verify.
 */
import { createPublicKey } from "node:crypto";
import { verifyAzureAttested } from "../../attest/iid/azure.ts";
import type { Jwk } from "../../attest/iid/gcp.ts";
import { verifySignature } from "../../attest/x509/sig.ts";
import { splitRoots } from "../attestor-iid/index.ts";
import { bindingAzureNonce } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import {
  ConnectorResponseError, failedIdentity, healthOf, identityFrom, platformFetch, probe,
  type Check, type Connector, type ConnectorComponents, type IdentityResult, type IoOptions, type NetworkInfo,
} from "../sdk/connector.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { fetchedJwks, staticJwks, type JwksSource } from "../connector-gcp/jwks.ts";
import {
  accessTokenBytesMax, attestedApiVersion, entraJwksUrlDefault, IMDS_FORMAT, imdsEndpointDefault, MSI_CREDENTIAL, resourceDefault, tokenApiVersion,
} from "./constants.ts";

export interface AzureConnectorInit {
  imdsEndpoint?: string;
  resource?: string;
  /** Hub: Entra JWKS URL or snapshot. */
  jwksUrl?: string;
  jwks?: { keys: Jwk[] };
  /** Hub: Microsoft root + intermediate certificates (DER) for the attested document. */
  roots?: readonly Uint8Array[];
  tenants?: readonly string[];
  subscriptions?: readonly string[];
  probe?: readonly ("imds" | "jwks")[];
}

/** Verify an attested document (CMS DER) against roots at `at`; exported for tests with the real vector. */
export async function verifyAttestedDocument(pkcs7: Uint8Array, opts: { at: Date; roots: readonly Uint8Array[]; nonce?: string; subscriptions: readonly string[] }) {
  const { roots, intermediates } = splitRoots(opts.roots);
  return verifyAzureAttested({ pkcs7, roots, intermediates, at: opts.at, ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}), subscriptionIds: [...opts.subscriptions] });
}

function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signed: Uint8Array; sig: Uint8Array } | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    return {
      header: JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8")),
      payload: JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")),
      signed: new TextEncoder().encode(`${parts[0]}.${parts[1]}`),
      sig: new Uint8Array(Buffer.from(parts[2]!, "base64url")),
    };
  } catch {
    return undefined;
  }
}

export function azureConnector(init: AzureConnectorInit = {}) {
  const imdsUrl = (init.imdsEndpoint ?? imdsEndpointDefault).replace(/\/$/, "");
  const resource = init.resource ?? resourceDefault;
  return (components: ConnectorComponents): Connector => {
    const jwks: JwksSource = init.jwks ? staticJwks(init.jwks) : fetchedJwks(init.jwksUrl ?? entraJwksUrlDefault, components.fetch, components.clock.now, "azure");

    async function imds(path: string, options: IoOptions): Promise<unknown> {
      const url = `${imdsUrl}${path}`;
      const r = await platformFetch(components.fetch, "azure", url, { headers: { Metadata: "true" } }, options);
      if (r.status !== 200) throw new ConnectorResponseError("azure", url.replace(/\?.*$/, ""), r.status, r.text().slice(0, 200));
      try {
        return JSON.parse(r.text());
      } catch {
        throw new ConnectorResponseError("azure", url.replace(/\?.*$/, ""), r.status, "not JSON");
      }
    }

    async function attested(nonce: string, options: IoOptions): Promise<Uint8Array> {
      const j = (await imds(`/metadata/attested/document?api-version=${attestedApiVersion}&nonce=${encodeURIComponent(nonce)}`, options)) as { encoding?: string; signature?: string };
      if (j.encoding !== "pkcs7" || typeof j.signature !== "string") throw new ConnectorResponseError("azure", `${imdsUrl}/metadata/attested/document`, 200, "expected { encoding: pkcs7, signature }");
      return new Uint8Array(Buffer.from(j.signature, "base64"));
    }

    async function verifyToken(token: string, now: Date, options: IoOptions, checks: Check[]): Promise<Record<string, unknown> | undefined> {
      const push = (name: string, ok: boolean, detail: string) => (checks.push({ name, ok, detail }), ok);
      const jwt = token.length <= accessTokenBytesMax ? decodeJwt(token) : undefined;
      if (!push("token.structure", !!jwt, "JWT")) return undefined;
      if (!push("token.alg", jwt!.header.alg === "RS256", `alg ${String(jwt!.header.alg)}`)) return undefined;
      let keys: Jwk[];
      try {
        keys = (await jwks.get(String(jwt!.header.kid), options)).keys;
      } catch (err) {
        push("token.jwks", false, (err as Error).message);
        return undefined;
      }
      const jwk = keys.find((k) => k.kid === jwt!.header.kid && k.kty === "RSA");
      if (!push("token.key", !!jwk, `kid ${String(jwt!.header.kid)}`)) return undefined;
      const spki = new Uint8Array(createPublicKey({ key: { kty: "RSA", n: jwk!.n ?? "", e: jwk!.e ?? "" }, format: "jwk" }).export({ type: "spki", format: "der" }));
      if (!push("token.signature", verifySignature(spki, { kind: "rsa-pkcs1", hash: "sha256" }, jwt!.signed, jwt!.sig), "RS256")) return undefined;
      const p = jwt!.payload;
      const tid = String(p.tid ?? "");
      if (!push("token.issuer", p.iss === `https://sts.windows.net/${tid}/` || p.iss === `https://login.microsoftonline.com/${tid}/v2.0`, `iss ${String(p.iss)}`)) return undefined;
      if (!push("token.audience", p.aud === resource || p.aud === resource.replace(/\/$/, ""), `aud ${String(p.aud)}`)) return undefined;
      const t = now.getTime() / 1000;
      if (!push("token.time", typeof p.exp === "number" && t < p.exp && (typeof p.nbf !== "number" || p.nbf <= t + 60), `exp ${String(p.exp)}`)) return undefined;
      const tenants = init.tenants ?? [];
      if (!push("tenant", tenants.includes(tid), tenants.length ? `tenant ${tid}` : "no tenants allowed (set tenants)")) return undefined;
      return p;
    }

    return {
      name: "connector-azure", kind: "connector", apiVersion: PLUGIN_API_VERSION, platform: "azure",
      credentialTypes: [MSI_CREDENTIAL], evidenceFormat: IMDS_FORMAT,

      async authenticate(binding, options = {}) {
        const tok = (await imds(`/metadata/identity/oauth2/token?api-version=${tokenApiVersion}&resource=${encodeURIComponent(resource)}`, options)) as { access_token?: string };
        if (typeof tok.access_token !== "string") throw new ConnectorResponseError("azure", `${imdsUrl}/metadata/identity/oauth2/token`, 200, "no access_token");
        return { type: MSI_CREDENTIAL, data: encodeCbor({ accessToken: tok.access_token, attested: await attested(bindingAzureNonce(binding), options) }) };
      },

      async verifyCredential(credential, binding, now, options = {}): Promise<IdentityResult> {
        if (credential.type !== MSI_CREDENTIAL) return failedIdentity(String(credential.type), "type", "not an Azure managed-identity credential");
        let body: { accessToken?: unknown; attested?: unknown };
        try {
          body = decodeCbor(credential.data, 64 * 1024) as typeof body;
        } catch (err) {
          return failedIdentity(MSI_CREDENTIAL, "structure", (err as Error).message);
        }
        if (typeof body?.accessToken !== "string" || !(body.attested instanceof Uint8Array)) return failedIdentity(MSI_CREDENTIAL, "structure", "expected { accessToken, attested }");
        const checks: Check[] = [{ name: "structure", ok: true }];
        const claims = await verifyToken(body.accessToken, now, options, checks);
        if (!claims) return identityFrom(MSI_CREDENTIAL, checks, {});
        const subscriptions = init.subscriptions ?? [];
        if (subscriptions.length === 0) {
          checks.push({ name: "subscription", ok: false, detail: "no subscriptions allowed (set subscriptions)" });
          return identityFrom(MSI_CREDENTIAL, checks, {});
        }
        const v = await verifyAttestedDocument(body.attested, { at: now, roots: init.roots ?? [], nonce: bindingAzureNonce(binding), subscriptions });
        for (const c of v.checks) checks.push({ ...c, name: `document.${c.name}`.slice(0, 64) });
        if (!v.ok) return identityFrom(MSI_CREDENTIAL, checks, {});
        const doc = v.claims.document;
        const mirid = String(claims.xms_mirid ?? "");
        checks.push({ name: "token-vm", ok: mirid.toLowerCase().startsWith(`/subscriptions/${doc.subscriptionId}/`.toLowerCase()), detail: `token resource ${mirid || "(none)"}` });
        return identityFrom(MSI_CREDENTIAL, checks, {
          platform: "azure-vm", fresh: true, "tenant.id": String(claims.tid), "subscription.id": doc.subscriptionId ?? "", "vm.id": doc.vmId, "object.id": String(claims.oid ?? ""),
        }, `azure:${String(claims.tid)}:${String(claims.oid ?? claims.sub)}`);
      },

      async network(options = {}): Promise<NetworkInfo> {
        const j = (await imds(`/metadata/instance?api-version=2021-02-01`, options)) as {
          compute?: { location?: string; zone?: string };
          network?: { interface?: { ipv4?: { ipAddress?: { privateIpAddress?: string; publicIpAddress?: string }[] } }[] };
        };
        const ips = j.network?.interface?.flatMap((i) => i.ipv4?.ipAddress ?? []) ?? [];
        return {
          platform: "azure", ...(j.compute?.location ? { region: j.compute.location } : {}), ...(j.compute?.zone ? { zone: j.compute.zone } : {}),
          privateAddresses: ips.map((i) => i.privateIpAddress).filter((x): x is string => !!x), publicAddresses: ips.map((i) => i.publicIpAddress).filter((x): x is string => !!x),
        };
      },

      async evidence(binding, options = {}) {
        return { format: IMDS_FORMAT, data: encodeCbor({ pkcs7: await attested(bindingAzureNonce(binding), options) }) };
      },

      async health(options = {}) {
        const what = init.probe ?? (init.jwks ? ["imds"] : ["imds", "jwks"]);
        return healthOf(await Promise.all(what.map((w) => w === "imds"
          ? probe(components.fetch, "azure", "imds", `${imdsUrl}/metadata/instance?api-version=2021-02-01`, { headers: { Metadata: "true" } }, options)
          : probe(components.fetch, "azure", "jwks", init.jwksUrl ?? entraJwksUrlDefault, {}, options))));
      },
    };
  };
}
