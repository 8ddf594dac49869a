/**
 * An external connector, built outside the host and loaded by the compiled
 * binaries with `--plugin FILE`. It authenticates nodes with an HMAC over the
 * join binding under a pre-shared secret (a stand-in for a real platform's
 * identity service), reports health by probing an optional HTTP endpoint, and
 * uses only what the host injects (`components.host`, `components.fetch`).
 *
 *   bun build --target=bun examples/external-connector/index.ts --outfile example-connector.js
 *   grey-hub plugins --plugin example-connector.js --health
 *   bun run plugin:check example-connector.js        # the connector compliance suite
 *
 * Options (config entry `{ "file": ..., "options": { "secret": "...", "endpoint": "http://..." } }`).
 */
import type { Connector, Credential, EvidenceBinding, HealthReport, IdentityResult } from "../../plugins/sdk/connector.ts";
import type { ExternalComponents, PluginDefinition } from "../../plugins/sdk/external.ts";

const NAME = "connector-example";
const CREDENTIAL = "example-hmac";

export interface ExampleInit {
  /** Shared secret (the example's only credential). */
  secret?: string;
  /** URL probed by health(); none: health reports "ok" from configuration alone. */
  endpoint?: string;
}

async function mac(secret: string, data: Uint8Array): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function exampleConnector(init: ExampleInit = {}) {
  const secret = init.secret ?? "example-only-not-a-secret";
  return (components: ExternalComponents): Connector => {
    const { host } = components;
    const fail = (check: string, detail: string): IdentityResult => ({ format: CREDENTIAL, ok: false, checks: [{ name: check, ok: false, detail }], failed: check, claims: {} });
    return {
      name: NAME, kind: "connector", apiVersion: host.apiVersion, platform: "example", credentialTypes: [CREDENTIAL],

      async authenticate(binding: EvidenceBinding, options?: { signal?: AbortSignal }): Promise<Credential> {
        options?.signal?.throwIfAborted();
        const tag = await mac(secret, host.binding.digest256(binding));
        return { type: CREDENTIAL, data: host.cbor.encode({ peer: binding.peerId, tag }) };
      },

      async verifyCredential(credential: Credential, binding: EvidenceBinding): Promise<IdentityResult> {
        if (credential.type !== CREDENTIAL) return fail("type", `not an ${CREDENTIAL} credential`);
        let body: { peer?: unknown; tag?: unknown };
        try {
          body = host.cbor.decode(credential.data, 4096) as typeof body;
        } catch (err) {
          return fail("structure", (err as Error).message);
        }
        if (typeof body?.peer !== "string" || !(body.tag instanceof Uint8Array)) return fail("structure", "expected { peer, tag }");
        if (body.peer !== binding.peerId) return fail("peer", "credential names another peer");
        const expected = await mac(secret, host.binding.digest256(binding));
        if (!equal(body.tag, expected)) return fail("signature", "HMAC does not match this binding (forged, replayed or another key)");
        return { format: CREDENTIAL, ok: true, checks: [{ name: "structure", ok: true }, { name: "peer", ok: true }, { name: "signature", ok: true }], claims: { platform: "example", fresh: true }, principal: `example:${body.peer}` };
      },

      async network() {
        return { platform: "example", privateAddresses: [], publicAddresses: [] };
      },

      async health(options?: { signal?: AbortSignal }): Promise<HealthReport> {
        if (!init.endpoint) return { status: "ok", checks: [{ name: "config", ok: true, detail: "no endpoint configured" }] };
        const started = performance.now();
        try {
          const r = await components.fetch(init.endpoint, { signal: options?.signal ?? AbortSignal.timeout(2_000) });
          return { status: r.ok ? "ok" : "degraded", checks: [{ name: "endpoint", ok: r.ok, latencyMs: performance.now() - started, detail: `HTTP ${r.status}` }] };
        } catch (err) {
          return { status: "down", checks: [{ name: "endpoint", ok: false, detail: (err as Error).message }] };
        }
      },
    };
  };
}

export default {
  apiVersion: 1,
  name: NAME,
  kind: "connector",
  create: (components, options) => exampleConnector(options as ExampleInit)(components),
} satisfies PluginDefinition<Connector>;
