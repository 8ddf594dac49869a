/**
 * The agent's data dir: node identity (node.key), its federation key and
 * certificate (tls/), and membership.json. Everything needed to restart
 * without re-joining. Keys are written 0600.
 */
import type { PrivateKey } from "@libp2p/interface";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "../plugins/sdk/errors.ts";
import { writeFileAtomic, writeSecretFile } from "../plugins/sdk/fs.ts";
import type { NodeIdentity } from "../plugins/sdk/attestor.ts";

export const MEMBERSHIP_FILE = "membership.json";
export const STATUS_FILE = "status.json";

export function agentPaths(dir: string) {
  return {
    membership: join(dir, MEMBERSHIP_FILE),
    status: join(dir, STATUS_FILE),
    key: join(dir, "tls", "key.pem"),
    cert: join(dir, "tls", "cert.pem"),
    ca: join(dir, "tls", "ca.pem"),
  };
}

const Membership = z.object({
  clusterId: z.string(),
  org: z.string(),
  region: z.string(),
  caFingerprint: z.string(),
  hubPeerId: z.string(),
  bootstrap: z.array(z.string()),
  joinedAt: z.string(),
  certNotAfter: z.number(),
  /** Local time the current certificate was received: renewal is scheduled from it (notBefore is backdated). */
  certIssuedAt: z.number(),
});
export type Membership = z.infer<typeof Membership>;

export function readMembership(dir: string): Membership | undefined {
  const p = agentPaths(dir).membership;
  if (!existsSync(p)) return undefined;
  const r = Membership.safeParse(JSON.parse(readFileSync(p, "utf8")));
  if (!r.success) throw new ConfigError([`${p}: ${r.error.issues[0]?.path.join(".")}: ${r.error.issues[0]?.message}`]);
  return r.data;
}

export function writeMembership(dir: string, m: Membership): void {
  writeFileAtomic(agentPaths(dir).membership, JSON.stringify(m, null, 2) + "\n", 0o600);
}

/** Store the federation credentials: key first (0600), then cert, then CA. */
export function writeCredentials(dir: string, creds: { keyPem?: string; certPem: string; caPem?: string }): void {
  const p = agentPaths(dir);
  if (creds.keyPem) writeSecretFile(p.key, creds.keyPem);
  writeFileAtomic(p.cert, creds.certPem);
  if (creds.caPem) writeFileAtomic(p.ca, creds.caPem);
}

export function nodeIdentity(key: PrivateKey): NodeIdentity {
  return { publicKey: key.publicKey.raw, sign: async (data) => await key.sign(data) };
}
