/** Groups of a hub: which log owns which command, the level in hub.json, seat claims in the global log's state machine. */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../plugins/consensus-raft/driver/testing.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import { loadHubConfig } from "../config.ts";
import { openRegistry } from "../registry/index.ts";
import { encodeCommand, type FedlogCommand } from "./commands.ts";
import { groupPlans, isGlobalRoute, ownsGlobally } from "./groups.ts";
import { FedlogStateMachine } from "./state-machine.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "grey-groups-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("flat keeps one log with the historical files; region and global levels get a log (and files) per group", () => {
  expect(groupPlans("flat", undefined)).toEqual({ home: { group: "federation", raftFile: "raft.db", fedlogFile: "fedlog.db", members: true } });
  expect(groupPlans("region", "eu")).toEqual({ home: { group: "region:eu", raftFile: "raft-region-eu.db", fedlogFile: "fedlog-region-eu.db", members: true } });
  expect(groupPlans("global", "eu").global).toEqual({ group: "global", raftFile: "raft-global.db", fedlogFile: "fedlog-global.db", members: false });
  for (const t of ["member-joined", "member-renewed", "member-revoked", "hub-announced", "hub-added", "hub-removed"] as const) expect(ownsGlobally(t)).toBe(false);
  for (const t of ["agreement-applied", "task-assigned", "seat-claimed"] as const) expect(ownsGlobally(t)).toBe(true);
  expect(isGlobalRoute("/v1/agreements")).toBe(true);
  expect(isGlobalRoute("/v1/agreements/ag-1")).toBe(true);
  expect(isGlobalRoute("/v1/consensus/peers")).toBe(false);
});

test("hub.json consensus.level: every problem of the file reported at once", () => {
  const dir = tmp();
  const base = { org: "acme", name: "hub-1", attestation: { allow: ["dev"] } };
  writeFileSync(join(dir, "hub.json"), JSON.stringify({ ...base, consensus: { peers: [], level: "global", global: { founders: [] } } }));
  expect(() => loadHubConfig(dir)).toThrow(ConfigError);
  writeFileSync(join(dir, "hub.json"), JSON.stringify({ ...base, heartbeatIntervalMs: 5, consensus: { peers: [], level: "global" } }));
  try {
    loadHubConfig(dir);
    throw new Error("accepted");
  } catch (err) {
    const msg = (err as Error).message;
    expect(msg).toContain("consensus.region: required");
    expect(msg).toContain("consensus.global: required");
    expect(msg).toContain("heartbeatIntervalMs"); // with the file's other problems
  }
  writeFileSync(join(dir, "hub.json"), JSON.stringify({ ...base, consensus: { peers: [], region: "eu", global: { founders: ["x"] } } }));
  try {
    loadHubConfig(dir);
    throw new Error("accepted");
  } catch (err) {
    expect((err as Error).message).toContain('consensus.global: only with level "global"');
    expect((err as Error).message).toContain('consensus.region: only with level "region" or "global"');
  }
  writeFileSync(join(dir, "hub.json"), JSON.stringify({ ...base, consensus: { peers: [], level: "global", region: "eu", global: { founders: ["12D3KooWa"] } } }));
  const c = loadHubConfig(dir).consensus!;
  expect(c).toMatchObject({ level: "global", region: "eu", global: { founders: ["12D3KooWa"], peers: [], observers: true } });
  writeFileSync(join(dir, "hub.json"), JSON.stringify({ ...base, consensus: { peers: ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWb"] } }));
  expect(loadHubConfig(dir).consensus!.level).toBe("flat"); // existing files keep meaning what they meant
});

function globalReplica() {
  const d = tmp();
  const reg = openRegistry(join(d, "hub.db"), { heartbeatIntervalMs: 1000 });
  return { reg, sm: new FedlogStateMachine(join(d, "fedlog.db"), reg, silentLogger, new Map(), { members: false }) };
}

test("the global log records seat claims by the child's term, refuses membership commands, and carries seats (not members) in snapshots", () => {
  const a = globalReplica();
  const hub = (member: number) => ({ member, peerId: `12D3KooW${member}`, multiaddrs: [] });
  const claim = (member: number, childTerm: number): FedlogCommand => ({ type: "seat-claimed", child: "region:eu", member, childTerm, hubs: [hub(1), hub(2), hub(3)], at: childTerm });
  let i = 0;
  const apply = (c: FedlogCommand) => a.sm.apply({ index: ++i, data: encodeCommand(c) });
  apply(claim(1, 3));
  apply(claim(2, 5));
  apply(claim(1, 4)); // late claim of the previous leader: ignored
  expect(a.sm.seat("region:eu")).toMatchObject({ member: 2, childTerm: 5 });
  const joined: FedlogCommand = { type: "member-joined", clusterId: "edge-a", org: "acme", region: "eu", peerId: "p", multiaddrs: [], certSerial: "01", certNotAfter: 9e12, attestation: {}, at: 1 };
  expect(apply(joined)).toMatchObject({ ok: false, code: "ERR_FEDLOG_MISROUTED" });
  expect(a.reg.getByPeer("p")).toBeUndefined();
  const b = globalReplica();
  b.sm.restore(i, a.sm.snapshot());
  expect(b.sm.seats()).toEqual(a.sm.seats());
  for (const r of [a, b]) {
    r.sm.close();
    r.reg.close();
  }
});
