/** The node's persistent Ed25519 identity: its libp2p peer id. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MalformedInputError } from "../sdk/errors.ts";
import { writeSecretFile } from "../sdk/fs.ts";

export const NODE_KEY_FILE = "node.key";

/** Load DIR/node.key, or create it (mode 0600) when absent. */
export async function loadOrCreateNodeKey(dataDir: string): Promise<PrivateKey> {
  const path = join(dataDir, NODE_KEY_FILE);
  if (existsSync(path)) {
    try {
      const key = privateKeyFromProtobuf(readFileSync(path));
      if (key.type !== "Ed25519") throw new Error(`key type ${key.type}`);
      return key;
    } catch (err) {
      throw new MalformedInputError(`${path}: not an Ed25519 node key (${(err as Error).message})`, { cause: err });
    }
  }
  const key = await generateKeyPair("Ed25519");
  writeSecretFile(path, privateKeyToProtobuf(key));
  return key;
}

export function peerIdOf(key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString();
}
