/** Operating errors of the Raft driver. */
import { GreyError } from "../../sdk/errors.ts";

/** The proposal's entry was replaced by a new leader's log: it was not applied and will not be. Safe to retry. */
export class ProposalLostError extends GreyError {
  constructor(readonly index: number) {
    super("ERR_RAFT_PROPOSAL_LOST", `entry ${index} was overwritten by a new leader; the proposal was not applied`);
  }
}

/** The driver is not running (not started yet, stopped, or stopped itself after a storage failure). */
export class GroupStoppedError extends GreyError {
  constructor(why: string) {
    super("ERR_RAFT_STOPPED", `consensus group stopped: ${why}`);
  }
}

/** A frame or forwarded command names a Raft group this node does not run: refused and counted. */
export class UnknownGroupError extends GreyError {
  constructor(readonly group: string) {
    super("ERR_RAFT_UNKNOWN_GROUP", `no raft group ${JSON.stringify(group).slice(0, 80)} on this node`);
  }
}
