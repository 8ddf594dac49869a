import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { vectorJson, vectorText } from "../../attest/testing/vectors.ts";
import type { Jwk } from "../../attest/iid/gcp.ts";
import { bindingAudience } from "../sdk/binding.ts";
import { closedPort, connectorCompliance } from "../sdk/compliance/connector.ts";
import type { EvidenceBinding } from "../sdk/connector.ts";
import { TOKEN_CREDENTIAL } from "./constants.ts";
import { gcpConnector, verifyGcpToken } from "./index.ts";
import { fetchedJwks, staticJwks } from "./jwks.ts";
import { generateKeyPairSync } from "node:crypto";
import { gceMock } from "./testing.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const components = { logger: quiet, clock: { now: () => Date.now() }, fetch };
const binding = (): EvidenceBinding => ({ nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWGcp", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) });

connectorCompliance("connector-gcp", async () => {
  const gce = gceMock({ project: "grey-prod" });
  const port = closedPort();
  return {
    agent: gcpConnector({ metadataEndpoint: gce.url, probe: ["metadata"] })(components),
    hub: gcpConnector({ jwksUrl: gce.jwksUrl, projects: ["grey-prod"] })(components),
    unreachable: gcpConnector({ metadataEndpoint: `http://127.0.0.1:${port}`, jwksUrl: `http://127.0.0.1:${port}/certs`, projects: ["grey-prod"] })(components),
    now: () => new Date(),
    expiredAt: new Date(Date.now() + 2 * 3600_000),
    forbidden: async () => {
      const b = binding();
      return { binding: b, credential: { type: TOKEN_CREDENTIAL, data: new TextEncoder().encode(gce.mint(bindingAudience(b), true, "someone-elses-project")) } };
    },
    stop: () => gce.stop(),
  };
});

describe("connector-gcp: real token and JWKS", () => {
  const token = vectorText("gcp-iit/gce-identity-token-2025-02-12.jwt").trim();
  const jwks = vectorJson<{ keys: Jwk[] }>("gcp-iit/google_oauth2_v3_certs_snapshot.jwks.json");
  const at = new Date("2025-02-12T01:50:00Z");
  let server: ReturnType<typeof Bun.serve>;
  let fetches = 0;
  beforeAll(() => {
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (fetches++, Response.json(jwks, { headers: { "cache-control": "public, max-age=19845, must-revalidate, no-transform" } })) });
  });
  afterAll(() => server.stop(true));

  test("the real GCE token verifies against Google's JWKS (served over HTTP, cached) at its stated time", async () => {
    const source = fetchedJwks(`http://127.0.0.1:${server.port}/oauth2/v3/certs`, fetch, () => at.getTime());
    const opts = { audience: "agentcommunication.googleapis.com", at, jwks: source, projects: ["weipengpanda-project"] };
    const r = await verifyGcpToken(token, opts);
    expect(r).toMatchObject({ ok: true, principal: "326694433618-compute@developer.gserviceaccount.com", claims: { "project.id": "weipengpanda-project", zone: "europe-west1-b", "instance.id": "2875949485074006138" } });
    expect((await verifyGcpToken(token, opts)).ok).toBe(true);
    expect(fetches).toBe(1); // cached by max-age
  });

  test("the real token is refused: now (expired), another audience, another project, no projects", async () => {
    const base = { audience: "agentcommunication.googleapis.com", at, jwks: staticJwks(jwks), projects: ["weipengpanda-project"] };
    expect(await verifyGcpToken(token, { ...base, at: new Date() })).toMatchObject({ ok: false, failed: "time" });
    expect(await verifyGcpToken(token, { ...base, audience: "grey:00" })).toMatchObject({ ok: false, failed: "audience" });
    expect(await verifyGcpToken(token, { ...base, projects: ["other"] })).toMatchObject({ ok: false, failed: "project" });
    expect(await verifyGcpToken(token, { ...base, projects: [] })).toMatchObject({ ok: false, failed: "project" });
    expect(await verifyGcpToken(token, { ...base, jwks: staticJwks({ keys: jwks.keys.filter((k) => !k.kid?.startsWith("eec5")) }) })).toMatchObject({ ok: false, failed: "key" });
  });

  test("metadata protocol: Metadata-Flavor required; zone → region; unknown kid refetches the JWKS", async () => {
    const gce = gceMock({ project: "grey-prod", zone: "us-central1-f" });
    try {
      expect((await fetch(`${gce.url}/computeMetadata/v1/instance/zone`)).status).toBe(403);
      const n = await gcpConnector({ metadataEndpoint: gce.url })(components).network!();
      expect(n).toEqual({ platform: "gcp", region: "us-central1", zone: "us-central1-f", privateAddresses: ["10.132.0.2"], publicAddresses: ["34.76.0.10"] });
      let now = Date.now();
      const src = fetchedJwks(gce.jwksUrl, fetch, () => now);
      await src.get(undefined);
      await src.get("unknown-kid");
      now += 301_000;
      await src.get(undefined);
      expect(gce.calls.filter((c) => c === "/oauth2/v3/certs").length).toBe(3);
    } finally {
      gce.stop();
    }
  });
});

