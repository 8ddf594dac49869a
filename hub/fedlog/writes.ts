/**
 * Membership writes for the join/renew handlers: through the federation log
 * when consensus is enabled (every hub applies them), straight into the
 * local registry otherwise. Same inputs, same resulting rows.
 */
import type { AttestationRecord, JoinRecord, Registry } from "../registry/index.ts";
import type { FedlogCommand } from "./commands.ts";

export interface MembershipLog {
  active(): boolean;
  write(cmd: FedlogCommand): Promise<number>;
}

type Target = { registry: Registry; fedlog?: MembershipLog };

const json = (a: AttestationRecord) => JSON.parse(JSON.stringify(a)) as Record<string, unknown>;

export async function recordJoin(t: Target, j: JoinRecord): Promise<void> {
  if (!t.fedlog?.active()) {
    t.registry.recordJoin(j);
    return;
  }
  await t.fedlog.write({
    type: "member-joined", clusterId: j.clusterId, org: j.org, region: j.region, peerId: j.peerId, multiaddrs: j.multiaddrs,
    certSerial: j.certSerial, certNotAfter: j.certNotAfter.getTime(), attestation: json(j.attestation), at: j.now.getTime(),
  });
}

export async function recordRenewal(t: Target, peerId: string, certSerial: string, notAfter: Date, attestation: AttestationRecord, now: Date): Promise<void> {
  if (!t.fedlog?.active()) {
    t.registry.recordRenewal(peerId, certSerial, notAfter, attestation, now);
    return;
  }
  await t.fedlog.write({ type: "member-renewed", peerId, certSerial, certNotAfter: notAfter.getTime(), attestation: json(attestation), at: now.getTime() });
}

export async function revoke(t: Target, peerId: string, reason: string, now: Date): Promise<void> {
  if (!t.fedlog?.active()) {
    t.registry.revoke(peerId, reason, now);
    return;
  }
  await t.fedlog.write({ type: "member-revoked", peerId, reason: reason.slice(0, 1024), at: now.getTime() });
}

/** Task assignments, one command per subtask (they share a Raft batch): every hub then knows where each runs. */
export async function recordAssignments(log: Pick<MembershipLog, "write">, clusterId: string, subtaskIds: readonly string[], at: number): Promise<void> {
  await Promise.all(subtaskIds.map((taskId) => log.write({ type: "task-assigned", taskId, clusterId, at })));
}
