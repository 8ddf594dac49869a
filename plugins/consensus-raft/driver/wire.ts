/**
 * Raft messages on the wire (/grey/raft/1.0.0): one CBOR map per frame,
 * versioned, and validated with zod BEFORE the core sees it. The core asserts
 * on malformed input (a programmer error inside the core), so everything a
 * peer could get wrong is refused here as a MalformedInputError: shapes,
 * ranges, non-contiguous entries, undecodable conf changes, a snapshot
 * missing from a snap message, a context missing from a read-index message.
 */
import { z } from "zod";
import { decodeConfChange, type Message } from "../core/index.ts";
import { decodeCbor, encodeCbor } from "../../sdk/codec.ts";
import { MalformedInputError, UnsupportedVersionError } from "../../sdk/errors.ts";
import { entryBytesMax } from "../core/constants.ts";
import { raftFrameBytesMax, snapshotBytesMax } from "./constants.ts";

export const PROTOCOL_RAFT = "/grey/raft/1.0.0";
export const RAFT_WIRE_VERSION = 1;
/**
 * Several Raft groups share one libp2p node and one protocol: every frame
 * names its group (`group`). A frame without one belongs to the default group
 * (the flat federation log), so flat hubs interoperate unchanged.
 */
export const DEFAULT_RAFT_GROUP = "federation";
/** A group id: "federation", "global", "region:eu"... */
export const RaftGroupId = z.string().regex(/^[a-z0-9][a-z0-9:/-]{0,62}$/);

/** The group a decoded frame is for (absent: the default group); undefined when the field is not a valid group id. */
export function groupOfFrame(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const g = (raw as { group?: unknown }).group;
  if (g === undefined) return DEFAULT_RAFT_GROUP;
  return RaftGroupId.safeParse(g).success ? (g as string) : undefined;
}

const u = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const nodeId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const bytes = (max: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, { message: `must be bytes, at most ${max}` });
const nodeIds = z.array(nodeId).max(1024);

const EntrySchema = z.object({ index: nodeId, term: u, type: z.enum(["normal", "conf"]), data: bytes(entryBytesMax) });
const SnapshotSchema = z.object({
  meta: z.object({ index: u, term: u, confState: z.object({ voters: nodeIds, learners: nodeIds }) }),
  data: bytes(snapshotBytesMax),
});

const MessageSchema = z
  .object({
    v: z.literal(RAFT_WIRE_VERSION),
    group: RaftGroupId.optional(),
    type: z.enum(["app", "appResp", "vote", "voteResp", "preVote", "preVoteResp", "heartbeat", "heartbeatResp", "snap", "timeoutNow", "readIndex", "readIndexResp"]),
    from: nodeId,
    to: nodeId,
    term: u,
    logTerm: u,
    index: u,
    entries: z.array(EntrySchema).max(100_000),
    commit: u,
    reject: z.boolean(),
    rejectHint: u,
    snapshot: SnapshotSchema.optional(),
    readSeq: u.optional(),
    context: z.string().max(256).optional(),
    transfer: z.boolean().optional(),
  })
  .superRefine((m, ctx) => {
    m.entries.forEach((e, i) => {
      if (e.index !== m.index + 1 + i) ctx.addIssue({ code: "custom", path: ["entries", i, "index"], message: "entries are not contiguous after index" });
      if (e.term > m.term || (i > 0 && e.term < m.entries[i - 1]!.term)) ctx.addIssue({ code: "custom", path: ["entries", i, "term"], message: "entry terms out of order" });
      if (e.type === "conf") {
        try {
          decodeConfChange(e.data);
        } catch {
          ctx.addIssue({ code: "custom", path: ["entries", i, "data"], message: "undecodable conf change" });
        }
      }
    });
    if (m.type === "snap" && !m.snapshot) ctx.addIssue({ code: "custom", path: ["snapshot"], message: "snap message without snapshot" });
    if ((m.type === "readIndex" || m.type === "readIndexResp") && m.context === undefined) ctx.addIssue({ code: "custom", path: ["context"], message: "read-index message without context" });
    if (m.from === m.to) ctx.addIssue({ code: "custom", path: ["to"], message: "message to itself" });
  });

export function encodeRaftMessage(m: Message, group: string = DEFAULT_RAFT_GROUP): Uint8Array {
  return encodeCbor(group === DEFAULT_RAFT_GROUP ? { v: RAFT_WIRE_VERSION, ...m } : { v: RAFT_WIRE_VERSION, group, ...m });
}

/** Validate a message object (in-memory transport, or the decoded CBOR of a frame). */
export function validateRaftMessage(raw: unknown): Message {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new MalformedInputError("raft message is not a map");
  const v = (raw as { v?: unknown }).v;
  if (v !== RAFT_WIRE_VERSION) throw new UnsupportedVersionError(v, [RAFT_WIRE_VERSION]);
  const r = MessageSchema.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new MalformedInputError(`invalid raft message: ${first.join("; ")}`);
  }
  const { v: _v, group: _g, ...m } = r.data;
  return m as Message;
}

/** Decode one frame: size, CBOR, version, schema. Throws typed errors only. */
export function decodeRaftMessage(frame: Uint8Array): Message {
  return validateRaftMessage(decodeCbor(frame, raftFrameBytesMax));
}
