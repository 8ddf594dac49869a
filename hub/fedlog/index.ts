export { fedlogService, redirectWritesToLeader, type FedlogService } from "./service.ts";
export { FederationLog, FedlogRejectedError, parseRaftPeers } from "./log.ts";
export { FedlogStateMachine, type ApplyResult, type HubRecord } from "./state-machine.ts";
export { FedlogCommand, FEDLOG_COMMAND_VERSION, decodeCommand, encodeCommand } from "./commands.ts";
export { recordJoin, recordRenewal, revoke, type MembershipLog } from "./writes.ts";
