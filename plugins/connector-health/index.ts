/**
 * The `connector health` service: on a schedule, asks every configured connector for its
 * health() and probes every peer (a round trip the caller supplies, e.g. libp2p ping over the
 * federation mesh), then exports
 *
 *   grey_connector_up{platform}             1 when the connector's report is ok/degraded, 0 when down or failing
 *   grey_peer_up{peer}                      1 when the last probe answered within timeoutMs
 *   grey_peer_rtt_ms{peer,quantile}         0.5 / 0.9 / 0.99 over the last `rttSamplesMax` answers
 *   grey_peer_bytes_total{peer,direction}   bytes sent/received, from the peer's counters (monotonic)
 *
 * Metrics go to any registry with `gauge`/`counter` (hub/metrics.ts Metrics fits). Probes run
 * concurrently, each bounded by timeoutMs; a round never overlaps the previous one.
 */
import type { Connector } from "../sdk/connector.ts";
import type { HostComponents } from "../sdk/plugin.ts";

export const probeIntervalMsDefault = 15_000;
export const probeTimeoutMsDefault = 3_000;
/** RTT samples kept per peer for the quantiles. */
export const rttSamplesMax = 256;
/** Peers probed per round; beyond, the rest wait for the next round (oldest-probed first). */
export const peersPerRoundMax = 512;
export const quantiles = [0.5, 0.9, 0.99] as const;

export interface PeerTarget {
  peer: string;
  /** One round trip; resolves when answered. */
  ping(options: { signal: AbortSignal }): Promise<void>;
  /** Cumulative bytes exchanged with this peer, if known. */
  bytes?(): { sent: number; received: number };
}

interface Gauge { set(labels: Record<string, string>, value: number): void }
interface Counter { inc(labels?: Record<string, string>, by?: number): void }
export interface MetricsSink {
  gauge(name: string, help: string, labelNames?: readonly string[]): Gauge;
  counter(name: string, help: string, labelNames?: readonly string[]): Counter;
}

export interface ConnectorHealthInit {
  intervalMs?: number;
  timeoutMs?: number;
}

export interface ConnectorHealthComponents extends HostComponents {
  connectors: () => readonly Connector[];
  peers: () => readonly PeerTarget[];
  metrics: MetricsSink;
}

export interface PeerHealth { up: boolean; rttMs: Record<string, number>; samples: number; lastProbeAt: number }

/** Nearest-rank quantile of sorted samples. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function connectorHealth(init: ConnectorHealthInit = {}) {
  const intervalMs = init.intervalMs ?? probeIntervalMsDefault;
  const timeoutMs = init.timeoutMs ?? probeTimeoutMsDefault;
  if (!(intervalMs >= 100 && timeoutMs >= 1 && timeoutMs <= intervalMs)) throw new RangeError("connector health: need intervalMs >= 100 and 1 <= timeoutMs <= intervalMs");

  return (c: ConnectorHealthComponents) => {
    const up = c.metrics.gauge("grey_connector_up", "Connector platform endpoints reachable (1) or not (0)", ["platform"]);
    const peerUp = c.metrics.gauge("grey_peer_up", "Peer answered the last probe (1) or not (0)", ["peer"]);
    const rtt = c.metrics.gauge("grey_peer_rtt_ms", "Peer round-trip time quantiles over recent probes, milliseconds", ["peer", "quantile"]);
    const bytes = c.metrics.counter("grey_peer_bytes_total", "Bytes exchanged with a peer", ["peer", "direction"]);
    const samples = new Map<string, number[]>();
    const lastBytes = new Map<string, { sent: number; received: number }>();
    const state = new Map<string, PeerHealth>();
    const connectorState = new Map<string, { up: boolean; lastProbeAt: number }>();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running: Promise<void> | undefined;
    let stopped = true;
    const controller = { current: new AbortController() };

    const bounded = (signal: AbortSignal) => AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);

    async function probeConnector(conn: Connector, signal: AbortSignal): Promise<void> {
      let ok = false;
      try {
        ok = (await conn.health({ signal: bounded(signal) })).status !== "down";
      } catch (err) {
        c.logger.debug(`connector health: ${conn.platform}: ${(err as Error).message}`);
      }
      up.set({ platform: conn.platform }, ok ? 1 : 0);
      connectorState.set(conn.platform, { up: ok, lastProbeAt: c.clock.now() });
    }

    async function probePeer(t: PeerTarget, signal: AbortSignal): Promise<void> {
      const started = c.clock.now();
      let answered = false;
      try {
        await t.ping({ signal: bounded(signal) });
        answered = true;
      } catch {
        answered = false;
      }
      const now = c.clock.now();
      const list = samples.get(t.peer) ?? [];
      if (answered) {
        list.push(now - started);
        if (list.length > rttSamplesMax) list.splice(0, list.length - rttSamplesMax);
        samples.set(t.peer, list);
      }
      peerUp.set({ peer: t.peer }, answered ? 1 : 0);
      const sorted = [...list].sort((a, b) => a - b);
      const q: Record<string, number> = {};
      for (const x of quantiles) {
        q[String(x)] = quantile(sorted, x);
        if (sorted.length) rtt.set({ peer: t.peer, quantile: String(x) }, q[String(x)]!);
      }
      const b = t.bytes?.();
      if (b) {
        const prev = lastBytes.get(t.peer) ?? { sent: 0, received: 0 };
        // counters restart when a connection is re-made: count from zero again, never backwards
        const sent = b.sent >= prev.sent ? b.sent - prev.sent : b.sent;
        const received = b.received >= prev.received ? b.received - prev.received : b.received;
        if (sent) bytes.inc({ peer: t.peer, direction: "sent" }, sent);
        if (received) bytes.inc({ peer: t.peer, direction: "received" }, received);
        lastBytes.set(t.peer, b);
      }
      state.set(t.peer, { up: answered, rttMs: q, samples: list.length, lastProbeAt: now });
    }

    /** One round: every connector and (up to peersPerRoundMax, least recently probed first) peer. */
    async function probeOnce(): Promise<void> {
      const signal = controller.current.signal;
      const peers = [...c.peers()].sort((a, b) => (state.get(a.peer)?.lastProbeAt ?? -1) - (state.get(b.peer)?.lastProbeAt ?? -1)).slice(0, peersPerRoundMax);
      await Promise.all([...c.connectors().map((k) => probeConnector(k, signal)), ...peers.map((p) => probePeer(p, signal))]);
    }

    const loop = () => {
      if (stopped) return;
      running = probeOnce().catch((err) => c.logger.warn(`connector health: ${(err as Error).message}`)).finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(loop, intervalMs);
      });
    };

    return {
      name: "connector-health",
      probeOnce,
      peer: (peer: string) => state.get(peer),
      /** Last figures of every peer and connector probed (status.json). */
      snapshot: () => ({ peers: Object.fromEntries(state), connectors: Object.fromEntries(connectorState) }),
      async start() {
        stopped = false;
        controller.current = new AbortController();
        loop();
      },
      async stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
        controller.current.abort();
        await running;
      },
    };
  };
}
