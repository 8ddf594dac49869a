import { readFileSync } from "node:fs";
export function seg(label: string) {
  Bun.gc(true);
  const s = readFileSync("/proc/self/smaps", "utf8").split("\n");
  let hdr = "", exe = 0, anon = 0, other = 0;
  for (const l of s) {
    if (/^[0-9a-f]+-/.test(l)) hdr = l;
    else if (l.startsWith("Rss:")) { const kb = Number(l.split(/\s+/)[1]); if (hdr.includes(process.execPath)) exe += kb; else if (hdr.trim().split(/\s+/).length < 6) anon += kb; else other += kb; }
  }
  console.log(`${label.padEnd(22)} total ${((exe + anon + other) / 1024).toFixed(1)}  exe ${(exe / 1024).toFixed(1)}  anon ${(anon / 1024).toFixed(1)}  libs ${(other / 1024).toFixed(1)}`);
}
