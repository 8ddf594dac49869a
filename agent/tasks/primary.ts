/**
 * Any cluster can be primary: a task submitted locally (`grey-agent submit`,
 * signed with the agent's node key) is partitioned here and its partitions
 * delegated straight to verified peer clusters (from heartbeats, as listed in
 * status.json) in "wait" mode over attested sessions — no hub involved. A
 * peer that fails or cannot be reached is replaced by running the partition
 * here. The outcome is recorded in the outbox as a `local-task` record, so the
 * hub learns of it on reconnect.
 *
 * Merge rule on reconnect: local task ids are namespaced by the submitting
 * agent ("l-<peer id suffix>-..."), so they never collide with hub task ids or
 * another agent's; the hub stores each record once (outbox seq) and never
 * re-runs a local task. Desired-state keys merge last-writer-wins by time,
 * the hub winning ties (AgentStore.setDesired).
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { existsSync, readFileSync } from "node:fs";
import { request } from "../../plugins/mesh-libp2p/rpc.ts";
import type { federationVerifier } from "../../plugins/session/secure.ts";
import { secureInitiator } from "../../plugins/session/secure.ts";
import { UnauthorizedError } from "../../plugins/sdk/errors.ts";
import type { LocalParty, SessionOptions } from "../../plugins/sdk/session.ts";
import { AssignReply, PROTOCOL_TASK, type SubtaskResult, type SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { aggregate, placementAllows, planTask, reducerInput } from "../../hub/tasks/spec.ts";
import type { AgentServiceContext } from "../services.ts";
import type { AgentStore } from "../autonomy/store.ts";
import { agentPaths } from "../state.ts";

export interface PrimaryHelpers {
  stopping: AbortSignal;
  local(): LocalParty;
  sessionOpts: SessionOptions;
  verifierFor(peer: string): ReturnType<typeof federationVerifier>;
  execute(spec: SubtaskSpec): Promise<void>;
}

interface PeerEntry {
  clusterId: string;
  org: string;
  region: string;
  peerId: string;
}

function verifiedPeers(dataDir: string): PeerEntry[] {
  const p = agentPaths(dataDir).status;
  if (!existsSync(p)) return [];
  try {
    return (JSON.parse(readFileSync(p, "utf8")) as { peers?: PeerEntry[] }).peers ?? [];
  } catch {
    return [];
  }
}

export async function runLocalTask(ctx: AgentServiceContext, store: AgentStore, t: { id: string; spec: string; sig: Uint8Array }, h: PrimaryHelpers): Promise<void> {
  const record = (state: "done" | "failed", outcome: { result?: Uint8Array; error?: string }) =>
    store.finishLocalTask(t.id, outcome, { kind: "local-task", body: { taskId: t.id, spec: t.spec, sig: t.sig, state, ...outcome } });
  if (!ed25519.verify(t.sig, new TextEncoder().encode(t.spec), ctx.identity.publicKey)) {
    return record("failed", { error: "submission signature does not verify against this agent's key" });
  }
  let plan;
  try {
    plan = planTask(JSON.parse(t.spec));
  } catch (err) {
    return record("failed", { error: (err as Error).message });
  }
  const me = ctx.membership();
  const peers = verifiedPeers(ctx.dataDir).filter((p) => p.peerId !== ctx.peerId && placementAllows(plan.placement, p));
  const selfAllowed = placementAllows(plan.placement, { org: me.org, region: me.region, clusterId: me.clusterId });
  const targets: (PeerEntry | "self")[] = [...(selfAllowed ? ["self" as const] : []), ...peers];
  if (!targets.length) return record("failed", { error: "no cluster satisfies the placement" });

  const specOf = (i: number | "r", input: Uint8Array, module = plan.module): SubtaskSpec => ({
    id: `${t.id}.${i}`, taskId: t.id, attempt: 1, executor: "wasm", module, input, limits: plan.limits,
  });
  const runHere = async (spec: SubtaskSpec): Promise<SubtaskResult> => {
    store.enqueue([spec], "local");
    for (;;) {
      const r = store.result(spec.id);
      if (r) return r;
      if (h.stopping.aborted) throw new Error("stopping");
      await Bun.sleep(20);
    }
  };
  const runOnPeer = async (p: PeerEntry, spec: SubtaskSpec): Promise<SubtaskResult> => {
    const pid = peerIdFromString(p.peerId);
    if (ctx.node.getConnections(pid).length === 0) {
      const addrs = ((JSON.parse(readFileSync(agentPaths(ctx.dataDir).status, "utf8")) as { peers: { peerId: string; multiaddrs?: string[] }[] }).peers.find((x) => x.peerId === p.peerId)?.multiaddrs ?? []).map((a) => multiaddr(a));
      await ctx.node.dial(addrs.length ? addrs : pid, { signal: AbortSignal.timeout(3000) });
    }
    return await request(ctx.node, pid, PROTOCOL_TASK, async (ch) => {
      const sc = await secureInitiator(ch, h.local(), h.verifierFor(p.peerId), h.sessionOpts);
      if (sc.remote.role !== "member" || sc.remote.cluster !== p.clusterId) throw new UnauthorizedError("peer is not the cluster we chose");
      await sc.send({ type: "assign", mode: "wait", subtasks: [spec] });
      const r = await sc.receive(AssignReply);
      if (r.type !== "results" || !r.results[0]) throw new Error(`peer ${p.clusterId} did not return a result`);
      return r.results[0];
    }, 10_000);
  };

  const outputs = await Promise.all(plan.partitions.map(async (input, i) => {
    const target = targets[i % targets.length]!;
    const spec = specOf(i, input);
    let r: SubtaskResult;
    if (target === "self") r = await runHere(spec);
    else {
      try {
        r = await runOnPeer(target, spec);
      } catch (err) {
        ctx.logger.warn("peer failed a delegated partition; running it here", { peer: target.clusterId, error: (err as Error).message });
        r = await runHere(spec);
      }
    }
    if (!r.ok) throw new Error(`partition ${i} failed: ${r.reason}: ${r.detail ?? ""}`);
    return r.output ?? new Uint8Array();
  })).catch((err: Error) => err);
  if (outputs instanceof Error) return record("failed", { error: outputs.message });
  try {
    if (plan.aggregate.kind === "reducer") {
      const r = await runHere(specOf("r", reducerInput(outputs), plan.aggregate.module));
      if (!r.ok) return record("failed", { error: `reducer failed: ${r.reason}` });
      return record("done", { result: r.output ?? new Uint8Array() });
    }
    return record("done", { result: aggregate(plan.aggregate.kind, outputs, plan.aggregate.separator) });
  } catch (err) {
    return record("failed", { error: (err as Error).message });
  }
}
