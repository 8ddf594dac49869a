/**
 * Desired state: per-cluster key/value settings written by an admin at the
 * hub (PUT /v1/clusters/:id/desired/:key) or at the edge by the agent itself
 * (`grey-agent desired set`, signed with the agent's node key, delivered
 * through its outbox). Both sides hold a copy and merge with ONE rule:
 *
 *   The entry with the greater timestamp `at` wins. On equal `at`, a hub
 *   write beats a local one. On equal `at` and source, the greater value
 *   (code-unit order) wins, so the order is total.
 *
 * The order is total, so merging is commutative, associative and idempotent:
 * whatever order changes arrive in, the hub and every agent of the cluster
 * end up holding the same winner per key. Timestamps are hybrid: wall-clock
 * milliseconds, bumped past the entry a write replaces (`nextAt`), so a
 * write made after seeing another one always supersedes it, even when the
 * writer's clock is behind. Concurrent writes (neither saw the other) are
 * ordered by wall time: clocks are assumed roughly synchronised.
 */
import { GreyError, MalformedInputError } from "../../plugins/sdk/errors.ts";
import { encodeCbor } from "../../plugins/sdk/codec.ts";

/** Longest key, in bytes (ASCII: letters, digits, '.', '_', '-', '/'). Longer: DesiredEntryInvalidError. */
export const desiredKeyBytesMax = 128;
/** Longest value, in UTF-8 bytes. Longer: DesiredEntryInvalidError. */
export const desiredValueBytesMax = 1024;
/** Keys one cluster may hold. Beyond: a write of a new key is refused (DesiredKeysFullError); existing keys still change. */
export const desiredKeysPerClusterMax = 1024;
/** Entries carried by one heartbeat ack (the rest follow with the next heartbeats). */
export const desiredEntriesPerAckMax = 32;
/** Bytes of keys and values carried by one heartbeat ack (well under the 64 KiB wire message limit). */
export const desiredAckBytesMax = 16 * 1024;

export const desiredKeyPattern = /^[A-Za-z0-9][A-Za-z0-9._\/-]*$/;

export type DesiredSource = "hub" | "local";

export interface DesiredEntry {
  key: string;
  value: string;
  /** Hybrid timestamp (ms). */
  at: number;
  source: DesiredSource;
}

export class DesiredEntryInvalidError extends MalformedInputError {}

export class DesiredKeysFullError extends GreyError {
  constructor(cluster: string) {
    super("ERR_DESIRED_FULL", `cluster ${cluster} already holds ${desiredKeysPerClusterMax} desired-state keys: change or reuse an existing key`);
  }
}

/** A local change lost to a newer entry while it was being signed: nothing recorded, try again. */
export class DesiredSupersededError extends GreyError {
  constructor(key: string) {
    super("ERR_DESIRED_SUPERSEDED", `desired key ${key} changed meanwhile with a later timestamp: set it again`);
  }
}

const utf8 = new TextEncoder();

export function checkDesiredKey(key: string): void {
  if (key.length === 0 || utf8.encode(key).byteLength > desiredKeyBytesMax || !desiredKeyPattern.test(key)) {
    throw new DesiredEntryInvalidError(`desired key ${JSON.stringify(key.slice(0, 64))}: must be 1-${desiredKeyBytesMax} of letters, digits, '.', '_', '-', '/' (starting with a letter or digit)`);
  }
}

export function checkDesiredValue(value: string): void {
  const n = utf8.encode(value).byteLength;
  if (n > desiredValueBytesMax) throw new DesiredEntryInvalidError(`desired value of ${n} bytes exceeds ${desiredValueBytesMax} bytes`);
}

const rank = (s: DesiredSource) => (s === "hub" ? 1 : 0);

/** The merge rule's total order: > 0 when `a` wins over `b`, 0 when they are the same entry. */
export function compareDesired(a: Omit<DesiredEntry, "key">, b: Omit<DesiredEntry, "key">): number {
  if (a.at !== b.at) return a.at > b.at ? 1 : -1;
  if (a.source !== b.source) return rank(a.source) - rank(b.source);
  return a.value === b.value ? 0 : a.value > b.value ? 1 : -1;
}

/** Does `incoming` replace `current` (absent: always)? Equal entries do not (idempotent). */
export function desiredWins(incoming: Omit<DesiredEntry, "key">, current: Omit<DesiredEntry, "key"> | undefined): boolean {
  return !current || compareDesired(incoming, current) > 0;
}

/** The timestamp of a new write replacing `current`: now, or just past `current` (hybrid clock: never behind what it supersedes). */
export function nextDesiredAt(now: number, current: { at: number } | undefined): number {
  return Math.max(now, (current?.at ?? 0) + 1);
}

/** The bytes an agent signs for a local change (Ed25519, its node key). */
export function desiredSigningPayload(clusterId: string, key: string, value: string, at: number): Uint8Array {
  return encodeCbor(["grey-desired-change/1", clusterId, key, value, at]);
}
