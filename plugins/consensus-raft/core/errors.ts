/** Operating errors of the Raft core: conditions a caller must expect and handle. */
import { GreyError } from "../../sdk/errors.ts";
import type { NodeId } from "./types.ts";

/** The operation needs the leader; `leader` is the last known leader (0 when unknown). */
export class NotLeaderError extends GreyError {
  constructor(readonly leader: NodeId) {
    super("ERR_RAFT_NOT_LEADER", `not the leader (leader hint: ${leader === 0 ? "unknown" : leader})`);
  }
}

/** A proposal or read was refused and will never be applied; safe to retry elsewhere or later. */
export class ProposalDroppedError extends GreyError {
  constructor(readonly reason: "transfer-in-progress" | "backpressure" | "removed", message: string) {
    super("ERR_RAFT_PROPOSAL_DROPPED", message);
  }
}

/** An entry payload exceeds `entryBytesMax`. */
export class EntryTooLargeError extends GreyError {
  constructor(readonly size: number, readonly limit: number) {
    super("ERR_RAFT_ENTRY_TOO_LARGE", `entry of ${size} bytes exceeds limit of ${limit} bytes`);
  }
}

/** A configuration change was refused (another is pending, or it would break the group). */
export class ConfChangeError extends GreyError {
  constructor(readonly reason: "pending" | "invalid", message: string) {
    super(reason === "pending" ? "ERR_RAFT_CONF_CHANGE_PENDING" : "ERR_RAFT_CONF_CHANGE_INVALID", message);
  }
}

/** A leadership transfer was refused (unknown target, learner, or self). */
export class TransferError extends GreyError {
  constructor(message: string) {
    super("ERR_RAFT_TRANSFER", message);
  }
}
