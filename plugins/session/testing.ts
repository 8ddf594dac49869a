/** Test-only helpers for attested sessions: an in-memory channel pair and a signing party. */
import { ed25519 } from "@noble/curves/ed25519.js";
import type { z } from "zod";
import type { Channel } from "../mesh-libp2p/rpc.ts";
import { decodeMessage, encodeMessage } from "../sdk/codec.ts";
import { attestationDigest, type LocalParty } from "../sdk/session.ts";

/** Two in-memory ends of a Channel (CBOR-encoded, like the libp2p one). */
export function channelPair(): [Channel, Channel] {
  const queues: Uint8Array[][] = [[], []];
  const waiters: ((() => void) | undefined)[] = [undefined, undefined];
  const end = (me: 0 | 1): Channel => ({
    async send(msg) {
      queues[1 - me]!.push(encodeMessage(msg));
      waiters[1 - me]?.();
    },
    async receive<S extends z.ZodType>(schema: S) {
      while (queues[me]!.length === 0) await new Promise<void>((r) => (waiters[me] = r));
      return decodeMessage(queues[me]!.shift()!, schema);
    },
    async close() {},
    abort() {},
  });
  return [end(0), end(1)];
}

/** A session party with a fresh Ed25519 identity and a stand-in certificate. */
export function party(name: string): LocalParty {
  const secret = ed25519.utils.randomSecretKey();
  return { idKey: ed25519.getPublicKey(secret), sign: async (d) => ed25519.sign(d, secret), cert: new TextEncoder().encode(`cert:${name}`), attestation: attestationDigest({ who: name }) };
}
