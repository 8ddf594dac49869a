/**
 * TPM AK trust by credential activation against the EK at join, on the compiled binaries and two
 * real swtpms (A manufactured by swtpm_setup with an EK certificate in NV, B plain):
 * - the hub's policy pins TPM A's EK (not its AK): the agent on A joins through the join-activate
 *   round trip, the registry records ak.trust=ek-activation, and renewals keep the same AK;
 * - an agent on TPM B (another EK) is refused with `policy.ek`;
 * - an org whose boundary trusts EK certificates (verifiers.tpm2-quote.ekRoots = swtpm_localca CA)
 *   admits TPM A by its certificate, and refuses TPM B (no EK certificate);
 * - a forger that presents TPM A's EK with a quote from TPM B cannot answer the challenge:
 *   `ak.activation`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPair as libp2pKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { createCsr } from "../../hub/ca/csr.ts";
import { exportSpkiDer, generateKeyPair } from "../../hub/ca/keys.ts";
import { tpmQuoteAttestor } from "../../plugins/attestor-tpm/attestor.ts";
import { startSwtpm, type SwtpmWithCa } from "../../plugins/attestor-tpm/testing/swtpm.ts";
import { createMeshNode, type MeshNode } from "../../plugins/mesh-libp2p/node.ts";
import { request } from "../../plugins/mesh-libp2p/rpc.ts";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { decodeJoinToken } from "../../plugins/sdk/token.ts";
import { JoinReply, PROTOCOL_JOIN } from "../../plugins/sdk/wire.ts";
import {
  adminCreds, agentBin, agentStatus, api, createToken, initHub, requireBinaries, run, startAgent, startHub, stopAll, tempDir, waitFor,
  type Daemon, type HubRun,
} from "./harness.ts";

type ClusterView = { state: string; attestation: { format: string; ok: boolean; claims: Record<string, unknown>; boundary?: string } };
const noop = () => {};
const components = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };

describe("tpm2-quote with EK trust: credential activation at join (compiled binaries, swtpm)", () => {
  let a: SwtpmWithCa;
  let b: SwtpmWithCa;
  let hubDir: string;
  let hub: Daemon & { info: HubRun };
  let ekA: string;
  const spec = (sw: SwtpmWithCa) => `swtpm:${sw.host}:${sw.port}`;
  const view = async (cluster: string) => (await api(hub.info.api, `/v1/clusters/${cluster}`, adminCreds(hubDir))).body as ClusterView;

  beforeAll(async () => {
    requireBinaries();
    [a, b] = await Promise.all([startSwtpm({ ekCert: true }), startSwtpm()]);
    const ek = await run(agentBin, ["tpm", "ek", "--tpm", spec(a), "--json"]);
    expect(ek.stderr).toBe("");
    const parsed = JSON.parse(ek.stdout) as { name: string; certificate: boolean };
    expect(parsed.certificate).toBe(true);
    ekA = parsed.name;
    hubDir = tempDir();
    await initHub(hubDir, ["--org", "acme"]);
    writeFileSync(join(hubDir, "ek-roots.pem"), a.ekCa!);
    const policy = join(hubDir, "attest-policy.yaml");
    writeFileSync(policy, [
      "version: 1",
      "verifiers:",
      "  tpm2-quote: { ekRoots: ek-roots.pem }",
      "boundaries:",
      "  same-org:",
      "    formats: [tpm2-quote]",
      "    tpm2-quote:",
      `      ekNames: ["${ekA}"]`,
      "  different-org:",
      "    formats: [tpm2-quote]",
      "",
    ].join("\n"));
    hub = await startHub(hubDir, ["--attest-policy", policy, "--cert-ttl", "10s", "--heartbeat-interval", "500ms"]);
  }, 60_000);
  afterAll(async () => {
    await stopAll();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test("the policy pins TPM A's EK: the agent on A joins by credential activation, and renews with the same AK", async () => {
    const dir = tempDir();
    const token = await createToken(hubDir, "edge-ek", "acme", "eu-west");
    const joined = await run(agentBin, ["join", token, "--data-dir", dir, "--format", "tpm2-quote", "--tpm", spec(a)]);
    expect(joined.stderr).toBe("");
    expect(joined.exitCode).toBe(0);
    const first = await view("edge-ek");
    expect(first.state).toBe("healthy");
    expect(first.attestation.claims["ak.trust"]).toBe("ek-activation");
    expect(first.attestation.claims["ek.name"]).toBe(ekA);
    const akName = first.attestation.claims["ak.name"];

    const agent = startAgent(dir, ["--format", "tpm2-quote", "--tpm", spec(a)]);
    await waitFor("a successful re-attestation", () => (agentStatus(dir)?.renewals ?? 0) >= 1, 20_000);
    const renewed = await view("edge-ek");
    expect(renewed.state).toBe("healthy");
    expect(renewed.attestation.claims["ak.trust"]).toBe("ek-activation");
    expect(renewed.attestation.claims["ak.name"]).toBe(akName);
    await agent.stop();
  }, 60_000);

  test("an agent on another TPM (another EK) is refused with policy.ek", async () => {
    const token = await createToken(hubDir, "edge-other", "acme", "eu-west");
    const r = await run(agentBin, ["join", token, "--data-dir", tempDir(), "--format", "tpm2-quote", "--tpm", spec(b)]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("policy.ek");
    expect(r.stderr).toContain("is not pinned");
  }, 30_000);

  test("a boundary that trusts EK certificates (ekRoots) admits TPM A by its NV certificate, refuses TPM B", async () => {
    const ok = await run(agentBin, ["join", await createToken(hubDir, "partner-a", "globex", "us-east"), "--data-dir", tempDir(), "--format", "tpm2-quote", "--tpm", spec(a)]);
    expect(ok.stderr).toBe("");
    expect(ok.exitCode).toBe(0);
    const v = await view("partner-a");
    expect(v.attestation.boundary).toBe("different-org");
    expect(v.attestation.claims["ek.trust"]).toBe("certificate");
    expect(v.attestation.claims["ak.trust"]).toBe("ek-activation");
    const bad = await run(agentBin, ["join", await createToken(hubDir, "partner-b", "globex", "us-east"), "--data-dir", tempDir(), "--format", "tpm2-quote", "--tpm", spec(b)]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain("policy.ek");
    expect(bad.stderr).toContain("no EK certificate");
  }, 30_000);

  test("a forger presenting TPM A's EK with TPM B's quote cannot answer the challenge: ak.activation", async () => {
    const token = decodeJoinToken(await createToken(hubDir, "edge-forged", "acme", "eu-west"));
    const node: MeshNode = await createMeshNode({ privateKey: await libp2pKeyPair("Ed25519"), listen: [], dhtMode: "client" });
    try {
      await node.dial(multiaddr(hub.info.multiaddrs[0]!));
      const hubPeer = peerIdFromString(hub.info.peerId);
      const aEvidence = decodeCbor((await tpmQuoteAttestor({ tpm: spec(a) })(components).collect!({ nonce: new Uint8Array(32), peerId: "x", subjectPublicKey: new Uint8Array(1) })).data) as Record<string, Uint8Array>;
      const outcome = await request(node, hubPeer, PROTOCOL_JOIN, async (ch) => {
        await ch.send({ type: "join-hello", tokenId: token.tokenId });
        const challenge = await ch.receive(JoinReply);
        if (challenge.type !== "join-challenge") throw new Error(challenge.type);
        const keys = await generateKeyPair();
        const csr = await createCsr(keys);
        const binding = { nonce: challenge.nonce, peerId: node.peerId.toString(), subjectPublicKey: await exportSpkiDer(keys.publicKey) };
        const bQuote = decodeCbor((await tpmQuoteAttestor({ tpm: spec(b) })(components).collect!(binding)).data) as Record<string, Uint8Array>;
        const forged = { format: "tpm2-quote", data: encodeCbor({ ...bQuote, ekPublic: aEvidence.ekPublic!, ekCert: aEvidence.ekCert! }) };
        await ch.send({ type: "join-request", tokenId: token.tokenId, secret: token.secret, csr, evidence: forged, multiaddrs: [] });
        const activate = await ch.receive(JoinReply);
        expect(activate.type).toBe("join-activate");
        // TPM B cannot open a credential sealed to A's EK; the forger guesses
        await ch.send({ type: "join-activate-response", secret: crypto.getRandomValues(new Uint8Array(32)) });
        return ch.receive(JoinReply).then((r) => r.type, (err: Error) => err.message);
      }, 20_000);
      expect(outcome).toContain("ak.activation");
      expect(outcome).toContain("not recovered");
      expect((await api(hub.info.api, "/v1/clusters/edge-forged", adminCreds(hubDir))).status).toBe(404);
      const metrics = (await api(hub.info.api, "/metrics", adminCreds(hubDir))).text;
      expect(metrics).toContain('grey_attestations_total{format="tpm2-quote",result="refused",reason="ak.activation"}');
      expect(metrics).toContain('grey_attestations_total{format="tpm2-quote",result="refused",reason="policy.ek"}');
    } finally {
      await node.stop();
    }
  }, 30_000);
});
