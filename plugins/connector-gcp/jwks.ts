/**
 * Google's signing keys, fetched and cached (Cache-Control max-age, bounded), or injected as a
 * snapshot. A token whose kid is not in the cached set triggers one refetch (key rotation).
 */
import type { Jwk } from "../../attest/iid/gcp.ts";
import { ConnectorResponseError, platformFetch, type IoOptions } from "../sdk/connector.ts";
import { jwksCacheMsDefault, jwksCacheMsMax, jwksKeysMax } from "./constants.ts";

export interface JwksSource {
  get(kid: string | undefined, options?: IoOptions): Promise<{ keys: Jwk[] }>;
}

export function staticJwks(jwks: { keys: Jwk[] }): JwksSource {
  return { get: async () => jwks };
}

export function fetchedJwks(url: string, fetchFn: typeof fetch, now: () => number, platform = "gcp"): JwksSource {
  let cached: { keys: Jwk[]; until: number } | undefined;
  async function load(options: IoOptions) {
    const r = await platformFetch(fetchFn, platform, url, {}, options);
    if (r.status !== 200) throw new ConnectorResponseError(platform, url, r.status, "JWKS not served");
    const j = JSON.parse(r.text()) as { keys?: unknown };
    if (!Array.isArray(j.keys) || j.keys.length > jwksKeysMax) throw new ConnectorResponseError(platform, url, r.status, "not a JWKS");
    const maxAge = /max-age=(\d+)/.exec(r.headers.get("cache-control") ?? "");
    const ttl = Math.min(maxAge ? Number(maxAge[1]) * 1000 : jwksCacheMsDefault, jwksCacheMsMax);
    cached = { keys: j.keys as Jwk[], until: now() + ttl };
    return cached;
  }
  return {
    async get(kid, options = {}) {
      let c = cached && cached.until > now() ? cached : await load(options);
      if (kid && !c.keys.some((k) => k.kid === kid)) c = await load(options);
      return { keys: c.keys };
    },
  };
}
