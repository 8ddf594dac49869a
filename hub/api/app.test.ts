import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import type { FederationIdentity } from "../../plugins/sdk/identity.ts";
import { apiBodyBytesMax, apiPageSizeMax, heartbeatMissedSuspect } from "../../plugins/sdk/limits.ts";
import { Metrics } from "../metrics.ts";
import { openRegistry, type Registry } from "../registry/index.ts";
import { createApiApp } from "./app.ts";
import { bodyLimit } from "./middleware/body-limit/index.ts";
import { clientIdentity } from "./middleware/client-identity/index.ts";
import type { Env, PeerAuth } from "./types.ts";
import { Hono } from "hono";

const root = mkdtempSync(join(tmpdir(), "grey-api-"));
const interval = 1000;
const t0 = new Date("2030-01-01T00:00:00Z").getTime();
let clockMs = t0;
let registry: Registry;
let app: Hono<Env>;
let n = 0;

const admin: FederationIdentity = { role: "admin", org: "acme", name: "admin", serial: "01", notBefore: new Date(0), notAfter: new Date(t0 + 1e9) };
const authed: { peer: PeerAuth } = { peer: { identity: admin } };
const attestation: AttestationResult = { format: "dev", ok: false, checks: [{ name: "sig", ok: false }], failed: "sig", claims: { platform: "dev", n: 1 } };

function join1(clusterId: string, peerId: string, now = t0) {
  registry.recordJoin({
    clusterId, org: "acme", region: "eu-west", peerId, multiaddrs: ["/ip4/10.0.0.1/tcp/4001"],
    certSerial: "ab", certNotAfter: new Date(t0 + 3600_000), attestation, now: new Date(now),
  });
}

beforeEach(() => {
  registry?.close();
  registry = openRegistry(join(root, `a${n++}.db`), { heartbeatIntervalMs: interval });
  clockMs = t0;
  app = createApiApp({ registry, metrics: new Metrics(), clock: { now: () => clockMs }, heartbeatIntervalMs: interval });
});
afterAll(() => {
  registry?.close();
  rmSync(root, { recursive: true, force: true });
});

const get = (path: string, env: object = authed) => app.request(path, {}, env);

