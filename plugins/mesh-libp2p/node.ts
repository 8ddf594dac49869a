/**
 * One libp2p node: TCP + (optional pnet) + Noise + Yamux + identify + ping +
 * kad-dht on the federation's private protocol. Hubs run the DHT in server
 * mode, agents in client mode.
 */
import { noise, pureJsCrypto, type ICryptoInterface } from "@chainsafe/libp2p-noise";
import { defaultCrypto } from "@chainsafe/libp2p-noise/crypto";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from "@libp2p/kad-dht";
import { ping, type Ping } from "@libp2p/ping";
import { preSharedKey } from "@libp2p/pnet";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";
import { readFileSync } from "node:fs";
import net from "node:net";
import { ConfigError } from "../sdk/errors.ts";
import { PROTOCOL_KAD } from "../sdk/wire.ts";
import { listenDefault, maxConnections } from "./constants.ts";

/**
 * Noise's default crypto hands ChaCha20-Poly1305 payloads of 1200 bytes and
 * more to node:crypto, which Bun does not implement ("Unknown cipher"): every
 * frame that size kills its stream. Keep the fast path for small frames and
 * use the pure-JS (noble) cipher for large ones.
 */
const LARGE_FRAME_BYTES = 1200;
export const bunSafeNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    return plaintext.byteLength < LARGE_FRAME_BYTES
      ? defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
      : pureJsCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k);
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    return ciphertext.byteLength < LARGE_FRAME_BYTES
      ? defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
      : pureJsCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst);
  },
};

export type MeshNode = Libp2p<{ dht: KadDHT; identify: unknown; ping: Ping }>;

export interface MeshInit {
  privateKey: PrivateKey;
  listen?: string[];
  /** "server" for hubs, "client" for agents. */
  dhtMode: "server" | "client";
  /** Path of a libp2p pre-shared key file (pnet); all federation nodes must share it. */
  pskFile?: string;
  /**
   * Keep loopback/private addresses in DHT records. Needed on loopback and on a
   * LAN; turn off for internet-facing federations.
   */
  allowPrivateAddresses?: boolean;
}

/**
 * @libp2p/tcp passes the dial's AbortSignal to net.connect, which destroys the
 * socket with an AbortError when the signal fires — and libp2p removes its own
 * 'error' listener on abort first. A dial aborted at the wrong moment (a node
 * stopping mid-dial) then raises an unhandled 'error' that kills the process.
 * Sockets created with a signal get a listener of last resort; libp2p's own
 * listeners still see every error while they are attached.
 */
let abortedDialGuard = false;
function guardAbortedDials(): void {
  if (abortedDialGuard) return;
  abortedDialGuard = true;
  const connect = net.connect;
  const guarded = function (this: unknown, ...args: unknown[]) {
    const socket = (connect as (...a: unknown[]) => net.Socket).apply(this, args);
    const opts = args[0];
    if (opts !== null && typeof opts === "object" && "signal" in opts && (opts as { signal?: unknown }).signal) {
      socket.on("error", () => {});
    }
    return socket;
  } as typeof net.connect;
  net.connect = guarded;
  net.createConnection = guarded;
}

export async function createMeshNode(init: MeshInit): Promise<MeshNode> {
  guardAbortedDials();
  let psk: Uint8Array | undefined;
  if (init.pskFile) {
    try {
      psk = readFileSync(init.pskFile);
    } catch (err) {
      throw new ConfigError([`psk: cannot read ${init.pskFile}: ${(err as Error).message}`]);
    }
  }
  const node = await createLibp2p({
    privateKey: init.privateKey,
    addresses: { listen: init.listen ?? [listenDefault] },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: bunSafeNoiseCrypto })],
    streamMuxers: [yamux()],
    ...(psk ? { connectionProtector: preSharedKey({ psk }) } : {}),
    connectionManager: { maxConnections },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: PROTOCOL_KAD,
        clientMode: init.dhtMode === "client",
        peerInfoMapper: init.allowPrivateAddresses === false ? removePrivateAddressesMapper : passthroughMapper,
        allowQueryWithZeroPeers: false,
      }),
    },
  });
  return node as unknown as MeshNode;
}
