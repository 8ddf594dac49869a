/**
 * Cross-cluster tasks as a hub service: DIR/tasks.db, /v1/tasks routes, the
 * scheduler loop (delegation + failover) and the outbox protocol agents push
 * results, usage and audit records through. Every exchange with an agent runs
 * inside an attested session (plugins/session) bound to both peer ids, both
 * certificate serials and the agent's attestation digest from the registry.
 */
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadOrCreateNodeKey } from "../../plugins/mesh-libp2p/node-key.ts";
import { request, serve } from "../../plugins/mesh-libp2p/rpc.ts";
import { federationVerifier, secureInitiator, secureResponder, SessionCache } from "../../plugins/session/secure.ts";
import { UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { pemToDer, type FederationIdentity } from "../../plugins/sdk/identity.ts";
import { inboundStreamsPerProtocolMax } from "../../plugins/sdk/limits.ts";
import { attestationDigest, pqPolicyDefault, ZERO_DIGEST, type LocalParty, type SessionHello } from "../../plugins/sdk/session.ts";
import { AckMsg, AssignReply, PROTOCOL_OUTBOX, PROTOCOL_TASK, PushMsg, type SubtaskSpec } from "../../plugins/sdk/wire-tasks.ts";
import { agreementId, AgreementStore } from "../agreements/store.ts";
import { AGREEMENTS_DB } from "../agreements/service.ts";
import { UsageMeter } from "../billing/meter.ts";
import { caPaths } from "../ca/layout.ts";
import type { Member } from "../registry/index.ts";
import type { HubService, HubServiceContext } from "../services.ts";
import { localLedger } from "./ledger.ts";
import { meteredUsage } from "./outbox.ts";
import { replicatedLedger } from "./replicated.ts";
import { taskRoutes } from "./routes.ts";
import { createScheduler } from "./scheduler.ts";
import { capacityUnbounded, resolveSharedCapacity } from "./sharing.ts";
import { TaskStore, TASKS_DB } from "./store.ts";
import { recordAssignments } from "../fedlog/writes.ts";
import type { FedlogWrites } from "../fedlog/service.ts";

/** Scheduler period: bounds failover reaction on top of heartbeat-based detection. */
export const schedulerTickMs = 200;

const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

/**
 * `fedlog`: with consensus enabled, task state goes through the federation log
 * (replicated.ts) and only the hub leading `fedlog.log` schedules.
 */
export function tasksService(fedlog?: FedlogWrites & { readonly log?: { isLeader(): boolean } | undefined }): HubService & { store?: TaskStore; sessions?: { assign: SessionCache; outbox: SessionCache } } {
  let store: TaskStore | undefined;
  let meter: UsageMeter | undefined;
  let agreements: AgreementStore | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const stopping = new AbortController();
  return {
    name: "tasks",
    async start(ctx: HubServiceContext) {
      const { registry, clock, logger, metrics, node, ca } = ctx;
      store = TaskStore.open(join(ctx.cfg.dataDir, TASKS_DB), clock);
      const capacity = resolveSharedCapacity(ctx.cfg.sharedCapacity ?? {});
      meter = UsageMeter.open(join(ctx.cfg.dataDir, AGREEMENTS_DB));
      // Read here (admission); applied through /v1/agreements by the agreements service.
      agreements = AgreementStore.open(join(ctx.cfg.dataDir, AGREEMENTS_DB));
      const agreementStore = agreements;
      this.store = store;
      const key = await loadOrCreateNodeKey(ctx.cfg.dataDir);
      const local: LocalParty = {
        idKey: key.publicKey.raw, sign: async (d) => await key.sign(d),
        cert: pemToDer(readFileSync(caPaths(ctx.cfg.dataDir).hubCert, "utf8")),
        attestation: ZERO_DIGEST, // hubs are not attested; their certificate is what binds them
      };
      const sessionRejects = metrics.counter("grey_session_rejected_total", "Attested-session frames or handshakes refused.", ["reason"]);
      const events = metrics.counter("grey_task_events_total", "Task scheduler events.", ["event"]);
      const records = metrics.counter("grey_outbox_records_total", "Agent outbox records received.", ["result"]);
      const sessionOpts = { clock, pq: ctx.cfg.sessions?.pq ?? pqPolicyDefault, onReject: (reason: string) => sessionRejects.inc({ reason }) };
      const digestOf = (m: Member) => attestationDigest(m.attestation);
      const handshakes = metrics.counter("grey_session_handshakes_total", "Attested sessions opened on task streams, by kind (full handshake or resumed).", ["kind"]);
      // One full handshake per agent and direction; later streams resume it (plugins/session/secure.ts).
      const assignSessions = new SessionCache(clock);
      const outboxSessions = new SessionCache(clock);
      this.sessions = { assign: assignSessions, outbox: outboxSessions };

      /** On every resume: still that member, and the registry's digest for it is still the one of the handshake. */
      const recheckMember = (id: FederationIdentity, hello: SessionHello, seen: Uint8Array): Member => {
        const m = checkMember(id, hello);
        if (!same(seen, digestOf(m))) throw new UnauthorizedError("the member's attestation changed since the handshake");
        return m;
      };

      /** The agent on the other end: a current, unrevoked member whose cert and digest match the registry. */
      const checkMember = (id: FederationIdentity, hello: SessionHello): Member => {
        const m = id.peerId ? registry.getByPeer(id.peerId) : undefined;
        if (id.role !== "member" || !m || m.revoked) throw new UnauthorizedError("session peer is not a current member");
        if (m.certSerial !== id.serial) throw new UnauthorizedError(`session certificate ${id.serial} is not the member's current one`);
        if (!same(hello.attestation, ZERO_DIGEST) && !same(hello.attestation, digestOf(m))) throw new UnauthorizedError("attestation digest differs from the registry's");
        return m;
      };

      const deliver = async (m: Member, specs: SubtaskSpec[]) => {
        const pid = peerIdFromString(m.peerId);
        if (node.getConnections(pid).length === 0) {
          const addrs = m.multiaddrs.map((a) => multiaddr(a));
          await node.dial(addrs.length ? addrs : pid, { signal: AbortSignal.timeout(3000) });
        }
        return await request(node, pid, PROTOCOL_TASK, async (ch) => {
          const verifier = federationVerifier(ca.certDer, m.peerId, (id, hello) => void checkMember(id, hello));
          const sc = await secureInitiator(ch, local, verifier, {
            ...sessionOpts, seen: digestOf(m), resume: { cache: assignSessions, peer: m.peerId, recheck: (id, hello, seen) => void recheckMember(id, hello, seen) },
          });
          handshakes.inc({ kind: sc.resumed ? "resumed" : "full" });
          await sc.send({ type: "assign", mode: "queue", subtasks: specs });
          const r = await sc.receive(AssignReply);
          if (r.type !== "assigned") throw new UnauthorizedError("agent answered a queued assign with results");
          return { accepted: r.accepted, refused: r.refused };
        }, 5000);
      };

      const replicated = fedlog?.active() === true;
      const ledger = replicated ? replicatedLedger(store, fedlog!, clock) : localLedger(store);
      const scheduler = createScheduler({
        ledger,
        ...(replicated ? { leads: () => fedlog!.log?.isLeader() === true } : {}),
        store, registry, audit: ctx.audit, deliver, logger, clock, onEvent: (event) => events.inc({ event }),
        ...(fedlog?.active() ? { recordAssignments: (clusterId: string, ids: string[]) => recordAssignments(fedlog, clusterId, ids, clock.now()) } : {}),
        sharing: {
          hubOrg: ctx.cfg.org,
          agreementFor: (provider, consumer) => agreementStore.getAgreement(agreementId(provider, consumer)),
          capacityOf: (org) => capacity.get(org) ?? capacityUnbounded,
        },
      });
      const tick = () => void scheduler.tick().catch((err) => logger.error("scheduler tick failed", { error: (err as Error).message }));
      timer = setInterval(tick, schedulerTickMs);

      await node.handle(PROTOCOL_OUTBOX, serve(PROTOCOL_OUTBOX, async (ch, conn) => {
        const peer = conn.remotePeer.toString();
        let member: Member | undefined;
        const verifier = federationVerifier(ca.certDer, peer, (id, hello) => void (member = checkMember(id, hello)));
        const sc = await secureResponder(ch, local, verifier, {
          ...sessionOpts, seen: () => (member ? digestOf(member) : undefined),
          resume: { cache: outboxSessions, peer, recheck: (id, hello, seen) => void (member = recheckMember(id, hello, seen)) },
        });
        handshakes.inc({ kind: sc.resumed ? "resumed" : "full" });
        // One stream carries several pushes (the agent drains its backlog), each acknowledged.
        for (;;) {
          const push = await sc.receive(PushMsg).catch((err) => {
            if ((err as Error).name === "MalformedInputError" && /stream read failed|end of/i.test((err as Error).message)) return undefined;
            throw err;
          });
          if (!push) break;
          const r = await ledger.outbox(peer, member!.clusterId, push.entries);
          records.inc({ result: "applied" }, r.applied);
          records.inc({ result: "duplicate" }, r.skipped);
          for (const reported of r.usage) {
            const u = meteredUsage(store!, reported, member!.org, ctx.cfg.org);
            if (!u) continue;
            try {
              meter!.record(u);
            } catch (err) {
              logger.warn("usage record refused", { id: u.id, error: (err as Error).message });
            }
          }
          for (const a of r.audits) {
            ctx.audit.append({ kind: "task-delegation", actor: peer, subject: a.subject.slice(0, 256), details: { event: a.event, ...a.details } });
          }
          await sc.send({ type: "ack", highWater: r.highWater });
          if (r.results.applied) tick();
          if (push.entries.length === 0) break;
        }
      }, { onRejected: (_p, err, conn) => {
        sessionRejects.inc({ reason: (err as Error).name ?? "error" });
        logger.warn("outbox push refused", { peer: conn.remotePeer.toString(), error: (err as Error).message });
      } }), { maxInboundStreams: inboundStreamsPerProtocolMax });

      let seq = 0;
      ctx.app.route("/v1/tasks", taskRoutes({
        store,
        newId: () => `t${clock.now().toString(36)}${(seq++).toString(36)}${crypto.getRandomValues(new Uint8Array(3)).reduce((s, b) => s + b.toString(16).padStart(2, "0"), "")}`,
        submit: (id, plan, origin, consumer) => ledger.submit(id, plan, origin, consumer),
        onSubmitted: () => tick(),
      }) as never);
      void AckMsg;
      void stopping;
    },
    async stop() {
      stopping.abort();
      if (timer) clearInterval(timer);
      store?.close();
      meter?.close();
      agreements?.close();
    },
  };
}
