/**
 * Compliance suite for connector plugins (sdk/connector.ts). An implementation
 * runs it in a few lines from its own test file, against loopback servers that
 * speak its platform's protocol:
 *
 *   connectorCompliance("connector-aws", async () => {
 *     const env = await startMocks();
 *     return { agent, hub, unreachable, now: () => new Date(), expiredAt: ..., stop: env.stop };
 *   });
 *
 * What it checks: the plugin declares itself correctly; a credential made by
 * `agent.authenticate` verifies on `hub`; every negative case fails with a
 * result naming a failed check and never throws — forged credential bytes,
 * garbage, another nonce (replay), another peer, another key (wrong
 * audience), an expired credential, an unknown type; an unreachable platform
 * is a typed ConnectorUnavailableError on the agent side, health not "ok", and a
 * failed (not thrown) verification on the hub side; the catalog accepts the
 * plugin and validates its output.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Catalog } from "../../host/catalog.ts";
import type { EvidenceBinding } from "../attestor.ts";
import type { Connector, Credential, IdentityResult } from "../connector.ts";
import { PLUGIN_API_VERSION } from "../plugin.ts";

export interface ConnectorHarness {
  /** Agent-side instance, configured to reach the platform (mock). */
  agent: Connector;
  /** Hub-side instance, configured with allow-lists that admit `agent`. */
  hub: Connector;
  /** An instance whose platform endpoints refuse connections (closed loopback port). Absent: that case is skipped. */
  unreachable?: Connector;
  /** Verification time for fresh credentials. */
  now(): Date;
  /** A time at which a credential made now must be refused as expired. Absent: credentials do not expire (case skipped). */
  expiredAt?: Date;
  /** A valid credential the hub must refuse by policy (another account/project/tenant), when the harness can make one. */
  forbidden?: () => Promise<{ credential: Credential; binding: EvidenceBinding }>;
  stop(): Promise<void> | void;
}

export interface ConnectorComplianceOptions {
  /** Whether credentials are bound to nonce, peer and key (default true). Unbound connectors must claim fresh=false. */
  bound?: boolean;
  /** Budget for a call against an unreachable endpoint to fail. */
  unreachableMs?: number;
}

function newBinding(): EvidenceBinding {
  return { nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: `12D3KooW${crypto.randomUUID().replace(/-/g, "")}`, subjectPublicKey: crypto.getRandomValues(new Uint8Array(91)) };
}

function flip(data: Uint8Array, at: number): Uint8Array {
  const out = new Uint8Array(data);
  const i = Math.max(0, Math.min(out.length - 1, at));
  out[i] = out[i]! ^ 0x01;
  return out;
}

function expectRefused(r: IdentityResult): void {
  expect(r.ok).toBe(false);
  expect(typeof r.failed).toBe("string");
  expect(r.checks.some((c) => !c.ok && c.name === r.failed)).toBe(true);
}

