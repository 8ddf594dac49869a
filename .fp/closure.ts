// static-import closure of entry modules (what `run` loads), grouped by package
const entries = process.argv.slice(2);
const r = await Bun.build({ entrypoints: entries, target: "bun", format: "esm", metafile: true, splitting: true, outdir: "/tmp/fp/closure-out" });
const m = r.metafile!;
const seen = new Set<string>(); const stack = [...entries.map((e) => e.replace("/work/main/", ""))];
while (stack.length) {
  const f = stack.pop()!; if (seen.has(f)) continue; seen.add(f);
  for (const im of m.inputs[f]?.imports ?? []) if (im.kind === "import-statement" && !im.external) stack.push(im.path);
}
const groups: Record<string, number> = {};
for (const f of seen) { const mm = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(f); const g = mm ? mm[1]! : f.split("/").slice(0, 2).join("/"); groups[g] = (groups[g] ?? 0) + (m.inputs[f]?.bytes ?? 0); }
const tot = Object.values(groups).reduce((a, b) => a + b, 0);
console.log(seen.size, "modules", (tot / 1024).toFixed(0), "KB source");
console.log(Object.entries(groups).sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40)).map(([k, v]) => (v / 1024).toFixed(0).padStart(5) + " KB " + k).join("\n"));
