/**
 * Optimistic coordination: state-based CRDTs stamped with hybrid logical
 * clocks, for federation state that must stay writable under partition
 * (heartbeats/last-seen, metrics, edge-local changes) and merges
 * deterministically on heal. Strongly consistent state goes through the
 * Raft federation log instead (hub/fedlog).
 */
export { HybridClock, ClockSkewError, compareHlc, hlcZero, hlcMaxDriftMs, hlcLogicalMax, type Hlc } from "./hlc.ts";
export { LwwMap, type LwwEntry } from "./lww-map.ts";
export { OrSet } from "./or-set.ts";
export { PnCounter } from "./pn-counter.ts";
export { LastSeenMap, type LastSeen } from "./last-seen.ts";
