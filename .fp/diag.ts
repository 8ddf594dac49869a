import { heapStats } from "bun:jsc";
import { readFileSync } from "node:fs";
if (process.argv[2] === "run") setTimeout(() => {
  const rss = () => (Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024).toFixed(1);
  const r0 = rss();
  const h0 = heapStats();
  Bun.gc(true);
  const h = heapStats();
  const mu = process.memoryUsage();
  console.error(`DIAG rss ${r0} -> ${rss()} MB; heap ${(h0.heapSize / 1048576).toFixed(1)} -> ${(h.heapSize / 1048576).toFixed(1)} cap ${(h.heapCapacity / 1048576).toFixed(1)} extra ${(h.extraMemorySize / 1048576).toFixed(1)} objects ${h.objectCount} arrayBuffers ${(mu.arrayBuffers/1048576).toFixed(1)}`);
  console.error("DIAG", Object.entries(h.objectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 14).map(([k, v]) => `${k}:${v}`).join(" "));
  console.error("DIAG protected", Object.entries(h.protectedObjectTypeCounts).sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k}:${v}`).join(" "));
}, 6000).unref();
await import("../agent/main.ts");
