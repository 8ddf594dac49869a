export { fedlogService, redirectWritesToLeader, type FedlogService, type FedlogWrites } from "./service.ts";
export { FederationLog, FedlogRejectedError, parseRaftPeers } from "./log.ts";
export { FedlogStateMachine, type ApplyResult, type HubRecord } from "./state-machine.ts";
export { FedlogCommand, FEDLOG_COMMAND_VERSION, decodeCommand, encodeCommand } from "./commands.ts";
export { recordAssignments, recordJoin, recordRenewal, revoke, type MembershipLog } from "./writes.ts";
