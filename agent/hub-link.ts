/** Reaching the hub from an agent: bootstrap peers first, then the DHT. */
import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { connectBootstrap, findHubs, type FoundHub } from "../plugins/mesh-libp2p/discovery.ts";
import type { MeshNode } from "../plugins/mesh-libp2p/node.ts";
import { RetriesExhaustedError } from "../plugins/sdk/errors.ts";
import type { Logger } from "../plugins/sdk/plugin.ts";

export interface HubTarget {
  hubPeerId: string;
  caFingerprint: string;
  bootstrap: string[];
}

/** Per node: the other hub of the federation an agent fell back to while its own was unreachable. */
const fallbacks = new WeakMap<MeshNode, PeerId>();

/**
 * Make sure we hold a connection to a hub, and return it: the agent's own
 * hub when reachable; otherwise (HA: its hub is gone) any other hub of the
 * federation found through the DHT provider record — every hub of a consensus
 * group serves the member, takes its heartbeats and outbox pushes. While the
 * fallback stays connected it is used; the own hub is tried again when not.
 */
export async function connectHub(node: MeshNode, target: HubTarget, logger: Logger, signal?: AbortSignal, attempts?: number): Promise<PeerId> {
  const hub = peerIdFromString(target.hubPeerId);
  if (node.getConnections(hub).length > 0) return hub;
  const alt = fallbacks.get(node);
  if (alt && node.getConnections(alt).length > 0) return alt;
  try {
    return await connectOwnHub(node, target, logger, signal, attempts);
  } catch (err) {
    if (signal?.aborted) throw err;
    const other = await connectOtherHub(node, target, logger, signal).catch(() => undefined);
    if (!other) throw err;
    fallbacks.set(node, other);
    return other;
  }
}

async function dialFound(node: MeshNode, h: FoundHub, logger: Logger, signal?: AbortSignal): Promise<boolean> {
  for (const addr of h.multiaddrs) {
    try {
      const ma = addr.getComponents().some((c) => c.name === "p2p") ? addr : multiaddr(`${addr.toString()}/p2p/${h.peerId.toString()}`);
      await node.dial(ma, { signal: signal ?? AbortSignal.timeout(5000) });
      logger.info("found hub through the DHT", { hub: h.peerId.toString(), addr: ma.toString() });
      return true;
    } catch {
      // try the next address
    }
  }
  return false;
}

/** Any hub of the federation but the agent's own (one DHT lookup). */
async function connectOtherHub(node: MeshNode, target: HubTarget, logger: Logger, signal?: AbortSignal): Promise<PeerId | undefined> {
  if (node.getConnections().length === 0) return undefined;
  const found = await findHubs(node, target.caFingerprint, { ...(signal ? { signal } : {}), attempts: 1 });
  for (const h of found) {
    if (h.peerId.toString() === target.hubPeerId) continue;
    if (node.getConnections(h.peerId).length > 0 || (await dialFound(node, h, logger, signal))) {
      logger.warn("own hub unreachable: using another hub of the federation", { hub: h.peerId.toString() });
      return h.peerId;
    }
  }
  return undefined;
}

/**
 * Connect to the agent's own hub. Bootstrap addresses that name
 * the hub itself are dialled directly; otherwise (or if that fails) we enter
 * the DHT through any bootstrap peer and look the hub up by the federation key.
 */
async function connectOwnHub(node: MeshNode, target: HubTarget, logger: Logger, signal?: AbortSignal, attempts?: number): Promise<PeerId> {
  const hub = peerIdFromString(target.hubPeerId);
  try {
    await connectBootstrap(node, target.bootstrap, { ...(signal ? { signal } : {}), attempts: attempts ?? 3 });
  } catch (err) {
    // With no connection at all there is no DHT to ask: fail now, the caller retries.
    if (node.getConnections().length === 0) throw err;
    logger.warn("no bootstrap peer reachable", { error: (err as Error).message });
  }
  if (node.getConnections(hub).length > 0) return hub;
  const found = await findHubs(node, target.caFingerprint, { want: target.hubPeerId, ...(signal ? { signal } : {}), ...(attempts ? { attempts } : {}) });
  for (const h of found) if (await dialFound(node, h, logger, signal)) return hub;
  throw new RetriesExhaustedError(`connect to hub ${target.hubPeerId}`, 1);
}
