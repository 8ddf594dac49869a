import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { vectorJson, vectorText } from "../../attest/testing/vectors.ts";
import { verifyAzureImdsParts } from "../attestor-iid/index.ts";
import { bindingAzureNonce } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import { closedPort, connectorCompliance } from "../sdk/compliance/connector.ts";
import type { EvidenceBinding } from "../sdk/connector.ts";
import { MSI_CREDENTIAL } from "./constants.ts";
import { azureConnector, verifyAttestedDocument } from "./index.ts";
import { azureImdsMock } from "./testing.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const components = { logger: quiet, clock: { now: () => Date.now() }, fetch };
const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const SUB = "8a205152-b25a-417f-a676-80465535a6c9";
const binding = (): EvidenceBinding => ({ nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWAzure", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) });
const pemDer = (pem: string) => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64"));

connectorCompliance("connector-azure", async () => {
  const m = await azureImdsMock({ tenant: TENANT, subscription: SUB });
  const port = closedPort();
  const hubInit = { jwksUrl: m.jwksUrl, roots: [m.root], tenants: [TENANT], subscriptions: [SUB] };
  return {
    agent: azureConnector({ imdsEndpoint: m.url, probe: ["imds"] })(components),
    hub: azureConnector(hubInit)(components),
    unreachable: azureConnector({ imdsEndpoint: `http://127.0.0.1:${port}`, jwksUrl: `http://127.0.0.1:${port}/keys`, tenants: [TENANT], subscriptions: [SUB] })(components),
    now: () => new Date(),
    expiredAt: new Date(Date.now() + 7 * 3600_000),
    forbidden: async () => {
      const b = binding();
      const other = "00000000-0000-0000-0000-00000000beef";
      const credential = { type: MSI_CREDENTIAL, data: encodeCbor({ accessToken: m.token("https://management.azure.com/", { xms_mirid: `/subscriptions/${other}/resourcegroups/x/providers/Microsoft.Compute/virtualMachines/y` }), attested: m.document(bindingAzureNonce(b), other) }) };
      return { binding: b, credential };
    },
    stop: () => m.stop(),
  };
});

describe("connector-azure: protocol details and the real attested document", () => {
  let m: Awaited<ReturnType<typeof azureImdsMock>>;
  const good = vectorJson<{ document: string }[]>("azure-imds/taskcluster-azure_signature_good.json")[0]!;
  const realDoc = new Uint8Array(Buffer.from(good.document, "base64"));
  const msRoots = [pemDer(vectorText("azure-imds/microsoft_tls_rsa_root_g2.pem")), pemDer(vectorText("azure-imds/microsoft_tls_g2_rsa_ca_ocsp_02.pem"))];
  beforeAll(async () => {
    m = await azureImdsMock({ tenant: TENANT, subscription: SUB, fixedDocument: realDoc });
  });
  afterAll(() => m.stop());

  test("the real attested document, fetched over the IMDS protocol, verifies with attest/iid at its time", async () => {
    const c = azureConnector({ imdsEndpoint: m.url })(components);
    const ev = await c.evidence!(binding());
    expect(ev.format).toBe("azure-imds");
    const { pkcs7 } = decodeCbor(ev.data, 64 * 1024) as { pkcs7: Uint8Array };
    expect(Buffer.from(pkcs7).equals(Buffer.from(realDoc))).toBe(true);
    const at = new Date("2026-07-28T14:00:00Z");
    const v = await verifyAttestedDocument(pkcs7, { at, roots: msRoots, subscriptions: [SUB], nonce: "20260728-192400" });
    expect(v.ok && v.claims.document.vmId).toBe("b1310a36-d400-46f6-82cb-6217df846586");
    expect(await verifyAttestedDocument(pkcs7, { at, roots: msRoots, subscriptions: ["other"] })).toMatchObject({ ok: false, failed: "policy" });
    expect(await verifyAttestedDocument(pkcs7, { at, roots: msRoots, subscriptions: [SUB], nonce: "another" })).toMatchObject({ ok: false, failed: "nonce" });
    expect(await verifyAttestedDocument(pkcs7, { at: new Date("2026-11-27T00:00:00Z"), roots: msRoots, subscriptions: [SUB] })).toMatchObject({ ok: false });
    expect(await verifyAzureImdsParts({ pkcs7 }, { at, roots: msRoots })).toMatchObject({ ok: true, claims: { "subscription.id": SUB } });
  });

  test("IMDS requires Metadata: true; tenant allow-list; token for another resource is refused", async () => {
    expect((await fetch(`${m.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x`)).status).toBe(400);
    const n = await azureConnector({ imdsEndpoint: m.url })(components).network!();
    expect(n).toEqual({ platform: "azure", region: "westeurope", zone: "1", privateAddresses: ["10.1.0.4"], publicAddresses: ["20.61.0.9"] });
    const live = await azureImdsMock({ tenant: TENANT, subscription: SUB });
    try {
      const b = binding();
      const cred = await azureConnector({ imdsEndpoint: live.url })(components).authenticate!(b);
      const hub = { jwksUrl: live.jwksUrl, roots: [live.root], tenants: [TENANT], subscriptions: [SUB] };
      expect(await azureConnector(hub)(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: true, principal: `azure:${TENANT}:9f0e2b0a-1111-2222-3333-444455556666` });
      expect(await azureConnector({ ...hub, tenants: ["other"] })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "tenant" });
      expect(await azureConnector({ ...hub, resource: "https://vault.azure.net" })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "token.audience" });
      expect(await azureConnector({ ...hub, roots: msRoots })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "document.cert.anchor" });
    } finally {
      live.stop();
    }
  });
});