describe("auth", () => {
  test("health needs no certificate", async () => {
    const res = await get("/v1/health", {});
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });
  test("every other route answers 401 JSON without a verified identity", async () => {
    for (const path of ["/v1/clusters", "/v1/clusters/x", "/v1/clusters/healthy", "/metrics", "/nope"]) {
      for (const env of [{}, { peer: { none: true } }, { peer: { refused: "certificate expired" } }]) {
        const res = await get(path, env);
        expect(res.status).toBe(401);
        const body = (await res.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe("ERR_UNAUTHORIZED");
      }
    }
    const res = await get("/v1/clusters", { peer: { refused: "certificate expired" } });
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain("expired");
  });
  test("identity is available to handlers", async () => {
    const a = new Hono<Env>().use("*", clientIdentity()).get("/me", (c) => c.json(c.var.identity.role));
    expect(await (await a.request("/me", {}, authed)).json()).toBe("admin");
    expect(() => clientIdentity({ publicPaths: ["v1/health"] })).toThrow();
  });
});

describe("clusters", () => {
  test("list, get, healthy with state and attestation summary", async () => {
    join1("edge-1", "p1");
    join1("edge-2", "p2");
    clockMs = t0 + 1.5 * heartbeatMissedSuspect * interval; // edge-1 last seen at t0: suspect
    registry.recordHeartbeat("p2", ["/ip4/1.1.1.1/tcp/1"], new Date(clockMs));
    clockMs += 1;

    const list = (await (await get("/v1/clusters")).json()) as { items: { clusterId: string; state: string }[]; next?: string };
    expect(list.items.map((i) => [i.clusterId, i.state])).toEqual([["edge-1", "suspect"], ["edge-2", "healthy"]]);
    expect(list.next).toBeUndefined();

    const one = await get("/v1/clusters/edge-2");
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual({
      clusterId: "edge-2", org: "acme", region: "eu-west", peerId: "p2", multiaddrs: ["/ip4/1.1.1.1/tcp/1"], state: "healthy",
      lastHeartbeat: new Date(clockMs - 1).toISOString(), lastSeen: new Date(clockMs - 1).toISOString(),
      joinedAt: new Date(t0).toISOString(), certNotAfter: new Date(t0 + 3600_000).toISOString(),
      attestation: { format: "dev", ok: false, failed: "sig", claims: { platform: "dev", n: 1 } },
    });

    const healthy = (await (await get("/v1/clusters/healthy")).json()) as { items: { clusterId: string }[] };
    expect(healthy.items.map((i) => i.clusterId)).toEqual(["edge-2"]);
  });

  test("paging and its validation", async () => {
    for (let i = 0; i < 5; i++) join1(`c-${i}`, `p${i}`);
    const p1 = (await (await get("/v1/clusters?limit=2")).json()) as { items: { clusterId: string }[]; next: string };
    expect(p1.items.map((i) => i.clusterId)).toEqual(["c-0", "c-1"]);
    const p2 = (await (await get(`/v1/clusters?limit=2&after=${p1.next}`)).json()) as { items: { clusterId: string }[] };
    expect(p2.items.map((i) => i.clusterId)).toEqual(["c-2", "c-3"]);
    expect((await get(`/v1/clusters?limit=${apiPageSizeMax * 10}`)).status).toBe(200);
    for (const q of ["limit=0", "limit=-1", "limit=abc", "limit=1e3", "after=BAD%20ID", "after="]) {
      const res = await get(`/v1/clusters?${q}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_MALFORMED_INPUT");
    }
    expect((await get("/v1/clusters/healthy?limit=x")).status).toBe(400);
  });

  test("unknown cluster and unknown route are 404 JSON", async () => {
    for (const path of ["/v1/clusters/nope", "/v1/clusters/NOT%20AN%20ID", "/v2/x"]) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_NOT_FOUND");
    }
  });

  test("unexpected failures are 500 without details", async () => {
    const broken = { ...registry, list: () => { throw new Error("disk on fire /secret/path"); } } as unknown as Registry;
    const a = createApiApp({ registry: broken, metrics: new Metrics(), clock: { now: () => t0 }, heartbeatIntervalMs: interval });
    const res = await a.request("/v1/clusters", {}, authed);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: "ERR_INTERNAL", message: "internal error" } });
  });
});

describe("body limit", () => {
  test("413 by Content-Length or by streamed size, 400 on a bad Content-Length", async () => {
    const big = new Uint8Array(apiBodyBytesMax + 1);
    const res = await app.request("/v1/clusters", { method: "POST", body: big }, authed);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("ERR_MESSAGE_TOO_LARGE");

    const small = new Hono().use("*", bodyLimit({ maxBytes: 10 })).post("/", async (c) => c.text(await c.req.text()));
    const stream = new ReadableStream({ start(ctl) { ctl.enqueue(new Uint8Array(6)); ctl.enqueue(new Uint8Array(6)); ctl.close(); } });
    expect((await small.request("/", { method: "POST", body: stream, duplex: "half" } as RequestInit)).status).toBe(413);
    expect(await (await small.request("/", { method: "POST", body: "hello" })).text()).toBe("hello");
    expect((await small.request("/", { method: "POST", body: "x", headers: { "content-length": "abc" } })).status).toBe(400);
    expect(() => bodyLimit({ maxBytes: -1 })).toThrow();
  });
  test("within the limit, a POST to a GET route is 404", async () => {
    expect((await app.request("/v1/clusters", { method: "POST", body: "{}" }, authed)).status).toBe(404);
  });
});

describe("metrics", () => {
  test("members by state, joins, heartbeats, requests by route and status", async () => {
    join1("edge-1", "p1");
    registry.recordHeartbeat("p1", [], new Date(t0));
    registry.recordHeartbeat("p1", [], new Date(t0));
    await get("/v1/clusters/edge-1");
    await get("/v1/clusters/nope");
    await get("/v1/health", {});
    await get("/v1/clusters", {});
    const res = await get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    const text = await res.text();
    expect(text).toContain('grey_members{state="healthy"} 1\n');
    expect(text).toContain('grey_members{state="offline"} 0\n');
    expect(text).toContain("grey_joins_total 1\n");
    expect(text).toContain("grey_heartbeats_total 2\n");
    expect(text).toContain('grey_api_requests_total{route="/v1/clusters/:id",status="200"} 1\n');
    expect(text).toContain('grey_api_requests_total{route="/v1/clusters/:id",status="404"} 1\n');
    expect(text).toContain('grey_api_requests_total{route="/v1/health",status="200"} 1\n');
    expect(text).toContain('grey_api_requests_total{route="/v1/clusters",status="401"} 1\n');
  });
});