describe("connector-gcp: GKE Workload Identity tokens (service account, no compute_engine claims)", () => {
  const SA = "grey-agent@grey-prod.iam.gserviceaccount.com";
  let gke: ReturnType<typeof gceMock>;
  beforeAll(() => {
    gke = gceMock({ project: "grey-prod", workload: { email: SA } });
  });
  afterAll(() => gke.stop());
  const hub = (init: { serviceAccounts?: string[]; projects?: string[] }) => gcpConnector({ jwksUrl: gke.jwksUrl, ...init })(components);
  const cred = (token: string) => ({ type: TOKEN_CREDENTIAL, data: new TextEncoder().encode(token) });

  test("the agent's token from the GKE metadata server verifies by service account and by project", async () => {
    const agent = gcpConnector({ metadataEndpoint: gke.url })(components);
    const b = binding();
    const c = await agent.authenticate!(b);
    const payload = JSON.parse(Buffer.from(new TextDecoder().decode(c.data).split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    expect(payload.google).toBeUndefined();
    const expected = { ok: true, principal: SA, claims: { workload: true, service_account: SA, project: "grey-prod", platform: "gcp", fresh: true, subject: "117374950471204338917" } };
    expect(await hub({ serviceAccounts: [SA] }).verifyCredential!(c, b, new Date())).toMatchObject(expected);
    expect(await hub({ projects: ["grey-prod"] }).verifyCredential!(c, b, new Date())).toMatchObject(expected);
    const r = await hub({ serviceAccounts: [SA] }).verifyCredential!(c, b, new Date());
    expect(r.checks.map((x) => x.name)).toEqual(expect.arrayContaining(["signature", "audience", "time", "workload"]));
  });

  test("refused: forged signature, wrong audience, expired, unverified email, unlisted service account, no workload allow-list", async () => {
    const b = binding();
    const aud = bindingAudience(b);
    const h = hub({ serviceAccounts: [SA] });
    const { privateKey: other } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(await h.verifyCredential!(cred(gke.mintWorkload(aud, { signWith: other })), b, new Date())).toMatchObject({ ok: false, failed: "signature" });
    expect(await h.verifyCredential!(cred(gke.mintWorkload(bindingAudience(binding()))), b, new Date())).toMatchObject({ ok: false, failed: "audience" });
    const past = Math.floor(Date.now() / 1000) - 7200;
    expect(await h.verifyCredential!(cred(gke.mintWorkload(aud, { payload: { iat: past, exp: past + 3600 } })), b, new Date())).toMatchObject({ ok: false, failed: "time" });
    expect(await h.verifyCredential!(cred(gke.mintWorkload(aud, { payload: { email_verified: false } })), b, new Date())).toMatchObject({ ok: false, failed: "workload" });
    const unlisted = await h.verifyCredential!(cred(gke.mintWorkload(aud, { email: "intruder@other-proj.iam.gserviceaccount.com" })), b, new Date());
    expect(unlisted).toMatchObject({ ok: false, failed: "workload" });
    expect(unlisted.checks.find((c) => c.name === "workload")?.detail).toContain("intruder@other-proj.iam.gserviceaccount.com is not on the allow-list");
    // a project allow-list for another project does not admit it either
    expect(await hub({ projects: ["other-proj-x"] }).verifyCredential!(cred(gke.mintWorkload(aud)), b, new Date())).toMatchObject({ ok: false, failed: "workload" });
    // nothing configured: refused before any signature work
    expect(await hub({}).verifyCredential!(cred(gke.mintWorkload(aud)), b, new Date())).toMatchObject({ ok: false, failed: "project" });
  });

  test("a service-account allow-list alone does not admit Compute Engine tokens (they need projects)", async () => {
    const b = binding();
    const gceToken = gke.mint(bindingAudience(b), true);
    expect(await hub({ serviceAccounts: [SA] }).verifyCredential!(cred(gceToken), b, new Date())).toMatchObject({ ok: false, failed: "project" });
    expect(await hub({ serviceAccounts: [SA], projects: ["grey-prod"] }).verifyCredential!(cred(gceToken), b, new Date())).toMatchObject({ ok: true, claims: { platform: "gce", "project.id": "grey-prod" } });
  });
});
