import { describe, expect, test } from "bun:test";
import { Metrics, metricSeriesMax } from "./metrics.ts";

describe("Metrics", () => {
  test("renders counters and gauges in exposition format", () => {
    const m = new Metrics();
    const req = m.counter("grey_api_requests_total", "API requests.", ["route", "status"]);
    req.inc({ route: "/v1/health", status: "200" });
    req.inc({ route: "/v1/health", status: "200" });
    req.inc({ route: 'we"ird\\\n', status: "500" });
    const g = m.gauge("grey_members", "Members by state.", ["state"]);
    m.collect(() => g.set({ state: "healthy" }, 3));
    m.counter("grey_joins_total", "Joins.");
    const text = m.render();
    expect(text).toContain("# HELP grey_api_requests_total API requests.\n# TYPE grey_api_requests_total counter\n");
    expect(text).toContain('grey_api_requests_total{route="/v1/health",status="200"} 2\n');
    expect(text).toContain('grey_api_requests_total{route="we\\"ird\\\\\\n",status="500"} 1\n');
    expect(text).toContain('grey_members{state="healthy"} 3\n');
    expect(text).toContain("# TYPE grey_joins_total counter\ngrey_joins_total 0\n");
    expect(text.endsWith("\n")).toBe(true);
  });

  test("rejects misuse loudly", () => {
    const m = new Metrics();
    const c = m.counter("c_total", "c", ["a"]);
    expect(() => c.inc({ b: "x" })).toThrow();
    expect(() => c.inc({ a: "x" }, -1)).toThrow();
    expect(() => m.gauge("c_total", "c", ["a"])).toThrow();
    expect(() => m.counter("bad name", "x")).toThrow();
    expect(m.counter("c_total", "c", ["a"])).toBe(c);
  });

  test("caps series per metric", () => {
    const m = new Metrics();
    const c = m.counter("c_total", "c", ["id"]);
    for (let i = 0; i < metricSeriesMax + 10; i++) c.inc({ id: String(i) });
    expect(c.get({ id: String(metricSeriesMax) })).toBeUndefined();
    expect(m.render()).toContain("grey_metrics_series_dropped_total 10\n");
  });
});
