/** The node's persistent Ed25519 identity: its libp2p peer id. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PURPOSE, readKeyFile, writeKeyFile } from "../host/keystore.ts";
import { MalformedInputError } from "../sdk/errors.ts";
import type { Kms } from "../sdk/kms.ts";

export const NODE_KEY_FILE = "node.key";

/**
 * Load DIR/node.key, or create it (mode 0600) when absent. With a KMS (`kms` in the data dir's
 * hub.json/agent.json, or `opts.kms`) the file is a key envelope (host/keystore.ts).
 */
export async function loadOrCreateNodeKey(dataDir: string, opts: { kms?: Kms } = {}): Promise<PrivateKey> {
  const path = join(dataDir, NODE_KEY_FILE);
  const fileOpts = { dir: dataDir, purpose: PURPOSE.nodeKey, ...(opts.kms ? { kms: opts.kms } : {}) };
  if (existsSync(path)) {
    const bytes = await readKeyFile(path, fileOpts);
    try {
      const key = privateKeyFromProtobuf(bytes);
      if (key.type !== "Ed25519") throw new Error(`key type ${key.type}`);
      return key;
    } catch (err) {
      throw new MalformedInputError(`${path}: not an Ed25519 node key (${(err as Error).message})`, { cause: err });
    }
  }
  const key = await generateKeyPair("Ed25519");
  await writeKeyFile(path, privateKeyToProtobuf(key), fileOpts);
  return key;
}

export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}
