/**
 * `grey-hub consensus add-peer MULTIADDR/p2p/PEER_ID` and `consensus remove-peer
 * PEER_ID|MEMBER`: change the hub group of a running hub, through its API with
 * the admin credentials (a follower redirects to the leader). The new hub runs
 * with `--raft-join` (or hub.json consensus.join) and the group's peers; it is
 * added as a learner and promoted to voter once it has caught up.
 * `consensus status` shows every group of the hub (`groups`: region and global in a hierarchy).
 */
import { resolve } from "node:path";
import { requireString, type Command } from "../../plugins/host/cli.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import { adminClient } from "../cli/admin-client.ts";

const dataDirOpt = { "data-dir": { type: "string" as const, description: "hub data directory (required)" } };
const dir = (v: Record<string, unknown>) => resolve(requireString(v, "data-dir"));
const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));

export const consensusCommands: Record<string, Command> = {
  "consensus add-peer": {
    summary: "add a hub to the federation log's group: learner first, voter once caught up (waits for it)",
    usage: "consensus add-peer MULTIADDR/p2p/PEER_ID --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v, positionals) {
      if (!positionals[0]) throw new ConfigError(["consensus add-peer needs the new hub's MULTIADDR/p2p/PEER_ID"]);
      print(await (await adminClient(dir(v)))("POST", "/v1/consensus/peers", { multiaddr: positionals[0] }));
    },
  },
  "consensus remove-peer": {
    summary: "remove a hub from the federation log's group",
    usage: "consensus remove-peer PEER_ID|MEMBER --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v, positionals) {
      if (!positionals[0]) throw new ConfigError(["consensus remove-peer needs a PEER_ID or member id"]);
      print(await (await adminClient(dir(v)))("DELETE", `/v1/consensus/peers/${encodeURIComponent(positionals[0])}`));
    },
  },
  "consensus status": {
    summary: "every consensus group of this hub (flat: the federation log; hierarchy: region and global) with role, leader, voters, learners, seats",
    usage: "consensus status --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v) {
      print(await (await adminClient(dir(v)))("GET", "/v1/consensus"));
    },
  },
};
