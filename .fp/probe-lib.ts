import { heapStats } from "bun:jsc";
import { readFileSync } from "node:fs";
export function report(label: string) {
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;
  const before = rss();
  Bun.gc(true);
  const h = heapStats();
  console.log(`${label}: rss ${before.toFixed(1)} -> after gc ${rss().toFixed(1)} MB; heap ${(h.heapSize/1048576).toFixed(1)} MB cap ${(h.heapCapacity/1048576).toFixed(1)} extra ${(h.extraMemorySize/1048576).toFixed(1)} objects ${h.objectCount}`);
  const top = Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log("  ", top.map(([k, v]) => `${k}:${v}`).join(" "));
}
