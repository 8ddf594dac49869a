/**
 * Raft member ids derived from libp2p peer ids: the first 48 bits of
 * sha256(peerId), so every hub computes the same id for the same peer
 * without coordination (collisions are 1 in 2^48 per pair; checked at startup).
 */
import { createHash } from "node:crypto";

export function nodeIdOfPeer(peerId: string): number {
  const h = createHash("sha256").update(peerId).digest();
  const id = h.readUIntBE(0, 6);
  return id === 0 ? 1 : id;
}
