/**
 * Commands of the federation log: typed, versioned, CBOR-encoded. A command
 * is what the leader hub decided (after verifying evidence, issuing the
 * certificate...), carrying every input the state machine needs — including
 * the time — so applying it is deterministic on every hub.
 *
 * Versioning: `v` is the command schema version. A hub that meets a version
 * or type it does not know skips the entry (logged, counted) on every
 * replica of that build alike; roll upgrades before writing new commands.
 */
import { z } from "zod";
import { decodeCbor, encodeCbor } from "../../plugins/sdk/codec.ts";
import { MalformedInputError, UnsupportedVersionError } from "../../plugins/sdk/errors.ts";
import { multiaddrsPerPeerMax } from "../../plugins/sdk/limits.ts";
import { TASK_COMMANDS } from "./task-commands.ts";

export const FEDLOG_COMMAND_VERSION = 1;
/** Largest encoded command. Larger: propose refuses it (MessageTooLargeError from the codec). */
export const fedlogCommandBytesMax = 60 * 1024;

const id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
const peerId = z.string().min(1).max(128);
const ms = z.number().int().min(0).max(8.64e15);
const json = z.record(z.string(), z.unknown());

export const MemberJoined = z.object({
  type: z.literal("member-joined"),
  clusterId: id, org: id, region: id, peerId,
  multiaddrs: z.array(z.string().max(256)).max(multiaddrsPerPeerMax),
  certSerial: z.string().max(128), certNotAfter: ms,
  attestation: json, at: ms,
});
export const MemberRenewed = z.object({
  type: z.literal("member-renewed"), peerId, certSerial: z.string().max(128), certNotAfter: ms, attestation: json, at: ms,
});
export const MemberRevoked = z.object({ type: z.literal("member-revoked"), peerId, reason: z.string().max(1024), at: ms });
export const AgreementApplied = z.object({ type: z.literal("agreement-applied"), agreementId: z.string().min(1).max(128), body: json, at: ms });
export const TaskAssigned = z.object({ type: z.literal("task-assigned"), taskId: z.string().min(1).max(128), clusterId: id, at: ms });
/** A hub tells the group where its API is, so followers can redirect clients to the leader. */
export const HubAnnounced = z.object({ type: z.literal("hub-announced"), member: z.number().int().positive(), peerId, api: z.string().url().max(256), at: ms });

/** A hub joins the consensus group (before it is added as a learner): every hub learns where to reach it. */
export const HubAdded = z.object({ type: z.literal("hub-added"), member: z.number().int().positive(), peerId, multiaddrs: z.array(z.string().max(256)).max(multiaddrsPerPeerMax), at: ms });
/** A hub left the consensus group (after its removal was applied). */
export const HubRemoved = z.object({ type: z.literal("hub-removed"), member: z.number().int().positive(), at: ms });
const HubAddress = z.object({ member: z.number().int().positive(), peerId, multiaddrs: z.array(z.string().max(256)).max(multiaddrsPerPeerMax) });
/**
 * Hierarchy (global log only): the leader of a child group (`child`, e.g.
 * "region:eu") claims the parent seat at its term in that group; the parent
 * leader then moves the seat (plugins/consensus-raft/driver/seats.ts). `hubs`
 * are every hub of the child, with addresses (observers of the parent log).
 */
export const SeatClaimed = z.object({
  type: z.literal("seat-claimed"), child: z.string().regex(/^[a-z0-9][a-z0-9:/-]{0,62}$/), member: z.number().int().positive(),
  childTerm: z.number().int().min(0), hubs: z.array(HubAddress).min(1).max(16), at: ms,
});
export const FedlogCommand = z.discriminatedUnion("type", [MemberJoined, MemberRenewed, MemberRevoked, AgreementApplied, TaskAssigned, HubAnnounced, HubAdded, HubRemoved, SeatClaimed, ...TASK_COMMANDS]);
export type FedlogCommand = z.infer<typeof FedlogCommand>;

export function encodeCommand(cmd: FedlogCommand): Uint8Array {
  return encodeCbor({ v: FEDLOG_COMMAND_VERSION, ...cmd });
}

export function decodeCommand(bytes: Uint8Array): FedlogCommand {
  const raw = decodeCbor(bytes, fedlogCommandBytesMax) as { v?: unknown } | null;
  if (raw === null || typeof raw !== "object") throw new MalformedInputError("fedlog command is not a map");
  if (raw.v !== FEDLOG_COMMAND_VERSION) throw new UnsupportedVersionError(raw.v, [FEDLOG_COMMAND_VERSION]);
  const r = FedlogCommand.safeParse(raw);
  if (!r.success) throw new MalformedInputError(`invalid fedlog command: ${r.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  return r.data;
}
