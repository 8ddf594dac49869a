/**
 * Wire messages for cross-cluster tasks (libp2p streams, CBOR, versioned).
 *
 * Both protocols open with the attested-session handshake (session.ts) in the
 * clear (it carries only public keys, certificates, digests and signatures);
 * everything after it is a `sealed` frame whose plaintext is one CBOR message
 * validated with the schemas below.
 *
 * An initiator that completed a handshake with the same peer before may open
 * with `session-resume` {id, nonce} instead of `session-hello`: the responder
 * answers `session-resumed` {nonce} (keys from the cached resumption secret
 * and both nonces, see session.ts) or `session-resume-refused`, after which the
 * initiator runs the full handshake on the same stream.
 *
 *   /grey/task/1.0.0    delegator (hub or a primary agent) -> executing agent
 *       assign {mode:"queue"} -> assigned          (hub: results come back through the outbox)
 *       assign {mode:"wait"}  -> results           (agent primary: results on the same stream)
 *   /grey/outbox/1.0.0  agent -> hub
 *       push {entries (seq ascending)} -> ack {highWater}
 */
import { z } from "zod";
import { digestBytes } from "./session.ts";

export const PROTOCOL_TASK = "/grey/task/1.0.0";
export const PROTOCOL_OUTBOX = "/grey/outbox/1.0.0";

/** Subtasks in one assign message. More: split into several messages. */
export const subtasksPerAssignMax = 64;
/** Largest module carried in a subtask. Larger: task refused at submission. */
export const taskModuleBytesMax = 24 * 1024;
/** Largest input of one subtask. Larger: task refused at submission. */
export const subtaskInputBytesMax = 16 * 1024;
/** Largest output kept per subtask. Larger: the executor's output limit refuses it. */
export const subtaskOutputBytesMax = 16 * 1024;
/** Outbox entries per push, and their total bytes (a push is one sealed frame, under the 64 KiB wire limit). */
export const outboxEntriesPerPushMax = 256;
export const outboxPushBytesMax = 48 * 1024;

const bytes = (max: number) =>
  z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, { message: `must be bytes, at most ${max}` });
const version = z.literal(1);
const digest = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength === digestBytes, { message: "must be a 32-byte digest" });

// --- handshake (clear) -------------------------------------------------------
const helloFields = {
  eph: bytes(32),
  idKey: bytes(32),
  cert: bytes(8192),
  attestation: digest,
  seen: digest,
  /** Hybrid post-quantum key exchange (sdk/session.ts): ML-KEM-768 key (initiator) / ciphertext (responder). */
  kemPub: bytes(1184).optional(),
  kemCt: bytes(1088).optional(),
};
export const SessionHelloMsg = z.object({ v: version, type: z.literal("session-hello"), ...helloFields });
export const SessionAcceptMsg = z.object({ v: version, type: z.literal("session-accept"), ...helloFields, sig: bytes(64) });
export const SessionFinishMsg = z.object({ v: version, type: z.literal("session-finish"), sig: bytes(64) });
export const SessionResumeMsg = z.object({ v: version, type: z.literal("session-resume"), id: digest, nonce: bytes(32) });
export const SessionResumedMsg = z.object({ v: version, type: z.literal("session-resumed"), nonce: bytes(32) });
export const SessionResumeRefusedMsg = z.object({ v: version, type: z.literal("session-resume-refused"), reason: z.string().max(256) });
export const SessionResumeReply = z.discriminatedUnion("type", [SessionResumedMsg, SessionResumeRefusedMsg]);
export const SessionOpenMsg = z.discriminatedUnion("type", [SessionHelloMsg, SessionResumeMsg]);
export const SealedMsg = z.object({ v: version, type: z.literal("sealed"), box: bytes(62 * 1024) });

// --- inside sealed frames ------------------------------------------------------
export const ExecLimitsMsg = z.object({
  timeMs: z.number().int().positive().max(600_000),
  memoryBytes: z.number().int().positive().max(1 << 30),
  outputBytes: z.number().int().positive().max(subtaskOutputBytesMax),
});

