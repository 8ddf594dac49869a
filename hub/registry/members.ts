/**
 * Federation members: one row per cluster id, keyed also by libp2p peer id.
 * A member's state is derived, never stored: time since it was last seen
 * (join, renewal or heartbeat) against the heartbeat interval.
 */
import type { Database } from "bun:sqlite";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import { ForbiddenError, MalformedInputError, NotFoundError } from "../../plugins/sdk/errors.ts";
import { apiPageSizeDefault, apiPageSizeMax, heartbeatMissedSuspect, multiaddrsPerPeerMax } from "../../plugins/sdk/limits.ts";
import { checkIds } from "./tokens.ts";
import { exportTables, importTables, type TablesImage } from "../fedlog/snapshot-tables.ts";

const SNAPSHOT_TABLES = [{ table: "members", orderBy: "cluster_id" }] as const;

export type MemberState = "healthy" | "suspect" | "offline";

/** A verified attestation result as recorded: the boundary it was judged for and when it stops counting. */
export type AttestationRecord = AttestationResult & { boundary?: string; verifiedAt?: string; expiresAt?: string };

export type Member = {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
  multiaddrs: string[];
  certSerial: string;
  certNotAfter: Date;
  attestation: AttestationRecord;
  joinedAt: Date;
  renewedAt?: Date;
  lastHeartbeat?: Date;
  /** Latest of join, renewal and heartbeat. */
  lastSeen: Date;
  /** Set when the member failed re-attestation: it is no longer a member (heartbeats, renewals refused). */
  revoked?: { at: Date; reason: string };
};

export type JoinRecord = {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
  multiaddrs: string[];
  certSerial: string;
  certNotAfter: Date;
  attestation: AttestationRecord;
  now: Date;
};

export type Page<T> = { items: T[]; next?: string };
/** Live members by heartbeat state, plus revoked members (counted apart, whatever their heartbeats). */
export type StateCounts = Record<MemberState | "revoked", number>;
export type Counters = { joins: number; renewals: number; heartbeats: number };

type MemberRow = {
  cluster_id: string;
  org: string;
  region: string;
  peer_id: string;
  multiaddrs: string;
  cert_serial: string;
  cert_not_after: number;
  attestation: string;
  joined_at: number;
  renewed_at: number | null;
  last_heartbeat: number | null;
  last_seen: number;
  revoked_at: number | null;
  revoked_reason: string | null;
};

function toMember(r: MemberRow): Member {
  const m: Member = {
    clusterId: r.cluster_id,
    org: r.org,
    region: r.region,
    peerId: r.peer_id,
    multiaddrs: JSON.parse(r.multiaddrs) as string[],
    certSerial: r.cert_serial,
    certNotAfter: new Date(r.cert_not_after),
    attestation: JSON.parse(r.attestation) as AttestationRecord,
    joinedAt: new Date(r.joined_at),
    lastSeen: new Date(r.last_seen),
  };
  if (r.renewed_at !== null) m.renewedAt = new Date(r.renewed_at);
  if (r.last_heartbeat !== null) m.lastHeartbeat = new Date(r.last_heartbeat);
  if (r.revoked_at !== null) m.revoked = { at: new Date(r.revoked_at), reason: r.revoked_reason ?? "" };
  return m;
}

/** Extra multiaddrs are dropped (limits.multiaddrsPerPeerMax). */
function clampAddrs(multiaddrs: string[]): string {
  return JSON.stringify(multiaddrs.slice(0, multiaddrsPerPeerMax));
}

/** healthy: seen within heartbeatMissedSuspect periods; suspect: within twice that; offline: longer. */
export function memberState(lastSeen: Date, now: Date, heartbeatIntervalMs: number): MemberState {
  const suspectAfterMs = heartbeatMissedSuspect * heartbeatIntervalMs;
  const age = now.getTime() - lastSeen.getTime();
  if (age <= suspectAfterMs) return "healthy";
  if (age <= 2 * suspectAfterMs) return "suspect";
  return "offline";
}

export function clampPageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return apiPageSizeDefault;
  return Math.min(Math.max(1, Math.floor(limit)), apiPageSizeMax);
}

