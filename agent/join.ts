/**
 * `grey-agent join TOKEN`: pin the federation CA from the token, check the
 * hub proves it holds a hub certificate from that CA for the very peer we are
 * talking to (no trust on first use), then answer its nonce with evidence
 * and a CSR, and store the short-lived certificate.
 */
import { mkdirSync } from "node:fs";
import type { z } from "zod";
import { exportPkcs8Pem, exportSpkiDer, generateKeyPair } from "../hub/ca/keys.ts";
import { createCsr } from "../hub/ca/csr.ts";
import { createLogger, type LogLevel } from "../plugins/host/log.ts";
import { loadOrCreateNodeKey, peerIdOf } from "../plugins/mesh-libp2p/node-key.ts";
import { createMeshNode } from "../plugins/mesh-libp2p/node.ts";
import { request, type Channel } from "../plugins/mesh-libp2p/rpc.ts";
import type { Catalog } from "../plugins/host/catalog.ts";
import { AttestationError, ConfigError, UnauthorizedError } from "../plugins/sdk/errors.ts";
import { caFingerprint, derToPem, verifyFederationCert } from "../plugins/sdk/identity.ts";
import { decodeJoinToken } from "../plugins/sdk/token.ts";
import { JoinReply, PROTOCOL_JOIN, type JoinActivate } from "../plugins/sdk/wire.ts";
import { agentCatalog } from "./catalog.ts";
import { connectHub } from "./hub-link.ts";
import { nodeIdentity, readMembership, writeCredentials, writeMembership, type Membership } from "./state.ts";

export interface JoinOptions {
  dataDir: string;
  token: string;
  format?: string;
  /** TPM for tpm2-quote evidence (swtpm:HOST:PORT or a device path). */
  tpm?: string;
  pskFile?: string;
  logLevel?: LogLevel;
}

/**
 * The hub trusts this node's TPM EK and asks it to prove the quoting AK lives in that TPM: recover
 * the secret it sealed (TPM2_ActivateCredential) and send it back. A TPM that cannot is reported to
 * the hub as an error reply (so the refusal is logged with its reason there) and fails the join here.
 */
async function answerActivation(ch: Channel, catalog: Catalog, format: string, challenge: JoinActivate): Promise<z.infer<typeof JoinReply>> {
  if (challenge.format !== format) throw new UnauthorizedError(`hub asked to activate ${challenge.format}, this node presented ${format}`);
  let secret: Uint8Array;
  try {
    secret = await catalog.activate(format, { credentialBlob: challenge.credentialBlob, encryptedSecret: challenge.encryptedSecret });
  } catch (err) {
    const message = `ak.activation: this node's TPM could not activate the hub's credential: ${(err as Error).message}`.slice(0, 1024);
    await ch.send({ type: "error", code: "ERR_ATTESTATION_FAILED", message }).catch(() => {});
    throw new AttestationError("ak.activation", `this node's TPM could not activate the hub's credential (the EK in the evidence is not this TPM's, or the AK changed): ${(err as Error).message}`, { cause: err });
  }
  await ch.send({ type: "join-activate-response", secret });
  return ch.receive(JoinReply);
}

export async function join(opts: JoinOptions): Promise<Membership> {
  const token = decodeJoinToken(opts.token);
  if (readMembership(opts.dataDir)) {
    throw new ConfigError([`${opts.dataDir} already holds a membership: use a fresh --data-dir to join again`]);
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const logger = createLogger("agent", opts.logLevel ?? "info");
  const key = await loadOrCreateNodeKey(opts.dataDir);
  const myPeerId = peerIdOf(key);
  const catalog = agentCatalog({ logger, clock: { now: Date.now }, identity: nodeIdentity(key) }, opts.tpm ? { tpm: opts.tpm } : {});
  const node = await createMeshNode({ privateKey: key, listen: [], dhtMode: "client", ...(opts.pskFile ? { pskFile: opts.pskFile } : {}) });
  try {
    const hub = await connectHub(node, token, logger);
    const result = await request(node, hub, PROTOCOL_JOIN, async (ch) => {
      await ch.send({ type: "join-hello", tokenId: token.tokenId });
      const challenge = await ch.receive(JoinReply);
      if (challenge.type !== "join-challenge") throw new UnauthorizedError(`hub answered ${challenge.type} instead of a challenge`);
      const fp = caFingerprint(challenge.caCert);
      if (fp !== token.caFingerprint) {
        throw new UnauthorizedError(`hub presented federation CA ${fp.slice(0, 16)}…, the token pins ${token.caFingerprint.slice(0, 16)}…`);
      }
      const hubId = await verifyFederationCert(challenge.hubCert, challenge.caCert, new Date());
      if (hubId.role !== "hub" || hubId.peerId !== hub.toString()) {
        throw new UnauthorizedError("hub certificate does not belong to the peer we are connected to");
      }
      const keys = await generateKeyPair();
      const csr = await createCsr(keys);
      const subjectPublicKey = await exportSpkiDer(keys.publicKey);
      const format = opts.format ?? "dev";
      const evidence = await catalog.collect(format, { nonce: challenge.nonce, peerId: myPeerId, subjectPublicKey });
      await ch.send({ type: "join-request", tokenId: token.tokenId, secret: token.secret, csr, evidence, multiaddrs: [] });
      let reply = await ch.receive(JoinReply);
      if (reply.type === "join-activate") reply = await answerActivation(ch, catalog, format, reply);
      if (reply.type !== "join-result") throw new UnauthorizedError(`hub answered ${reply.type} instead of a join result`);
      const me = await verifyFederationCert(reply.cert, challenge.caCert, new Date());
      if (me.role !== "member" || me.peerId !== myPeerId || me.cluster !== reply.clusterId) {
        throw new UnauthorizedError("issued certificate does not bind this node's peer id and cluster");
      }
      return { reply, keyPem: await exportPkcs8Pem(keys.privateKey), caCert: challenge.caCert, me };
    });
    writeCredentials(opts.dataDir, { keyPem: result.keyPem, certPem: derToPem(result.reply.cert), caPem: derToPem(result.caCert) });
    const membership: Membership = {
      clusterId: result.reply.clusterId,
      org: result.reply.org,
      region: result.reply.region,
      caFingerprint: token.caFingerprint,
      hubPeerId: token.hubPeerId,
      bootstrap: token.bootstrap,
      joinedAt: new Date().toISOString(),
      certNotAfter: result.me.notAfter.getTime(),
      certIssuedAt: Date.now(),
    };
    writeMembership(opts.dataDir, membership);
    return membership;
  } finally {
    await Promise.resolve(node.stop()).catch(() => {});
  }
}
