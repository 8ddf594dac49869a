/**
 * consensus-raft as a plugin: `raftConsensus(init)(components)` returns a
 * ConsensusGroup (plugins/sdk/consensus.ts) backed by the pure core, bun:sqlite
 * storage and the transport given in components (libp2p or in-memory).
 */
import { CONSENSUS_API_VERSION, type ConsensusPlugin } from "../../sdk/consensus.ts";
import { RaftDriver, type RaftDriverComponents, type RaftDriverInit } from "./driver.ts";

export const raftPlugin: ConsensusPlugin<RaftDriverInit, RaftDriverComponents> = {
  meta: { name: "consensus-raft", kind: "consensus", apiVersion: CONSENSUS_API_VERSION },
  create: (init) => (components) => new RaftDriver(init, components),
};

export function raftConsensus(init: RaftDriverInit): (components: RaftDriverComponents) => RaftDriver {
  return (components) => new RaftDriver(init, components);
}

export { RaftDriver, isRetryable, type RaftDriverInit, type RaftDriverComponents, type DriverStats } from "./driver.ts";
export { RaftStorage } from "./storage.ts";
export { MemoryNetwork } from "./memory-transport.ts";
export { OutboundQueue, type RaftTransport } from "./transport.ts";
export { PROTOCOL_RAFT, decodeRaftMessage, encodeRaftMessage, validateRaftMessage } from "./wire.ts";
export { GroupStoppedError, ProposalLostError } from "./errors.ts";
export { nodeIdOfPeer } from "./node-id.ts";
export { KvStateMachine } from "./kv-state-machine.ts";