export function memberStore(db: Database, heartbeatIntervalMs: number) {
  if (!(heartbeatIntervalMs > 0)) throw new MalformedInputError(`heartbeat interval ${heartbeatIntervalMs} ms must be positive`);
  const suspectAfterMs = heartbeatMissedSuspect * heartbeatIntervalMs;
  const offlineAfterMs = 2 * suspectAfterMs;

  const byCluster = db.query<MemberRow, [string]>("SELECT * FROM members WHERE cluster_id = ?");
  const byPeer = db.query<MemberRow, [string]>("SELECT * FROM members WHERE peer_id = ?");
  const deleteByPeer = db.query("DELETE FROM members WHERE peer_id = ? AND cluster_id != ?");
  const upsert = db.query(`
    INSERT INTO members (cluster_id, org, region, peer_id, multiaddrs, cert_serial, cert_not_after, attestation, joined_at, renewed_at, last_heartbeat, last_seen)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, ?9)
    ON CONFLICT (cluster_id) DO UPDATE SET region = ?3, peer_id = ?4, multiaddrs = ?5, cert_serial = ?6, cert_not_after = ?7,
      attestation = ?8, joined_at = ?9, renewed_at = NULL, last_heartbeat = NULL, last_seen = ?9, revoked_at = NULL, revoked_reason = NULL`);
  const renew = db.query(
    "UPDATE members SET cert_serial = ?, cert_not_after = ?, attestation = ?, renewed_at = ?5, last_seen = max(last_seen, ?5) WHERE peer_id = ?4",
  );
  const beat = db.query("UPDATE members SET multiaddrs = ?, last_heartbeat = ?2, last_seen = max(last_seen, ?2) WHERE peer_id = ?3");
  const page = db.query<MemberRow, [string, number]>("SELECT * FROM members WHERE cluster_id > ? ORDER BY cluster_id LIMIT ?");
  const healthyPage = db.query<MemberRow, [string, number, number]>(
    "SELECT * FROM members WHERE cluster_id > ? AND last_seen >= ? AND revoked_at IS NULL ORDER BY cluster_id LIMIT ?",
  );
  const stateCounts = db.query<{ healthy: number; suspect: number; offline: number; revoked: number }, [number, number]>(`
    SELECT coalesce(sum(revoked_at IS NULL AND last_seen >= ?1), 0) AS healthy,
           coalesce(sum(revoked_at IS NULL AND last_seen < ?1 AND last_seen >= ?2), 0) AS suspect,
           coalesce(sum(revoked_at IS NULL AND last_seen < ?2), 0) AS offline,
           coalesce(sum(revoked_at IS NOT NULL), 0) AS revoked
    FROM members`);
  const revokeRow = db.query("UPDATE members SET revoked_at = ?, revoked_reason = ? WHERE peer_id = ? AND revoked_at IS NULL");
  const bump = db.query("INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1");
  const counterRows = db.query<{ name: string; value: number }, []>("SELECT name, value FROM counters");

  const join = db.transaction((j: JoinRecord): Member => {
    const existing = byCluster.get(j.clusterId);
    if (existing && existing.org !== j.org) {
      throw new ForbiddenError(`cluster id ${j.clusterId} belongs to another organisation`);
    }
    const now = j.now.getTime();
    // A peer id names one member: if this node was another cluster before, that membership ends.
    deleteByPeer.run(j.peerId, j.clusterId);
    upsert.run(j.clusterId, j.org, j.region, j.peerId, clampAddrs(j.multiaddrs), j.certSerial, j.certNotAfter.getTime(), JSON.stringify(j.attestation), now);
    bump.run("joins");
    return toMember(byCluster.get(j.clusterId)!);
  });

  const renewal = db.transaction((peerId: string, serial: string, notAfter: Date, attestation: AttestationRecord, now: Date): Member => {
    const changes = renew.run(serial, notAfter.getTime(), JSON.stringify(attestation), peerId, now.getTime()).changes;
    if (changes === 0) throw new NotFoundError(`no member with peer id ${peerId}`);
    bump.run("renewals");
    return toMember(byPeer.get(peerId)!);
  });

  const heartbeat = db.transaction((peerId: string, multiaddrs: string[], now: Date): Member => {
    if (beat.run(clampAddrs(multiaddrs), now.getTime(), peerId).changes === 0) throw new NotFoundError(`no member with peer id ${peerId}`);
    bump.run("heartbeats");
    return toMember(byPeer.get(peerId)!);
  });

  return {
    heartbeatIntervalMs,
    /**
     * Record a successful join. Re-joining a cluster id of the same org replaces
     * the member (new peer id, new certificate); a cluster id owned by another
     * org is refused with ForbiddenError.
     */
    recordJoin(j: JoinRecord): Member {
      checkIds({ cluster: j.clusterId, org: j.org, region: j.region });
      return join.immediate(j);
    },
    /** Record a certificate renewal. NotFoundError for an unknown peer. */
    recordRenewal(peerId: string, serial: string, notAfter: Date, attestation: AttestationRecord, now: Date): Member {
      return renewal.immediate(peerId, serial, notAfter, attestation, now);
    },
    /**
     * End a membership that failed re-attestation, keeping the reason. The first revocation wins
     * (later failures do not overwrite it); a join with a new token replaces the member. NotFoundError for an unknown peer.
     */
    revoke(peerId: string, reason: string, now: Date): Member {
      revokeRow.run(now.getTime(), reason.slice(0, 1024), peerId);
      const r = byPeer.get(peerId);
      if (!r) throw new NotFoundError(`no member with peer id ${peerId}`);
      return toMember(r);
    },
    /** Record a heartbeat. NotFoundError for an unknown peer. */
    recordHeartbeat(peerId: string, multiaddrs: string[], now: Date): Member {
      // Heartbeats are frequent and re-sent every period: losing the last few on power loss is harmless.
      db.exec("PRAGMA synchronous = NORMAL");
      try {
        return heartbeat.immediate(peerId, multiaddrs, now);
      } finally {
        db.exec("PRAGMA synchronous = FULL");
      }
    },
    /** Every member row (joins, renewals, revocations; heartbeats as seen here) for a federation log snapshot. */
    exportSnapshot(): TablesImage {
      return db.transaction(() => exportTables(db, SNAPSHOT_TABLES))();
    },
    /**
     * Replace the members with a snapshot's: a member absent from it is removed.
     * Heartbeats are gossip, not log state: a member keeps the later of its local
     * and the snapshot's heartbeat. One transaction; idempotent.
     */
    importSnapshot(image: unknown): void {
      db.transaction(() => {
        const beats = db.query<{ cluster_id: string; peer_id: string; last_heartbeat: number }, []>(
          "SELECT cluster_id, peer_id, last_heartbeat FROM members WHERE last_heartbeat IS NOT NULL").all();
        importTables(db, SNAPSHOT_TABLES, image);
        const keep = db.query(`UPDATE members SET last_heartbeat = ?1, last_seen = max(last_seen, ?1)
          WHERE cluster_id = ?2 AND peer_id = ?3 AND (last_heartbeat IS NULL OR last_heartbeat < ?1)`);
        for (const b of beats) keep.run(b.last_heartbeat, b.cluster_id, b.peer_id);
      }).immediate();
    },
    getByCluster(clusterId: string): Member | undefined {
      const r = byCluster.get(clusterId);
      return r ? toMember(r) : undefined;
    },
    getByPeer(peerId: string): Member | undefined {
      const r = byPeer.get(peerId);
      return r ? toMember(r) : undefined;
    },
    /** Members ordered by cluster id, after `after` (exclusive); `next` is set when more may follow. */
    list(opts: { limit?: number; after?: string } = {}): Page<Member> {
      const limit = clampPageSize(opts.limit);
      return pageOf(page.all(opts.after ?? "", limit).map(toMember), limit);
    },
    /** Healthy members at `now`, ordered by cluster id, paged like `list`. */
    healthy(now: Date, opts: { limit?: number; after?: string } = {}): Page<Member> {
      const limit = clampPageSize(opts.limit);
      return pageOf(healthyPage.all(opts.after ?? "", now.getTime() - suspectAfterMs, limit).map(toMember), limit);
    },
    /** See memberState. */
    stateOf(member: Pick<Member, "lastSeen">, now: Date): MemberState {
      return memberState(member.lastSeen, now, heartbeatIntervalMs);
    },
    countByState(now: Date): StateCounts {
      const t = now.getTime();
      const r = stateCounts.get(t - suspectAfterMs, t - offlineAfterMs);
      return { healthy: r?.healthy ?? 0, suspect: r?.suspect ?? 0, offline: r?.offline ?? 0, revoked: r?.revoked ?? 0 };
    },
    /** Persisted event counters (survive restarts). */
    counters(): Counters {
      const c: Counters = { joins: 0, renewals: 0, heartbeats: 0 };
      for (const { name, value } of counterRows.all()) if (name in c) c[name as keyof Counters] = value;
      return c;
    },
  };
}

function pageOf(items: Member[], limit: number): Page<Member> {
  return items.length === limit ? { items, next: items[items.length - 1]!.clusterId } : { items };
}

export type MemberStore = ReturnType<typeof memberStore>;
