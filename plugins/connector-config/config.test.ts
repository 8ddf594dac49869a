import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { vectorBytes, vectorText } from "../../attest/testing/vectors.ts";
import { agentCatalog, loadAgentSettings } from "../../agent/catalog.ts";
import { hubCatalog } from "../../hub/catalog.ts";
import { loadHubConfig, writeHubConfig } from "../../hub/config.ts";
import { imdsMock, stsMock } from "../connector-aws/testing.ts";
import type { EvidenceBinding } from "../sdk/attestor.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import { ConfigError } from "../sdk/errors.ts";

const quiet = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() } };
const ACCOUNT = "189292791360";
const role = { name: "grey-agent", accessKeyId: "ASIAEXAMPLEINSTANCE1", secretAccessKey: "instance/secret/key+example", token: "instance-session-token" };
const binding = (): EvidenceBinding => ({ nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWTest", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) });

let dir: string;
let imds: ReturnType<typeof imdsMock>;
let sts: ReturnType<typeof stsMock>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "grey-connectors-"));
  imds = imdsMock({
    document: vectorBytes("aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json"), signature: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64").trim(),
    rsa2048: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.rsa2048.pkcs7.b64").trim(), role,
  });
  sts = stsMock({ principals: { [role.accessKeyId]: { secretAccessKey: role.secretAccessKey, sessionToken: role.token, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/grey-agent/i-1`, account: ACCOUNT, userId: "AROAEXAMPLE:i-1" } } });
});

afterAll(() => {
  imds.stop();
  sts.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("connectors and sessions in hub.json / agent.json", () => {
  test("every problem at once, with path and line", () => {
    writeHubConfig(dir, { org: "acme", name: "hub-1", attestation: { allow: ["aws-iid"] } });
    writeFileSync(join(dir, "hub.json"), [
      "{",
      '  "org": "acme", "name": "hub-1", "attestation": { "allow": ["aws-iid"] },',
      '  "connectors": {',
      '    "aws": { "accounts": ["12"], "stsEndpoint": "not a url" },',
      '    "onprem": { "roots": ["missing-root.pem"] },',
      '    "oracle": {}',
      "  },",
      '  "sessions": { "pq": "maybe" }',
      "}",
    ].join("\n"));
    let err: unknown;
    try {
      loadHubConfig(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toContain("hub.json:4: connectors.aws.accounts.0: an AWS account id is 12 digits");
    expect(problems).toContain("hub.json:4: connectors.aws.stsEndpoint:");
    expect(problems).toContain("hub.json:3: connectors: Unrecognized key");
    expect(problems).toContain("hub.json:8: sessions.pq:");
  });

  test("file problems (unreadable roots) are reported with their line too; defaults: no connectors, pq offer", () => {
    writeFileSync(join(dir, "hub.json"), JSON.stringify({ org: "acme", name: "hub-1", attestation: { allow: ["dev"] }, connectors: { onprem: { roots: ["missing-root.pem"] } } }, null, 2));
    expect(() => loadHubConfig(dir)).toThrow(/hub\.json:\d+: connectors\.onprem\.roots\.0: missing-root\.pem: ENOENT/);
    writeHubConfig(dir, { org: "acme", name: "hub-1", attestation: { allow: ["dev"] } });
    const cfg = loadHubConfig(dir);
    expect(cfg.sessions.pq).toBe("offer");
    expect(cfg.resolvedConnectors.configured).toEqual([]);
    expect(loadAgentSettings(join(dir, "nowhere"))).toMatchObject({ pq: "offer", connectors: { configured: [] } });
  });

  test("aws-iid join evidence: the agent's connector signs STS for the binding, the hub's connector checks it and its allow-list", async () => {
    const agentDir = join(dir, "agent");
    mkdirSync(agentDir, { recursive: true });
    writeFileSync(join(agentDir, "agent.json"), JSON.stringify({ connectors: { aws: { imdsEndpoint: imds.url, stsEndpoint: sts.url } }, sessions: { pq: "require" } }));
    const agentSettings = loadAgentSettings(agentDir);
    expect(agentSettings.pq).toBe("require");
    const agent = agentCatalog(quiet, {}, [], agentSettings.connectors);
    const b = binding();
    const evidence = await agent.collect("aws-iid", b);
    expect(evidence.format).toBe("aws-iid");
    expect((decodeCbor(evidence.data) as { credential: { type: string } }).credential.type).toBe("aws-sts-get-caller-identity");

    writeFileSync(join(dir, "hub.json"), JSON.stringify({ org: "acme", name: "hub-1", attestation: { allow: ["aws-iid"] }, connectors: { aws: { accounts: [ACCOUNT], roles: ["grey-agent"], stsEndpoint: sts.url } } }));
    const hub = hubCatalog(quiet, {}, [], loadHubConfig(dir).resolvedConnectors);
    const ok = await hub.verify(evidence, b, new Date());
    expect(ok).toMatchObject({ ok: true, format: "aws-iid", claims: { fresh: true, "account.id": ACCOUNT, principal: expect.stringContaining("grey-agent"), credential: "aws-sts-get-caller-identity" } });
    expect(ok.checks.map((c) => c.name)).toContain("binding");
    // another join's binding: refused
    expect(await hub.verify(evidence, binding(), new Date())).toMatchObject({ ok: false, failed: "binding" });
    // account not on the allow-list: refused, naming it
    writeFileSync(join(dir, "hub.json"), JSON.stringify({ org: "acme", name: "hub-1", attestation: { allow: ["aws-iid"] }, connectors: { aws: { accounts: ["111111111111"], stsEndpoint: sts.url } } }));
    const strict = hubCatalog(quiet, {}, [], loadHubConfig(dir).resolvedConnectors);
    const refused = await strict.verify(evidence, b, new Date());
    expect(refused).toMatchObject({ ok: false, failed: "account" });
    expect(refused.checks.find((c) => c.name === "account")?.detail).toBe(`account ${ACCOUNT} is not on the allow-list`);
    // garbage and foreign credential types never reach a platform
    expect(await strict.verify({ format: "aws-iid", data: encodeCbor({ credential: { type: "x509-possession", data: new Uint8Array(4) } }) }, b, new Date())).toMatchObject({ ok: false, failed: "credential" });
    expect(await strict.verify({ format: "aws-iid", data: new Uint8Array([0xff, 0x00]) }, b, new Date())).toMatchObject({ ok: false, failed: "structure" });
  });

  test("gcp.serviceAccounts: validated (service account emails) and handed to the connector", () => {
    const d = join(dir, "gcp");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "hub.json"), JSON.stringify({ org: "acme", name: "hub-1", attestation: { allow: ["gcp-iit"] }, connectors: { gcp: { serviceAccounts: ["grey-agent@grey-prod.iam.gserviceaccount.com"] } } }, null, 2));
    expect(loadHubConfig(d).resolvedConnectors.gcp).toMatchObject({ projects: [], serviceAccounts: ["grey-agent@grey-prod.iam.gserviceaccount.com"] });
    writeFileSync(join(d, "hub.json"), JSON.stringify({ org: "acme", name: "hub-1", attestation: { allow: ["gcp-iit"] }, connectors: { gcp: { serviceAccounts: ["someone@example.com"] } } }, null, 2));
    expect(() => loadHubConfig(d)).toThrow(/connectors\.gcp\.serviceAccounts\.0: a Google service account email/);
  });

  test("onprem.tpm: validated, one key source only, resolved to a TPM key", () => {
    const d = join(dir, "onprem-tpm");
    mkdirSync(join(d, "pki"), { recursive: true });
    writeFileSync(join(d, "pki", "node.pem"), "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
    const write = (onprem: Record<string, unknown>) => writeFileSync(join(d, "agent.json"), JSON.stringify({ connectors: { onprem } }, null, 2));
    write({ certificate: "pki/node.pem", tpm: "swtpm:127.0.0.1:2321", tpmHandle: "0x81010010" });
    expect(loadAgentSettings(d).connectors.onprem?.key).toEqual({ kind: "tpm", tpm: { tpm: "swtpm:127.0.0.1:2321", handle: 0x81010010 } });
    write({ certificate: "pki/node.pem", tpm: "/dev/tpmrm0" });
    expect(loadAgentSettings(d).connectors.onprem?.key).toEqual({ kind: "tpm", tpm: { tpm: "/dev/tpmrm0" } });
    write({ certificate: "pki/node.pem", tpm: "tpm0" });
    expect(() => loadAgentSettings(d)).toThrow(/connectors\.onprem\.tpm: swtpm:HOST:PORT or a device path/);
    write({ certificate: "pki/node.pem", tpm: "/dev/tpmrm0", key: "pki/node.key" });
    expect(() => loadAgentSettings(d)).toThrow(/set one of key, pkcs11 or tpm/);
    write({ tpm: "/dev/tpmrm0" });
    expect(() => loadAgentSettings(d)).toThrow(/a key needs its certificate/);
  });

  test("without connectors.aws the hub keeps the verify-only aws-iid attestor; the agent can still collect", async () => {
    const hub = hubCatalog(quiet, {}, [], { configured: [] });
    expect(hub.list().find((p) => p.format === "aws-iid")?.name).toBe("attestor-aws-iid");
    const agent = agentCatalog(quiet, {}, [], { configured: [] });
    expect(agent.formats()).toEqual(expect.arrayContaining(["aws-iid", "gcp-iit", "azure-imds", "onprem-x509"]));
  });
});
