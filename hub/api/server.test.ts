import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { request as httpsRequest } from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair as generateLibp2pKey } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { derToPem } from "../../plugins/sdk/identity.ts";
import { apiBodyBytesMax } from "../../plugins/sdk/limits.ts";
import { caPaths, createCsr, exportPkcs8Pem, generateKeyPair, initFederation, loadCa, loadHubTls } from "../ca/index.ts";
import { Metrics } from "../metrics.ts";
import { openRegistry, type Registry } from "../registry/index.ts";
import { createApiApp } from "./app.ts";
import { startApiServer, type ApiServer } from "./server.ts";

const root = mkdtempSync(join(tmpdir(), "grey-api-tls-"));
const dir = join(root, "hub");
const otherDir = join(root, "other");
let server: ApiServer;
let registry: Registry;
let caPem: string;
const admin = { cert: "", key: "" };
const other = { cert: "", key: "" };
const member = { cert: "", key: "" };
const expired = { cert: "", key: "" };

const peerId = async () => peerIdFromPrivateKey(await generateLibp2pKey("Ed25519")).toString();

async function memberCreds(now: Date, ttlMs: number) {
  const ca = await loadCa(dir);
  const keys = await generateKeyPair();
  const issued = await ca.issueMemberCert({ csrDer: await createCsr(keys), peerId: await peerId(), org: "acme", region: "eu-west", cluster: "edge-1", ttlMs, now });
  return { cert: derToPem(issued.certDer), key: await exportPkcs8Pem(keys.privateKey) };
}

beforeAll(async () => {
  const now = new Date();
  await initFederation(dir, { org: "acme", hubPeerId: await peerId(), now });
  await initFederation(otherDir, { org: "acme", hubPeerId: await peerId(), now });
  const p = caPaths(dir);
  caPem = readFileSync(p.adminCa, "utf8");
  Object.assign(admin, { cert: readFileSync(p.adminCert, "utf8"), key: readFileSync(p.adminKey, "utf8") });
  const o = caPaths(otherDir);
  Object.assign(other, { cert: readFileSync(o.adminCert, "utf8"), key: readFileSync(o.adminKey, "utf8") });
  Object.assign(member, await memberCreds(now, 3600_000));
  Object.assign(expired, await memberCreds(new Date(now.getTime() - 2 * 3600_000), 3600_000));

  registry = openRegistry(join(root, "registry.db"), { heartbeatIntervalMs: 1000 });
  const app = createApiApp({ registry, metrics: new Metrics(), clock: { now: () => Date.now() }, heartbeatIntervalMs: 1000 });
  const tls = loadHubTls(dir);
  server = await startApiServer({ host: "127.0.0.1", port: 0, app, caCertPem: tls.caCertPem, certPem: tls.certPem, keyPem: tls.keyPem });
});

afterAll(async () => {
  await server?.close();
  registry?.close();
  rmSync(root, { recursive: true, force: true });
});

type Reply = { status: number; body: string };
function call(path: string, creds?: { cert: string; key: string }, init: { method?: string; body?: Uint8Array } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${server.url}${path}`,
      { method: init.method ?? "GET", ca: caPem, ...(creds ?? {}), agent: false, headers: { connection: "close" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

describe("API over mTLS", () => {
  test("reports the real port for port 0", () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`https://127.0.0.1:${server.port}`);
  });

  test("admin and member certificates: 200", async () => {
    const a = await call("/v1/clusters", admin);
    expect(a).toEqual({ status: 200, body: JSON.stringify({ items: [] }) });
    expect((await call("/v1/clusters/healthy", member)).status).toBe(200);
    expect((await call("/metrics", admin)).body).toContain("grey_members");
  });

  test("no certificate: 401, but health is 200", async () => {
    const r = await call("/v1/clusters");
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toEqual({ error: { code: "ERR_UNAUTHORIZED", message: "client certificate required" } });
    expect(await call("/v1/health")).toEqual({ status: 200, body: JSON.stringify({ status: "ok" }) });
  });

  test("certificate from another CA: 401 (health still 200)", async () => {
    const r = await call("/v1/clusters", other);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body).error.message).toContain("signature");
    expect((await call("/v1/health", other)).status).toBe(200);
  });

  test("expired certificate: 401", async () => {
    const r = await call("/v1/clusters", expired);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body).error.message).toContain("expired");
  });

  test("huge body: 413; bad query: 400; unknown cluster: 404", async () => {
    expect((await call("/v1/clusters", admin, { method: "POST", body: new Uint8Array(apiBodyBytesMax + 1) })).status).toBe(413);
    expect((await call("/v1/clusters?limit=nope", admin)).status).toBe(400);
    expect((await call("/v1/clusters/ghost", admin)).status).toBe(404);
  });

  test("curl with --cert/--key/--cacert, as an operator would", async () => {
    const p = caPaths(dir);
    const curl = Bun.spawn(
      ["curl", "-sS", "--fail-with-body", "--cacert", p.adminCa, "--cert", p.adminCert, "--key", p.adminKey, `${server.url}/v1/clusters`],
      { stdout: "pipe", stderr: "pipe" },
    );
    const [out, err] = await Promise.all([new Response(curl.stdout).text(), new Response(curl.stderr).text()]);
    expect({ code: await curl.exited, out, err }).toEqual({ code: 0, out: JSON.stringify({ items: [] }), err: "" });
    const anon = Bun.spawn(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", p.adminCa, `${server.url}/v1/clusters`], { stdout: "pipe" });
    expect(await new Response(anon.stdout).text()).toBe("401");
  });
});
