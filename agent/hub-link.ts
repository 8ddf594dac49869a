/** Reaching the hub from an agent: bootstrap peers first, then the DHT. */
import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { connectBootstrap, findHubs } from "../plugins/mesh-libp2p/discovery.ts";
import type { MeshNode } from "../plugins/mesh-libp2p/node.ts";
import { RetriesExhaustedError } from "../plugins/sdk/errors.ts";
import type { Logger } from "../plugins/sdk/plugin.ts";

export interface HubTarget {
  hubPeerId: string;
  caFingerprint: string;
  bootstrap: string[];
}

/**
 * Make sure we hold a connection to the hub. Bootstrap addresses that name
 * the hub itself are dialled directly; otherwise (or if that fails) we enter
 * the DHT through any bootstrap peer and look the hub up by the federation key.
 */
export async function connectHub(node: MeshNode, target: HubTarget, logger: Logger, signal?: AbortSignal, attempts?: number): Promise<PeerId> {
  const hub = peerIdFromString(target.hubPeerId);
  if (node.getConnections(hub).length > 0) return hub;
  try {
    await connectBootstrap(node, target.bootstrap, { ...(signal ? { signal } : {}), attempts: attempts ?? 3 });
  } catch (err) {
    // With no connection at all there is no DHT to ask: fail now, the caller retries.
    if (node.getConnections().length === 0) throw err;
    logger.warn("no bootstrap peer reachable", { error: (err as Error).message });
  }
  if (node.getConnections(hub).length > 0) return hub;
  const found = await findHubs(node, target.caFingerprint, { want: target.hubPeerId, ...(signal ? { signal } : {}), ...(attempts ? { attempts } : {}) });
  for (const h of found) {
    for (const addr of h.multiaddrs) {
      try {
        const ma = addr.getComponents().some((c) => c.name === "p2p") ? addr : multiaddr(`${addr.toString()}/p2p/${h.peerId.toString()}`);
        await node.dial(ma, { signal: signal ?? AbortSignal.timeout(5000) });
        logger.info("found hub through the DHT", { hub: h.peerId.toString(), addr: ma.toString() });
        return hub;
      } catch {
        // try the next address
      }
    }
  }
  throw new RetriesExhaustedError(`connect to hub ${target.hubPeerId}`, 1);
}
