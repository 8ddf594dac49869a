/**
 * Finding the federation over the DHT: hubs provide a record under the
 * federation's namespace key (sha256 of prefix + CA fingerprint), agents
 * look it up starting from whatever bootstrap peer they reached.
 */
import type { PeerId } from "@libp2p/interface";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { RetriesExhaustedError } from "../sdk/errors.ts";
import {
  dialAttemptsMax,
  dialBackoffBaseMs,
  dialBackoffCapMs,
  findProvidersAttemptsMax,
  findProvidersTimeoutMs,
} from "../sdk/limits.ts";
import { hubNamespacePrefix } from "./constants.ts";
import type { MeshNode } from "./node.ts";

const RAW_CODEC = 0x55;

export async function federationKey(caFingerprint: string): Promise<CID> {
  const digest = await sha256.digest(new TextEncoder().encode(hubNamespacePrefix + caFingerprint));
  return CID.createV1(RAW_CODEC, digest);
}

/** Exponential backoff with full jitter, capped. `attempt` starts at 0. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(dialBackoffCapMs, dialBackoffBaseMs * 2 ** attempt);
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Dial any of the bootstrap addresses, retrying with backoff. Returns how many connected. */
export async function connectBootstrap(
  node: MeshNode,
  addrs: string[],
  options: { signal?: AbortSignal; attempts?: number } = {},
): Promise<number> {
  const attempts = options.attempts ?? dialAttemptsMax;
  let lastErr: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const results = await Promise.allSettled(
      addrs.map((a) => node.dial(multiaddr(a), { signal: options.signal ?? AbortSignal.timeout(findProvidersTimeoutMs) })),
    );
    const ok = results.filter((r) => r.status === "fulfilled").length;
    if (ok > 0) return ok;
    lastErr = results.find((r) => r.status === "rejected")?.reason;
    if (attempt + 1 < attempts) await sleep(backoffMs(attempt), options.signal);
  }
  throw new RetriesExhaustedError(`connect to bootstrap peers ${addrs.join(", ")}`, attempts, { cause: lastErr });
}

export interface FoundHub {
  peerId: PeerId;
  multiaddrs: Multiaddr[];
}

/**
 * Look up hubs of the federation. Retries with backoff because the first query
 * right after start often races the routing table. `want` narrows to one peer id.
 */
export async function findHubs(
  node: MeshNode,
  caFingerprint: string,
  options: { signal?: AbortSignal; want?: string; attempts?: number } = {},
): Promise<FoundHub[]> {
  const key = await federationKey(caFingerprint);
  const attempts = options.attempts ?? findProvidersAttemptsMax;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const found = new Map<string, FoundHub>();
    const signal = options.signal
      ? AbortSignal.any([options.signal, AbortSignal.timeout(findProvidersTimeoutMs)])
      : AbortSignal.timeout(findProvidersTimeoutMs);
    try {
      for await (const p of node.contentRouting.findProviders(key, { signal })) {
        if (p.id.equals(node.peerId)) continue;
        if (options.want && p.id.toString() !== options.want) continue;
        const known = found.get(p.id.toString());
        const addrs = [...(known?.multiaddrs ?? []), ...p.multiaddrs];
        found.set(p.id.toString(), { peerId: p.id, multiaddrs: addrs });
        if (options.want && addrs.length > 0) break;
      }
    } catch {
      // query timed out or no peers yet: retry below
    }
    const withAddrs = [...found.values()].filter((h) => h.multiaddrs.length > 0);
    if (withAddrs.length > 0) return withAddrs;
    if (options.signal?.aborted) break;
    if (attempt + 1 < attempts) await sleep(backoffMs(attempt), options.signal);
  }
  throw new RetriesExhaustedError(`find federation hubs${options.want ? ` (${options.want})` : ""} in the DHT`, attempts);
}

/** Hubs: announce ourselves under the federation key. */
export async function provideHub(node: MeshNode, caFingerprint: string, signal?: AbortSignal): Promise<void> {
  const key = await federationKey(caFingerprint);
  await node.contentRouting.provide(key, { signal: signal ?? AbortSignal.timeout(findProvidersTimeoutMs * 2) });
}