export function connectorCompliance(name: string, setup: () => Promise<ConnectorHarness>, options: ConnectorComplianceOptions = {}): void {
  const bound = options.bound ?? true;
  const unreachableMs = options.unreachableMs ?? 6_000;

  describe(`connector compliance: ${name}`, () => {
    let h: ConnectorHarness;
    let binding: EvidenceBinding;
    let cred: Credential;

    beforeAll(async () => {
      h = await setup();
      await h.agent.start?.();
      await h.hub.start?.();
      binding = newBinding();
      cred = await h.agent.authenticate!(binding);
    });
    afterAll(async () => {
      await h.agent.stop?.();
      await h.hub.stop?.();
      await h.stop();
    });

    test("declares itself as a connector of this plugin API", () => {
      for (const c of [h.agent, h.hub]) {
        expect(c.kind).toBe("connector");
        expect(c.apiVersion).toBe(PLUGIN_API_VERSION);
        expect(c.platform).toMatch(/^[a-z0-9-]+$/);
        expect(typeof c.health).toBe("function");
      }
      expect(typeof h.agent.authenticate).toBe("function");
      expect(h.hub.credentialTypes).toContain(cred.type);
    });

    test("happy path: the agent's credential verifies on the hub and names a principal", async () => {
      const r = await h.hub.verifyCredential!(cred, binding, h.now());
      if (!r.ok) throw new Error(`refused at ${r.failed}: ${JSON.stringify(r.checks)}`);
      expect(r.checks.every((c) => c.ok)).toBe(true);
      expect(r.principal?.length).toBeGreaterThan(0);
      expect(r.format).toBe(cred.type);
      if (!bound) expect(r.claims.fresh).toBe(false);
    });

    test("through the catalog: accepted, and its results are validated", async () => {
      const catalog = new Catalog();
      catalog.add(h.hub);
      expect(catalog.list().find((p) => p.name === h.hub.name)?.platform).toBe(h.hub.platform);
      expect((await catalog.verifyCredential(cred, binding, h.now())).ok).toBe(true);
      expectRefused(await catalog.verifyCredential({ type: "no-such-type", data: cred.data }, binding, h.now()));
    });

    test("forged credential: flipped bytes anywhere are refused, never thrown", async () => {
      for (const at of [0, Math.floor(cred.data.length / 3), Math.floor(cred.data.length / 2), cred.data.length - 8, cred.data.length - 1]) {
        expectRefused(await h.hub.verifyCredential!({ type: cred.type, data: flip(cred.data, at) }, binding, h.now()));
      }
    });

    test("garbage and empty credentials are refused", async () => {
      for (const data of [new Uint8Array(0), new Uint8Array([0xff, 0x00, 0x13]), new TextEncoder().encode("{}".repeat(10))]) {
        expectRefused(await h.hub.verifyCredential!({ type: cred.type, data }, binding, h.now()));
      }
    });

    test("unknown credential type is refused", async () => {
      expectRefused(await h.hub.verifyCredential!({ type: "no-such-type", data: cred.data }, binding, h.now()));
    });

    if (bound) {
      test("replayed nonce: a credential made for another nonce is refused", async () => {
        expectRefused(await h.hub.verifyCredential!(cred, { ...binding, nonce: crypto.getRandomValues(new Uint8Array(32)) }, h.now()));
      });
      test("wrong audience: a credential for another node or another key is refused", async () => {
        expectRefused(await h.hub.verifyCredential!(cred, { ...binding, peerId: newBinding().peerId }, h.now()));
        expectRefused(await h.hub.verifyCredential!(cred, { ...binding, subjectPublicKey: newBinding().subjectPublicKey }, h.now()));
      });
    }

    test("expired: the same credential is refused later", async () => {
      if (!h.expiredAt) return;
      expectRefused(await h.hub.verifyCredential!(cred, binding, h.expiredAt));
    });

    test("policy: a valid credential from outside the allow-lists is refused", async () => {
      if (!h.forbidden) return;
      const f = await h.forbidden();
      expectRefused(await h.hub.verifyCredential!(f.credential, f.binding, h.now()));
    });

    test("health: reachable platform is ok", async () => {
      const r = await h.agent.health({ signal: AbortSignal.timeout(5_000) });
      expect(r.status).toBe("ok");
      expect(r.checks.length).toBeGreaterThan(0);
    });

    test("network: reports the platform", async () => {
      if (!h.agent.network) return;
      const n = await h.agent.network();
      expect(n.platform).toBe(h.agent.platform);
      expect(Array.isArray(n.privateAddresses)).toBe(true);
    });

    test("evidence: has the declared format", async () => {
      if (!h.agent.evidence) return;
      const ev = await h.agent.evidence(binding);
      expect(ev.format).toBe(h.agent.evidenceFormat!);
      expect(ev.data.byteLength).toBeGreaterThan(0);
    });

    test("unreachable endpoint: typed error on the agent, health not ok, refused (not thrown) on the hub", async () => {
      if (!h.unreachable) return;
      const started = performance.now();
      const err = await h.unreachable.authenticate!(newBinding()).then(() => undefined, (e: Error) => e);
      expect(err?.name).toBe("ConnectorUnavailableError");
      expect(performance.now() - started).toBeLessThan(unreachableMs);
      expect((await h.unreachable.health()).status).not.toBe("ok");
      if (h.unreachable.verifyCredential) expectRefused(await h.unreachable.verifyCredential(cred, binding, h.now()));
    });

    test("abort: an aborted signal stops authenticate", async () => {
      await expect(h.agent.authenticate!(newBinding(), { signal: AbortSignal.abort() })).rejects.toBeDefined();
    });
  });
}

/** A loopback port nothing listens on (for "unreachable endpoint" harnesses). */
export function closedPort(): number {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const port = s.port!;
  s.stop(true);
  return port;
}
