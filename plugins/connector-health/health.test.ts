import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Metrics } from "../../hub/metrics.ts";
import type { Connector } from "../sdk/connector.ts";
import { connectorHealth, quantile, type PeerTarget } from "./index.ts";

const logger = { debug() {}, info() {}, warn() {}, error() {} };

function conn(platform: string, status: "ok" | "down" | "throw"): Connector {
  return { platform, health: async () => { if (status === "throw") throw new Error("no route"); return { status, checks: [] }; } } as unknown as Connector;
}

describe("connector health service", () => {
  test("exports connector up/down, peer up, RTT quantiles and bytes in Prometheus text", async () => {
    const clock = { t: 0, now() { return this.t; } };
    const metrics = new Metrics();
    let sent = 0;
    const rtts = [5, 7, 9, 11, 100];
    let i = 0;
    const peers: PeerTarget[] = [
      { peer: "12D3KooWA", ping: async () => { clock.t += rtts[i++ % rtts.length]!; }, bytes: () => ({ sent: (sent += 1000), received: 500 }) },
      { peer: "12D3KooWB", ping: async () => { throw new Error("timeout"); } },
    ];
    const svc = connectorHealth({ intervalMs: 1000, timeoutMs: 100 })({
      logger, clock, metrics, connectors: () => [conn("aws", "ok"), conn("gcp", "down"), conn("azure", "throw")], peers: () => peers,
    });
    for (let r = 0; r < 5; r++) await svc.probeOnce();
    const text = metrics.render();
    expect(text).toContain('grey_connector_up{platform="aws"} 1');
    expect(text).toContain('grey_connector_up{platform="gcp"} 0');
    expect(text).toContain('grey_connector_up{platform="azure"} 0');
    expect(text).toContain('grey_peer_up{peer="12D3KooWA"} 1');
    expect(text).toContain('grey_peer_up{peer="12D3KooWB"} 0');
    expect(text).toContain('grey_peer_rtt_ms{peer="12D3KooWA",quantile="0.5"} 9');
    expect(text).toContain('grey_peer_rtt_ms{peer="12D3KooWA",quantile="0.99"} 100');
    expect(text).not.toContain('grey_peer_rtt_ms{peer="12D3KooWB"');
    expect(text).toContain('grey_peer_bytes_total{peer="12D3KooWA",direction="sent"} 5000');
    expect(text).toContain('grey_peer_bytes_total{peer="12D3KooWA",direction="received"} 500');
    expect(svc.peer("12D3KooWA")).toMatchObject({ up: true, samples: 5 });
  });

  test("a hanging probe is cut at timeoutMs; start/stop run and end the schedule", async () => {
    const metrics = new Metrics();
    let pings = 0;
    const svc = connectorHealth({ intervalMs: 100, timeoutMs: 20 })({
      logger, clock: { now: () => performance.now() }, metrics, connectors: () => [],
      peers: () => [{ peer: "slow", ping: ({ signal }) => { pings++; return new Promise((_, rej) => signal.addEventListener("abort", () => rej(new Error("aborted")))); } }],
    });
    const t0 = performance.now();
    await svc.probeOnce();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(svc.peer("slow")?.up).toBe(false);
    await svc.start();
    await Bun.sleep(250);
    await svc.stop();
    const n = pings;
    expect(n).toBeGreaterThanOrEqual(2);
    await Bun.sleep(150);
    expect(pings).toBe(n);
  });

  test("property: nearest-rank quantiles are samples, monotone in q, p100 = max", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 300 }), (xs) => {
      const s = [...xs].sort((a, b) => a - b);
      const [p50, p90, p99] = [quantile(s, 0.5), quantile(s, 0.9), quantile(s, 0.99)];
      expect(xs).toContain(p50);
      expect(p50 <= p90 && p90 <= p99).toBe(true);
      expect(quantile(s, 1)).toBe(s[s.length - 1]!);
    }));
  });
});