export const SubtaskSpec = z.object({
  /** Stable id "<task>.<index>" (reduce: "<task>.r"): the same subtask under every attempt. */
  id: z.string().min(1).max(128),
  taskId: z.string().min(1).max(96),
  attempt: z.number().int().nonnegative().max(1000),
  executor: z.literal("wasm"),
  module: bytes(taskModuleBytesMax),
  input: bytes(subtaskInputBytesMax),
  limits: ExecLimitsMsg,
  /** Billing agreement the usage is metered under (optional). */
  agreementId: z.string().max(128).optional(),
});
export type SubtaskSpec = z.infer<typeof SubtaskSpec>;

export const SubtaskResult = z.object({
  subtaskId: z.string().max(128),
  taskId: z.string().max(96),
  attempt: z.number().int().nonnegative(),
  ok: z.boolean(),
  output: bytes(subtaskOutputBytesMax).optional(),
  reason: z.string().max(64).optional(),
  detail: z.string().max(1024).optional(),
  cpuMs: z.number().nonnegative(),
  wallMs: z.number().nonnegative(),
  startedAt: z.number().int(),
  finishedAt: z.number().int(),
});
export type SubtaskResult = z.infer<typeof SubtaskResult>;

export const AssignMsg = z.object({
  v: version,
  type: z.literal("assign"),
  mode: z.enum(["queue", "wait"]),
  subtasks: z.array(SubtaskSpec).min(1).max(subtasksPerAssignMax),
});
export const AssignedMsg = z.object({
  v: version,
  type: z.literal("assigned"),
  accepted: z.array(z.string().max(128)),
  refused: z.array(z.object({ id: z.string().max(128), reason: z.string().max(256) })),
});
export const ResultsMsg = z.object({ v: version, type: z.literal("results"), results: z.array(SubtaskResult).max(subtasksPerAssignMax) });
export const AssignReply = z.discriminatedUnion("type", [AssignedMsg, ResultsMsg]);

export const OUTBOX_KINDS = ["result", "usage", "audit", "metric", "local-task", "desired-change"] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];
export const OutboxEntry = z.object({
  seq: z.number().int().positive(),
  kind: z.enum(OUTBOX_KINDS),
  at: z.number().int(),
  /** CBOR of the record (schema per kind, checked when applied). */
  body: bytes(outboxPushBytesMax),
});
export type OutboxEntry = z.infer<typeof OutboxEntry>;
export const PushMsg = z.object({ v: version, type: z.literal("push"), entries: z.array(OutboxEntry).max(outboxEntriesPerPushMax) });
export const AckMsg = z.object({ v: version, type: z.literal("ack"), highWater: z.number().int().nonnegative() });

export const UsageBody = z.object({
  id: z.string().min(1).max(200),
  agreementId: z.string().min(1).max(128),
  subtaskId: z.string().max(128),
  at: z.number().int().nonnegative(),
  cpuMilliCoreSeconds: z.number().int().nonnegative(),
  memoryByteSeconds: z.number().int().nonnegative(),
  transferBytes: z.number().int().nonnegative(),
});
export const AuditBody = z.object({ event: z.string().max(64), subject: z.string().max(256), details: z.record(z.string(), z.unknown()) });
/** A desired-state change made at the edge (hub/desired/rule.ts): signed by the agent's node key over desiredSigningPayload. */
export const DesiredChangeBody = z.object({ key: z.string().max(256), value: z.string().max(4096), at: z.number().int().nonnegative(), sig: bytes(64) });
export const LocalTaskBody = z.object({
  taskId: z.string().max(96),
  /** The submission as signed by the agent (JSON text) and its Ed25519 signature. */
  spec: z.string().max(40_000),
  sig: bytes(64),
  state: z.enum(["done", "failed"]),
  result: bytes(subtaskOutputBytesMax * 4).optional(),
  error: z.string().max(1024).optional(),
});
