import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { vectorBytes, vectorText } from "../../attest/testing/vectors.ts";
import { parseCertificate } from "../../attest/x509/cert.ts";
import { verifyAwsIidParts } from "../attestor-iid/index.ts";
import { decodeCbor } from "../sdk/codec.ts";
import { closedPort, connectorCompliance } from "../sdk/compliance/connector.ts";
import type { EvidenceBinding } from "../sdk/connector.ts";
import { IID_CREDENTIAL } from "./constants.ts";
import { awsConnector, type AwsConnectorInit } from "./index.ts";
import { imdsMock, stsMock } from "./testing.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const components = { logger: quiet, clock: { now: () => Date.now() }, fetch };
const pemDer = (pem: string) => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64"));
const rsa2048Cert = pemDer(vectorText("aws-ec2-iid/aws_ec2_iid_rsa2048_ap-southeast-2.pem"));
const document = vectorBytes("aws-ec2-iid/metaphor-2026-ap-southeast-2.document.json");
const ACCOUNT = "189292791360";
const role = { name: "grey-agent", accessKeyId: "ASIAEXAMPLEINSTANCE1", secretAccessKey: "instance/secret/key+example", token: "instance-session-token" };

function binding(): EvidenceBinding {
  return { nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: "12D3KooWTest", subjectPublicKey: crypto.getRandomValues(new Uint8Array(65)) };
}

let imds: ReturnType<typeof imdsMock>;
let sts: ReturnType<typeof stsMock>;
let tmp: string;

