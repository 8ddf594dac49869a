/**
 * The agent's task service:
 *  - serves /grey/task/1.0.0 inside an attested session: queued assignments
 *    from the hub (results go back through the outbox) and "wait"
 *    assignments from a primary agent (results on the same stream);
 *  - a worker that runs queued subtasks with the catalog's executor and
 *    commits each result with its usage and audit records in one transaction;
 *  - outbox sync: pushes everything after the acknowledged seq to the hub
 *    whenever the hub is reachable, with jittered exponential backoff;
 *  - local submissions (`grey-agent submit`), run here as primary (primary.ts).
 * With the hub away all of it keeps going except the push.
 */
import { peerIdFromString } from "@libp2p/peer-id";
import { request, serve } from "../../plugins/mesh-libp2p/rpc.ts";
import { federationVerifier, secureInitiator, secureResponder, SessionCache } from "../../plugins/session/secure.ts";
import { UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { inboundStreamsPerProtocolMax } from "../../plugins/sdk/limits.ts";
import { pqPolicyDefault, ZERO_DIGEST, type LocalParty, type PqPolicy, type SessionHello } from "../../plugins/sdk/session.ts";
import { AckMsg, AssignMsg, PROTOCOL_OUTBOX, PROTOCOL_TASK, type SubtaskResult, type SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { backoffMs, sleep } from "../../plugins/mesh-libp2p/discovery.ts";
import type { AgentService, AgentServiceContext } from "../services.ts";
import { AgentStore, type OutboxRecord, type SubtaskOrigin } from "../autonomy/store.ts";
import { runLocalTask } from "./primary.ts";

/** Subtasks executing at once. */
export const workerConcurrencyDefault = 2;
/** Idle poll of the queue / local submissions (the worker is also woken directly). */
export const workerPollMs = 200;
/** Outbox pushes per stream (each one sealed frame); then a new stream. */
export const pushesPerStreamMax = 16;
/**
 * Finished subtasks committed in one transaction (group commit: one fsync for
 * all that finished while the previous commit was on disk). Also the most
 * that may wait for a commit: the worker claims no more until they drain.
 */
export const completionsPerCommitMax = 64;
/**
 * Longest wait between outbox push attempts while the hub is away (jittered
 * down to half): how soon after the hub's return the backlog starts to drain,
 * against one failed dial per agent per wait while it is down.
 */
export const outboxRetryCapMs = 2_000;
/** A "wait" assignment must finish within the stream's exchange bound. */
export const waitModeTimeoutMs = 9_000;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

export function tasksAgentService(init: { concurrency?: number; pq?: PqPolicy } = {}): AgentService & { store?: AgentStore } {
  const stopping = new AbortController();
  let store: AgentStore | undefined;
  let stopExecutors: () => Promise<void> = async () => {};
  const loops: Promise<unknown>[] = [];
  return {
    name: "tasks",
    async start(ctx: AgentServiceContext) {
      const { node, catalog, logger, clock } = ctx;
      store = AgentStore.open(ctx.dataDir, clock);
      this.store = store;
      const s = store;
      s.requeueRunning();
      s.requeueLocalTasks();
      await catalog.startExecutors();
      stopExecutors = () => catalog.stopExecutors();
      const local = (): LocalParty => {
        const known = s.meta("attestation");
        return { idKey: ctx.identity.publicKey, sign: ctx.identity.sign, cert: ctx.certDer(), attestation: known ? new Uint8Array(Buffer.from(known, "hex")) : ZERO_DIGEST };
      };
      const sessionOpts = { clock, pq: init.pq ?? pqPolicyDefault, onReject: (reason: string) => logger.warn("session frame refused", { reason }) };
      // One full handshake per peer and direction; later streams resume it (plugins/session/secure.ts).
      const taskSessions = new SessionCache(clock);
      const outboxSessions = new SessionCache(clock);
      /** The hub tells us our attestation digest as it recorded it (its `seen`): keep it for agent-to-agent sessions. */
      const learn = (hello: SessionHello) => {
        if (!hello.seen.every((b) => b === 0)) s.setMeta("attestation", hex(hello.seen));
      };
      const verifierFor = (peer: string) => federationVerifier(ctx.caCertDer, peer, (id, hello) => {
        if (id.role === "hub") return learn(hello);
        if (id.role !== "member") throw new UnauthorizedError("session peer is neither a hub nor a member");
      });

      let wake: () => void = () => {};
      /** A new hub-bound result: push now rather than at the next idle poll (only while the hub is reachable). */
      let pushSoon: () => void = () => {};
      const waiters = new Map<string, (r: SubtaskResult) => void>();

      // Group commit: results wait here (not yet durable, not yet visible) until the next transaction.
      type Completion = { subtaskId: string; result: SubtaskResult; records: OutboxRecord[]; done: (err?: Error) => void };
      const commitQueue: Completion[] = [];
      let commitScheduled = false;
      const flushCommits = () => {
        commitScheduled = false;
        while (commitQueue.length) {
          const batch = commitQueue.splice(0, completionsPerCommitMax);
          let err: Error | undefined;
          try {
            s.completeMany(batch);
          } catch (e) {
            err = e as Error;
          }
          for (const c of batch) c.done(err);
        }
      };
      /** Resolves once the result and its records are on disk. */
      const commit = (c: Omit<Completion, "done">) => new Promise<void>((resolve, reject) => {
        commitQueue.push({ ...c, done: (err) => (err ? reject(err) : resolve()) });
        if (!commitScheduled) {
          commitScheduled = true;
          // After pending I/O callbacks: results that arrived meanwhile join this commit.
          setImmediate(flushCommits);
        }
      });

      /** `executed` is called once the executor is done (the slot is free again before the commit). */
      const execute = async (spec: SubtaskSpec, origin: SubtaskOrigin, executed: () => void = () => {}) => {
        const startedAt = clock.now();
        let r;
        try {
          r = await catalog.execute({ id: spec.id, kind: "wasm", module: spec.module, input: spec.input, limits: spec.limits }, { signal: stopping.signal });
        } catch (err) {
          r = { ok: false as const, reason: "aborted" as const, detail: (err as Error).message };
        }
        executed();
        if (stopping.signal.aborted) return; // not committed: re-run after restart
        const finishedAt = clock.now();
        const usage: { cpuMs: number; wallMs: number; maxRssBytes?: number } = r.usage ?? { cpuMs: 0, wallMs: finishedAt - startedAt };
        // Memory is metered as peak resident set (or the limit reserved, when the executor cannot measure) x wall time.
        const memoryByteSeconds = Math.round(((usage.maxRssBytes ?? spec.limits.memoryBytes) * usage.wallMs) / 1000);
        const result: SubtaskResult = {
          subtaskId: spec.id, taskId: spec.taskId, attempt: spec.attempt, ok: r.ok,
          ...(r.ok ? { output: r.output } : { reason: r.reason, detail: r.detail.slice(0, 1000) }),
          cpuMs: usage.cpuMs, wallMs: usage.wallMs, startedAt, finishedAt,
        };
        const records: OutboxRecord[] = [
          { kind: "usage", body: {
            id: `${spec.id}#${spec.attempt}@${ctx.peerId}`, agreementId: spec.agreementId ?? "unmetered", subtaskId: spec.id, at: finishedAt,
            cpuMilliCoreSeconds: Math.round(usage.cpuMs), memoryByteSeconds, transferBytes: spec.input.byteLength + (r.ok ? r.output.byteLength : 0),
          } },
          { kind: "audit", body: { event: "subtask-executed", subject: spec.id, details: { origin, ok: r.ok, attempt: spec.attempt } } },
        ];
        if (origin === "hub") records.unshift({ kind: "result", body: result });
        await commit({ subtaskId: spec.id, result, records });
        waiters.get(spec.id)?.(result);
        if (origin === "hub") pushSoon();
        wake();
      };

      const concurrency = init.concurrency ?? workerConcurrencyDefault;
      let running = 0;
      let uncommitted = 0;
      const pump = () => {
        if (stopping.signal.aborted) return;
        const free = Math.min(concurrency - running, completionsPerCommitMax - uncommitted);
        if (free <= 0) return;
        for (const { spec, origin } of s.claim(free)) {
          running++;
          uncommitted++;
          let slot = true;
          const release = () => {
            if (!slot) return;
            slot = false;
            running--;
            pump();
          };
          void execute(spec, origin, release).catch((err) => logger.error("subtask failed to run", { id: spec.id, error: (err as Error).message })).finally(() => {
            uncommitted--;
            release();
            pump();
          });
        }
      };
      wake = () => queueMicrotask(pump);

      await node.handle(PROTOCOL_TASK, serve(PROTOCOL_TASK, async (ch, conn) => {
        const peer = conn.remotePeer.toString();
        const sc = await secureResponder(ch, local(), verifierFor(peer), { ...sessionOpts, resume: { cache: taskSessions, peer } });
        const msg = await sc.receive(AssignMsg);
        const origin: SubtaskOrigin = sc.remote.role === "hub" ? "hub" : `peer:${peer}`;
        const r = s.enqueue(msg.subtasks, origin);
        if (msg.mode === "queue") {
          wake();
          await sc.send({ type: "assigned", accepted: r.accepted, refused: r.refused });
          return;
        }
        const results = await Promise.all(r.accepted.map((id) => {
          const done = s.result(id);
          if (done) return done;
          return new Promise<SubtaskResult>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`subtask ${id} did not finish in ${waitModeTimeoutMs} ms`)), waitModeTimeoutMs);
            waiters.set(id, (res) => {
              clearTimeout(t);
              waiters.delete(id);
              resolve(res);
            });
            wake();
          });
        }));
        await sc.send({ type: "results", results });
      }, { onRejected: (_p, err, conn) => logger.warn("task exchange refused", { peer: conn.remotePeer.toString(), error: (err as Error).message }) }),
      { maxInboundStreams: inboundStreamsPerProtocolMax });

      // Outbox sync: only the delta after the acknowledged seq; at-least-once.
      let hubUp = false;
      let kick: () => void = () => {};
      ctx.onHubReachable((up) => {
        hubUp = up;
        if (up) kick();
      });
      let failures = 0;
      pushSoon = () => {
        if (hubUp && failures === 0) kick();
      };
      const pushOnce = async (): Promise<boolean> => {
        if (s.pending(1).length === 0) return false;
        const hub = await ctx.connectHub(stopping.signal);
        // the agent's own hub, or (HA) another hub of the federation while its own is unreachable
        const hubPeer = hub.toString();
        await request(node, hub, PROTOCOL_OUTBOX, async (ch) => {
          const sc = await secureInitiator(ch, local(), verifierFor(hubPeer), { ...sessionOpts, resume: { cache: outboxSessions, peer: hubPeer } });
          if (sc.remote.role !== "hub") throw new UnauthorizedError("outbox peer is not a hub");
          learn(sc.session.remote);
          for (let i = 0; i < pushesPerStreamMax; i++) {
            const batch = s.pending();
            if (!batch.length) break;
            await sc.send({ type: "push", entries: batch });
            const ack = await sc.receive(AckMsg);
            s.ack(ack.highWater);
            if (ack.highWater < batch[batch.length - 1]!.seq) break;
          }
          await sc.send({ type: "push", entries: [] });
          await sc.receive(AckMsg);
        });
        return s.pending(1).length > 0;
      };
      loops.push((async () => {
        while (!stopping.signal.aborted) {
          try {
            const more = await pushOnce();
            failures = 0;
            if (more) continue;
          } catch (err) {
            if (stopping.signal.aborted) break;
            failures++;
            logger.debug("outbox push failed", { error: (err as Error).message, failures });
          }
          const waitMs = failures ? Math.min(outboxRetryCapMs, backoffMs(Math.min(failures, 5))) * (0.5 + Math.random() / 2) : workerPollMs * 2;
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, waitMs);
            kick = () => {
              clearTimeout(t);
              resolve();
            };
            stopping.signal.addEventListener("abort", () => kick(), { once: true });
          });
          void hubUp;
        }
      })());

      // Worker and local submissions.
      loops.push((async () => {
        while (!stopping.signal.aborted) {
          try {
            pump();
            for (const t of s.claimLocalTasks()) {
              void runLocalTask(ctx, s, t, { stopping: stopping.signal, local, sessionOpts, verifierFor, execute: (spec) => execute(spec, "local") })
                .catch((err) => logger.error("local task failed", { id: t.id, error: (err as Error).message }));
            }
          } catch (err) {
            logger.error("task worker step failed", { error: (err as Error).message });
          }
          await sleep(workerPollMs, stopping.signal).catch(() => {});
        }
      })());
      void peerIdFromString;
    },
    async stop() {
      stopping.abort(new Error("stopping"));
      await Promise.race([Promise.allSettled(loops), sleep(2000)]);
      await stopExecutors();
      store?.close();
    },
  };
}
