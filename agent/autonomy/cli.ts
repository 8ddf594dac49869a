/**
 * Local commands that work with or without a hub and with or without the
 * agent running: `status` (status.json + the local store) and `submit`
 * (a task signed with the agent's node key, queued in the local store; the
 * running agent picks it up as primary, see agent/tasks/primary.ts) and
 * `desired` (desired-state keys: local changes signed with the node key and
 * recorded in the outbox; see hub/desired/rule.ts for the merge rule).
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { requireString, type Command } from "../../plugins/host/cli.ts";
import { loadOrCreateNodeKey, peerIdOf } from "../../plugins/mesh-libp2p/node-key.ts";
import { ConfigError, NotFoundError } from "../../plugins/sdk/errors.ts";
import { planTask } from "../../hub/tasks/spec.ts";
import { checkDesiredKey, checkDesiredValue, desiredKeyBytesMax, desiredSigningPayload, desiredValueBytesMax } from "../../hub/desired/rule.ts";
import { agentPaths, readMembership } from "../state.ts";
import { AgentStore } from "./store.ts";

const dataDirOpt = { "data-dir": { type: "string" as const, description: "agent data directory (required)" } };

function openExisting(dir: string): AgentStore {
  if (!readMembership(dir)) throw new ConfigError([`${dir} holds no membership: run 'grey-agent join TOKEN --data-dir ${dir}' first`]);
  return AgentStore.open(dir);
}

export const statusCommand: Command = {
  summary: "print the agent's status (works while the hub, or the agent itself, is down)",
  usage: "status --data-dir DIR",
  options: { ...dataDirOpt },
  async run(v) {
    const dir = resolve(requireString(v, "data-dir"));
    const store = openExisting(dir);
    try {
      const p = agentPaths(dir).status;
      const runtime = existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : null;
      let alive = false;
      if (runtime?.pid) {
        try {
          process.kill(runtime.pid, 0);
          alive = true;
        } catch {
          alive = false;
        }
      }
      console.log(JSON.stringify({ running: alive, ...(runtime ?? {}), store: store.counts() }, null, 2));
    } finally {
      store.close();
    }
  },
};

export const submitCommand: Command = {
  summary: "submit a task locally (signed by this agent); it runs here and on peers, and reaches the hub on reconnect",
  usage: "submit FILE --data-dir DIR [--wait]",
  options: { ...dataDirOpt, wait: { type: "boolean", description: "wait for the result and print it" } },
  async run(v, positionals) {
    const file = positionals[0];
    if (!file) throw new ConfigError(["submit needs a FILE"]);
    const dir = resolve(requireString(v, "data-dir"));
    const spec = readFileSync(resolve(file), "utf8");
    planTask(JSON.parse(spec)); // refuse a bad task here, not later
    const key = await loadOrCreateNodeKey(dir);
    const sig = await key.sign(new TextEncoder().encode(spec));
    const id = `l-${peerIdOf(key).slice(-8).toLowerCase()}-${Date.now().toString(36)}${crypto.getRandomValues(new Uint8Array(2)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "")}`;
    const store = openExisting(dir);
    try {
      store.addLocalTask(id, spec, sig);
      if (!v.wait) {
        console.log(id);
        return;
      }
      for (;;) {
        const t = store.localTask(id);
        if (t && (t.state === "done" || t.state === "failed")) {
          if (t.state === "failed") {
            console.error(`task ${id} failed: ${t.error}`);
            return 1;
          }
          console.log(new TextDecoder().decode(t.result ?? new Uint8Array()));
          return 0;
        }
        await Bun.sleep(100);
      }
    } finally {
      store.close();
    }
  },
};

const DESIRED_HELP = `desired set KEY VALUE --data-dir DIR
       grey-agent desired get [KEY] --data-dir DIR

Desired state of this cluster: key/value settings written here (set) or by an
admin at the hub (PUT /v1/clusters/:id/desired/:key). Works with the hub and
the agent daemon down. A local change is signed with this agent's node key and
queued in the outbox: it reaches the hub exactly once when it is reachable
again; hub changes arrive with heartbeat acks.

Merge rule (the same on the hub and on every agent, so both converge):
  the entry with the later timestamp wins; on equal timestamps a hub write
  beats a local one (then the greater value wins). Timestamps are wall-clock
  milliseconds bumped past the entry a write replaces, so a change made after
  seeing another one always supersedes it.

Keys: 1-${desiredKeyBytesMax} bytes of letters, digits, '.', '_', '-', '/'. Values: at most ${desiredValueBytesMax} bytes.
get prints JSON: one entry {key, value, at, source} or {items: [...]}.`;

export const desiredCommand: Command = {
  summary: "read or change the cluster's desired state (works while the hub, or the agent itself, is down)",
  usage: DESIRED_HELP,
  options: { ...dataDirOpt },
  async run(v, positionals) {
    const [sub, key, value, ...extra] = positionals;
    const dir = resolve(requireString(v, "data-dir"));
    if (sub === "get") {
      if (value !== undefined) throw new ConfigError(["desired get takes at most one KEY"]);
      const store = openExisting(dir);
      try {
        if (key === undefined) {
          console.log(JSON.stringify({ items: store.desiredAll() }, null, 2));
          return 0;
        }
        const e = store.desired(key);
        if (!e) throw new NotFoundError(`no desired key ${JSON.stringify(key.slice(0, 128))}`);
        console.log(JSON.stringify(e));
        return 0;
      } finally {
        store.close();
      }
    }
    if (sub === "set") {
      if (key === undefined || value === undefined || extra.length) throw new ConfigError(["desired set needs KEY VALUE"]);
      checkDesiredKey(key);
      checkDesiredValue(value);
      const membership = readMembership(dir);
      if (!membership) throw new ConfigError([`${dir} holds no membership: run 'grey-agent join TOKEN --data-dir ${dir}' first`]);
      const nodeKey = await loadOrCreateNodeKey(dir);
      const store = AgentStore.open(dir);
      try {
        const at = store.nextLocalDesiredAt(key);
        const sig = await nodeKey.sign(desiredSigningPayload(membership.clusterId, key, value, at));
        store.setLocalDesired(key, value, at, sig, membership.clusterId);
        console.log(JSON.stringify(store.desired(key)));
        return 0;
      } finally {
        store.close();
      }
    }
    throw new ConfigError([`desired needs 'set KEY VALUE' or 'get [KEY]' (got ${JSON.stringify(sub ?? "")})`]);
  },
};
