/**
 * A tiny metrics registry rendering the Prometheus text exposition format
 * (version 0.0.4). Counters and gauges with labels; collectors run before
 * each render to pull values that live elsewhere (the registry's database).
 */

/** Distinct label sets per metric. Beyond: new label sets are dropped (counted in grey_metrics_series_dropped_total). */
export const metricSeriesMax = 1000;

export type Labels = Record<string, string>;
type MetricType = "counter" | "gauge";

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

export class Metric {
  private readonly series = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
    readonly labelNames: readonly string[],
    private readonly onDrop: () => void,
  ) {
    if (!NAME_RE.test(name)) throw new Error(`invalid metric name ${name}`);
    for (const l of labelNames) if (!LABEL_RE.test(l) || l.startsWith("__")) throw new Error(`invalid label name ${l} on ${name}`);
  }

  private key(labels: Labels): string | undefined {
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((n) => n in labels)) {
      throw new Error(`${this.name} takes labels [${this.labelNames.join(", ")}], got [${keys.join(", ")}]`);
    }
    const k = this.labelNames.map((n) => labels[n]).join("\u0000");
    if (!this.series.has(k) && this.series.size >= metricSeriesMax) {
      this.onDrop();
      return undefined;
    }
    return k;
  }

  /** Add `by` (counters: must be >= 0). */
  inc(labels: Labels = {}, by = 1): void {
    if (this.type === "counter" && !(by >= 0)) throw new Error(`counter ${this.name} cannot decrease`);
    const k = this.key(labels);
    if (k === undefined) return;
    const s = this.series.get(k);
    if (s) s.value += by;
    else this.series.set(k, { labels: { ...labels }, value: by });
  }

  /** Set the value (gauges, and counters whose total is kept elsewhere, e.g. persisted). */
  set(labels: Labels, value: number): void {
    const k = this.key(labels);
    if (k === undefined) return;
    this.series.set(k, { labels: { ...labels }, value });
  }

  get(labels: Labels = {}): number | undefined {
    return this.series.get(this.labelNames.map((n) => labels[n]).join("\u0000"))?.value;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    if (this.series.size === 0 && this.labelNames.length === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.series.values()) {
      const ls = this.labelNames.map((n) => `${n}="${escapeLabel(labels[n] ?? "")}"`).join(",");
      lines.push(`${this.name}${ls ? `{${ls}}` : ""} ${formatValue(value)}`);
    }
    return lines.join("\n");
  }
}

export class Metrics {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: (() => void)[] = [];
  private readonly dropped: Metric;

  constructor() {
    this.dropped = this.counter("grey_metrics_series_dropped_total", `Label sets dropped because a metric reached ${metricSeriesMax} series.`);
  }

  private add(name: string, help: string, type: MetricType, labelNames: readonly string[]): Metric {
    const existing = this.metrics.get(name);
    if (existing) {
      if (existing.type !== type || existing.labelNames.join() !== labelNames.join()) throw new Error(`metric ${name} registered twice differently`);
      return existing;
    }
    const m = new Metric(name, help, type, labelNames, () => this.dropped.inc());
    this.metrics.set(name, m);
    return m;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Metric {
    return this.add(name, help, "counter", labelNames);
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Metric {
    return this.add(name, help, "gauge", labelNames);
  }

  /** Run `fn` before every render (to set gauges from their source). */
  collect(fn: () => void): void {
    this.collectors.push(fn);
  }

  render(): string {
    for (const fn of this.collectors) fn();
    return [...this.metrics.values()].map((m) => m.render()).join("\n") + "\n";
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