function start() {
  imds = imdsMock({
    document, signature: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.signature.b64").trim(),
    rsa2048: vectorText("aws-ec2-iid/metaphor-2026-ap-southeast-2.rsa2048.pkcs7.b64").trim(), role, publicIpv4: "203.0.113.7",
  });
  sts = stsMock({
    principals: {
      [role.accessKeyId]: { secretAccessKey: role.secretAccessKey, sessionToken: role.token, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/grey-agent/i-0c5541936caf78c12`, account: ACCOUNT, userId: "AROAEXAMPLE:i-0c5541936caf78c12" },
      AKIAOTHERACCOUNT0001: { secretAccessKey: "other-secret", arn: "arn:aws:iam::999999999999:user/mallory", account: "999999999999", userId: "AIDAOTHER" },
    },
    webIdentity: { "eyJ.irsa-token.sig": { roleArn: `arn:aws:iam::${ACCOUNT}:role/grey-irsa`, account: ACCOUNT } },
  });
}

const hubInit = (): AwsConnectorInit => ({ stsEndpoint: sts.url, accounts: [ACCOUNT], roles: ["grey-agent", "grey-irsa"], regions: ["us-east-1"], iidCertificates: [rsa2048Cert], probe: ["sts"] });

connectorCompliance("connector-aws", async () => {
  start();
  const port = closedPort();
  return {
    agent: awsConnector({ imdsEndpoint: imds.url, stsEndpoint: sts.url })(components),
    hub: awsConnector(hubInit())(components),
    unreachable: awsConnector({ imdsEndpoint: `http://127.0.0.1:${port}`, stsEndpoint: `http://127.0.0.1:${port}`, accounts: [ACCOUNT] })(components),
    now: () => new Date(),
    expiredAt: new Date(Date.now() + 20 * 60_000),
    forbidden: async () => {
      const b = binding();
      const other = awsConnector({ stsEndpoint: sts.url, credentials: { kind: "static", credentials: { accessKeyId: "AKIAOTHERACCOUNT0001", secretAccessKey: "other-secret" } } })(components);
      return { credential: await other.authenticate!(b), binding: b };
    },
    stop: () => {
      imds.stop();
      sts.stop();
    },
  };
});

describe("connector-aws: wire protocols", () => {
  beforeAll(() => {
    start();
    tmp = mkdtempSync(join(tmpdir(), "grey-aws-"));
  });
  afterAll(() => {
    imds.stop();
    sts.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test("IMDSv2: PUT token first, every GET carries it; a 401 refreshes the token once", async () => {
    const c = awsConnector({ imdsEndpoint: imds.url })(components);
    const n = await c.network!();
    expect(n).toEqual({ platform: "aws", region: "ap-southeast-2", zone: "ap-southeast-2a", privateAddresses: ["10.0.1.242"], publicAddresses: ["203.0.113.7"] });
    expect(imds.calls[0]).toBe("PUT /latest/api/token");
    expect(imds.calls.filter((x) => x === "PUT /latest/api/token").length).toBe(1);
    imds.invalidateTokens();
    await c.network!();
    expect(imds.calls.filter((x) => x === "PUT /latest/api/token").length).toBe(2);
  });

  test("evidence: the real IID document and RSA-2048 PKCS7 served by IMDS verify with attest/iid", async () => {
    const c = awsConnector({ imdsEndpoint: imds.url })(components);
    const ev = await c.evidence!(binding());
    expect(ev.format).toBe("aws-iid");
    const parts = decodeCbor(ev.data, 48 * 1024) as { document: Uint8Array; pkcs7: Uint8Array };
    expect(Buffer.from(parts.document).equals(Buffer.from(document))).toBe(true);
    const r = await verifyAwsIidParts(parts, { at: new Date("2026-03-01T00:00:00Z"), roots: [rsa2048Cert] });
    expect(r).toMatchObject({ ok: true, claims: { "account.id": ACCOUNT, region: "ap-southeast-2", "instance.id": "i-0c5541936caf78c12", fresh: false } });
    expect(parseCertificate(rsa2048Cert)).toBeDefined();
  });

  test("aws-iid-document credential: account and region allow-lists on the real document", async () => {
    const ev = await awsConnector({ imdsEndpoint: imds.url })(components).evidence!(binding());
    const cred = { type: IID_CREDENTIAL, data: ev.data };
    const at = new Date("2026-03-01T00:00:00Z");
    const ok = await awsConnector({ accounts: [ACCOUNT], regions: ["ap-southeast-2"], iidCertificates: [rsa2048Cert] })(components).verifyCredential!(cred, binding(), at);
    expect(ok).toMatchObject({ ok: true, principal: `aws:${ACCOUNT}:i-0c5541936caf78c12` });
    expect(await awsConnector({ accounts: ["111111111111"], iidCertificates: [rsa2048Cert] })(components).verifyCredential!(cred, binding(), at)).toMatchObject({ ok: false, failed: "account" });
    expect(await awsConnector({ accounts: [ACCOUNT], regions: ["eu-west-1"], iidCertificates: [rsa2048Cert] })(components).verifyCredential!(cred, binding(), at)).toMatchObject({ ok: false, failed: "region" });
    expect(await awsConnector({ accounts: [ACCOUNT] })(components).verifyCredential!(cred, binding(), at)).toMatchObject({ ok: false, failed: "roots" });
    const tampered = awsConnector({ accounts: [ACCOUNT], iidCertificates: [rsa2048Cert] })(components);
    const invalidDoc = vectorBytes("aws-ec2-iid/metaphor-invalid.document.json");
    const parts = decodeCbor(ev.data, 48 * 1024) as { pkcs7: Uint8Array };
    const { encodeCbor } = await import("../sdk/codec.ts");
    expect((await tampered.verifyCredential!({ type: IID_CREDENTIAL, data: encodeCbor({ document: invalidDoc, pkcs7: parts.pkcs7 }) }, binding(), at)).ok).toBe(false);
  });

  test("IRSA: web-identity token → AssumeRoleWithWebIdentity → presigned GetCallerIdentity → role ARN", async () => {
    const tokenFile = join(tmp, "token");
    writeFileSync(tokenFile, "eyJ.irsa-token.sig\n");
    const agent = awsConnector({ stsEndpoint: sts.url, credentials: { kind: "web-identity", tokenFile, roleArn: `arn:aws:iam::${ACCOUNT}:role/grey-irsa`, sessionName: "pod-1" } })(components);
    const b = binding();
    const r = await awsConnector(hubInit())(components).verifyCredential!(await agent.authenticate!(b), b, new Date());
    expect(r).toMatchObject({ ok: true, principal: `arn:aws:iam::${ACCOUNT}:role/grey-irsa`, claims: { role: "grey-irsa", "account.id": ACCOUNT } });
    expect(await awsConnector({ ...hubInit(), roles: ["grey-agent"] })(components).verifyCredential!(await agent.authenticate!(b), b, new Date())).toMatchObject({ ok: false, failed: "role" });
    writeFileSync(tokenFile, "eyJ.wrong.sig");
    await expect(agent.authenticate!(b)).rejects.toMatchObject({ name: "ConnectorResponseError" });
  });

  test("the hub refuses a presigned request for another action, an unsigned binding, another region, or a secret STS rejects", async () => {
    const b = binding();
    const agent = awsConnector({ imdsEndpoint: imds.url, stsEndpoint: sts.url })(components);
    const hub = awsConnector(hubInit())(components);
    const cred = await agent.authenticate!(b);
    const req = decodeCbor(cred.data, 16 * 1024) as { method: string; url: string; headers: Record<string, string>; body: string };
    const { encodeCbor } = await import("../sdk/codec.ts");
    const variant = (over: Partial<typeof req>) => ({ type: cred.type, data: encodeCbor({ ...req, ...over }) });
    expect(await hub.verifyCredential!(variant({ body: "Action=GetSessionToken&Version=2011-06-15" }), b, new Date())).toMatchObject({ ok: false, failed: "request" });
    expect(await hub.verifyCredential!(variant({ headers: { ...req.headers, "x-grey-binding": "grey:00" } }), b, new Date())).toMatchObject({ ok: false, failed: "binding" });
    expect(await hub.verifyCredential!(variant({ headers: { ...req.headers, authorization: req.headers.authorization!.replace(/Signature=[0-9a-f]{4}/, "Signature=0000") } }), b, new Date())).toMatchObject({ ok: false, failed: "sts" });
    expect(await awsConnector({ ...hubInit(), regions: ["eu-west-1"] })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "region" });
    expect(await awsConnector({ ...hubInit(), accounts: [] })(components).verifyCredential!(cred, b, new Date())).toMatchObject({ ok: false, failed: "account" });
  });
});
