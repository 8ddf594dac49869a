/**
 * `grey-agent run`: keep the membership alive. Heartbeats to the hub over a
 * libp2p stream, certificate renewal before expiry (fresh nonce + evidence),
 * direct verified sessions with the peers the hub tells us about. When the
 * hub is unreachable the agent keeps running and keeps retrying with backoff.
 */
import type { Connection, PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { readFileSync } from "node:fs";
import { exportPkcs8Pem, exportSpkiDer, generateKeyPair } from "../hub/ca/keys.ts";
import { createLogger, type LogLevel } from "../plugins/host/log.ts";
import { backoffMs, sleep } from "../plugins/mesh-libp2p/discovery.ts";
import { loadOrCreateNodeKey, peerIdOf } from "../plugins/mesh-libp2p/node-key.ts";
import { createMeshNode } from "../plugins/mesh-libp2p/node.ts";
import { request, serve, type Channel } from "../plugins/mesh-libp2p/rpc.ts";
import { ConfigError, UnauthorizedError } from "../plugins/sdk/errors.ts";
import { derToPem, pemToDer, verifyFederationCert, type FederationIdentity } from "../plugins/sdk/identity.ts";
import { writeFileAtomic } from "../plugins/sdk/fs.ts";
import { certRenewFraction, heartbeatIntervalMsDefault } from "../plugins/sdk/limits.ts";
import {
  HeartbeatReply, PeerHello, PeerReply, PROTOCOL_HEARTBEAT, PROTOCOL_PEER, PROTOCOL_RENEW, RenewReply, type PeerInfo,
} from "../plugins/sdk/wire.ts";
import { agentCatalog } from "./catalog.ts";
import { agentServices } from "./services.ts";
import { startServices } from "../plugins/host/services.ts";
import { connectHub } from "./hub-link.ts";
import { AgentStore } from "./autonomy/store.ts";
import { agentPaths, nodeIdentity, readMembership, writeCredentials, writeMembership, type Membership } from "./state.ts";

export interface AgentRunOptions {
  dataDir: string;
  listen?: string[];
  heartbeatIntervalMs?: number;
  pskFile?: string;
  format?: string;
  /** TPM for tpm2-quote evidence (swtpm:HOST:PORT or a device path). */
  tpm?: string;
  logLevel?: LogLevel;
}

interface VerifiedPeer {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
  verifiedAt: string;
}

export interface RunningAgent {
  peerId: string;
  stop(): Promise<void>;
}

export async function startAgent(opts: AgentRunOptions): Promise<RunningAgent> {
  const logger = createLogger("agent", opts.logLevel ?? "info");
  let membership = readMembership(opts.dataDir);
  if (!membership) throw new ConfigError([`${opts.dataDir} holds no membership: run 'grey-agent join TOKEN --data-dir ${opts.dataDir}' first`]);
  const paths = agentPaths(opts.dataDir);
  const key = await loadOrCreateNodeKey(opts.dataDir);
  const myPeerId = peerIdOf(key);
  const caDer = pemToDer(readFileSync(paths.ca, "utf8"));
  const catalog = agentCatalog({ logger, clock: { now: Date.now }, identity: nodeIdentity(key) }, opts.tpm ? { tpm: opts.tpm } : {});
  const interval = opts.heartbeatIntervalMs ?? heartbeatIntervalMsDefault;
  const node = await createMeshNode({
    privateKey: key, listen: opts.listen ?? ["/ip4/127.0.0.1/tcp/0"], dhtMode: "client",
    ...(opts.pskFile ? { pskFile: opts.pskFile } : {}),
  });
  const stopping = new AbortController();
  const peers = new Map<string, VerifiedPeer>();
  // desired state: sent as `desiredSince` per hub, merged from heartbeat acks (hub/desired/rule.ts)
  const desiredStore = AgentStore.open(opts.dataDir);
  const status = {
    hubReachable: false, lastAckAt: null as string | null, heartbeatsSent: 0, heartbeatFailures: 0, renewals: 0,
  };

  const myCert = () => pemToDer(readFileSync(paths.cert, "utf8"));
  const reachabilityListeners: ((reachable: boolean) => void)[] = [];
  const setReachable = (reachable: boolean) => {
    if (status.hubReachable === reachable) return;
    status.hubReachable = reachable;
    for (const fn of reachabilityListeners) {
      try {
        fn(reachable);
      } catch (err) {
        logger.error("reachability listener failed", { error: (err as Error).message });
      }
    }
  };

  /** Check a peer's federation certificate: our CA, valid now, a member, bound to the connection's peer id. */
  const verifyPeer = async (certDer: Uint8Array, remote: string): Promise<FederationIdentity> => {
    const id = await verifyFederationCert(certDer, caDer, new Date());
    if (id.role !== "member" || id.peerId !== remote) throw new UnauthorizedError("peer certificate does not bind the connected peer id");
    return id;
  };
  const remember = (id: FederationIdentity) => {
    peers.set(id.peerId!, { clusterId: id.cluster!, org: id.org, region: id.region!, peerId: id.peerId!, verifiedAt: new Date().toISOString() });
  };

  await node.handle(
    PROTOCOL_PEER,
    serve(PROTOCOL_PEER, async (ch: Channel, conn: Connection) => {
      const hello = await ch.receive(PeerHello);
      const id = await verifyPeer(hello.cert, conn.remotePeer.toString());
      await ch.send({ type: "peer-hello", cert: myCert() });
      remember(id);
      logger.info("verified peer session", { cluster: id.cluster, peer: id.peerId, direction: "inbound" });
    }, { onRejected: (_p, err, conn) => logger.warn("refused peer", { peer: conn.remotePeer.toString(), error: (err as Error).message }) }),
  );

  const openPeerSession = async (p: PeerInfo): Promise<void> => {
    const pid = peerIdFromString(p.peerId);
    if (node.getConnections(pid).length === 0) {
      const addrs = p.multiaddrs.map((a) => multiaddr(a));
      await node.dial(addrs.length ? addrs : pid, { signal: AbortSignal.timeout(5000) });
    }
    const id = await request(node, pid, PROTOCOL_PEER, async (ch) => {
      await ch.send({ type: "peer-hello", cert: myCert() });
      const reply = await ch.receive(PeerReply);
      if (reply.type !== "peer-hello") throw new UnauthorizedError("peer did not present a certificate");
      return verifyPeer(reply.cert, p.peerId);
    });
    remember(id);
    logger.info("verified peer session", { cluster: id.cluster, peer: id.peerId, direction: "outbound" });
  };

  /** Sections services add to status.json (AgentServiceContext.reportStatus). */
  const statusSections = new Map<string, () => unknown>();
  const writeStatus = () => {
    writeFileAtomic(paths.status, JSON.stringify({
      peerId: myPeerId, clusterId: membership!.clusterId, pid: process.pid,
      multiaddrs: node.getMultiaddrs().map((m) => m.toString()),
      hub: { peerId: membership!.hubPeerId, reachable: status.hubReachable, lastAckAt: status.lastAckAt },
      heartbeatsSent: status.heartbeatsSent, heartbeatFailures: status.heartbeatFailures, renewals: status.renewals,
      certNotAfter: new Date(membership!.certNotAfter).toISOString(),
      peers: [...peers.values()],
      ...Object.fromEntries([...statusSections].map(([name, read]) => [name, read()])),
    }, null, 2) + "\n");
  };

  const renew = async (hub: PeerId): Promise<void> => {
    // CSR building (@peculiar/x509 and its reflect shim) loads at the first renewal, not at start.
    const { createCsr } = await import("../hub/ca/csr.ts");
    const keys = await generateKeyPair();
    const csr = await createCsr(keys);
    const subjectPublicKey = await exportSpkiDer(keys.publicKey);
    const res = await request(node, hub, PROTOCOL_RENEW, async (ch) => {
      await ch.send({ type: "renew-hello" });
      const c = await ch.receive(RenewReply);
      if (c.type !== "renew-challenge") throw new UnauthorizedError(`hub answered ${c.type} instead of a challenge`);
      const evidence = await catalog.collect(opts.format ?? "dev", { nonce: c.nonce, peerId: myPeerId, subjectPublicKey });
      await ch.send({ type: "renew-request", csr, evidence });
      const r = await ch.receive(RenewReply);
      if (r.type !== "renew-result") throw new UnauthorizedError(`hub answered ${r.type} instead of a certificate`);
      return r;
    });
    const me = await verifyFederationCert(res.cert, caDer, new Date());
    if (me.peerId !== myPeerId || me.cluster !== membership!.clusterId) throw new UnauthorizedError("renewed certificate does not bind this node");
    writeCredentials(opts.dataDir, { keyPem: await exportPkcs8Pem(keys.privateKey), certPem: derToPem(res.cert) });
    membership = { ...membership!, certNotAfter: me.notAfter.getTime(), certIssuedAt: Date.now() };
    writeMembership(opts.dataDir, membership);
    status.renewals++;
    logger.info("certificate renewed", { notAfter: me.notAfter.toISOString() });
  };

  const renewDue = () => {
    const m = membership!;
    return Date.now() >= m.certIssuedAt + (m.certNotAfter - m.certIssuedAt) * certRenewFraction;
  };

  const loop = (async () => {
    let seq = 0;
    let failures = 0;
    while (!stopping.signal.aborted) {
      try {
        const hub = await connectHub(node, membership!, logger, stopping.signal, 2);
        if (renewDue()) await renew(hub);
        const hubPeer = hub.toString();
        const ack = await request(node, hub, PROTOCOL_HEARTBEAT, async (ch) => {
          await ch.send({
            type: "heartbeat", seq: seq++, multiaddrs: node.getMultiaddrs().map((m) => m.toString()).slice(0, 16),
            desiredSince: desiredStore.desiredVersion(hubPeer),
          });
          const r = await ch.receive(HeartbeatReply);
          if (r.type !== "heartbeat-ack") throw new UnauthorizedError("hub refused the heartbeat");
          return r;
        });
        status.heartbeatsSent++;
        setReachable(true);
        status.lastAckAt = new Date().toISOString();
        failures = 0;
        if (ack.desiredVersion !== undefined) {
          try {
            const changed = desiredStore.applyHubDesired(hubPeer, ack.desired ?? [], ack.desiredVersion);
            if (changed) logger.info("desired state updated from the hub", { changed });
          } catch (err) {
            logger.warn("desired state from the hub not applied", { error: (err as Error).message });
          }
        }
        for (const p of ack.peers) {
          if (peers.has(p.peerId) || p.peerId === myPeerId) continue;
          await openPeerSession(p).catch((err) => logger.warn("peer session failed", { peer: p.peerId, error: (err as Error).message }));
        }
        writeStatus();
        await sleep(interval, stopping.signal);
      } catch (err) {
        if (stopping.signal.aborted) break;
        status.heartbeatFailures++;
        setReachable(false);
        writeStatus();
        logger.warn("hub unreachable; running autonomously and retrying", { error: (err as Error).message });
        await sleep(Math.max(interval, backoffMs(Math.min(failures++, 5))), stopping.signal).catch(() => {});
      }
    }
  })();

  const stopServices = await startServices(agentServices(), {
    dataDir: opts.dataDir, peerId: myPeerId, node, catalog, identity: nodeIdentity(key),
    membership: () => membership!, caCertDer: caDer, certDer: myCert,
    connectHub: (signal?: AbortSignal) => connectHub(node, membership!, logger, signal ?? stopping.signal, 2),
    onHubReachable: (fn: (reachable: boolean) => void) => void reachabilityListeners.push(fn),
    verifiedPeers: () => [...peers.keys()],
    reportStatus: (section: string, read: () => unknown) => void statusSections.set(section, read),
    logger, clock: { now: Date.now },
  });
  writeStatus();
  logger.info("agent running", { peerId: myPeerId, cluster: membership.clusterId });
  return {
    peerId: myPeerId,
    async stop() {
      stopping.abort(new Error("stopping"));
      await Promise.race([Promise.allSettled([loop]), sleep(2000)]);
      await stopServices();
      desiredStore.close();
      await Promise.race([Promise.allSettled([node.stop()]), sleep(3000)]);
    },
  };
}
