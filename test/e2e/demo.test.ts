/** The README's main command: the demo federation comes up, prints the table, and stops cleanly. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { requireBinaries, root } from "./harness.ts";

test("demo: one hub, three agents in three regions, all healthy and meshed, clean stop", async () => {
  requireBinaries();
  const p = Bun.spawn([process.execPath, join(root, "test/e2e/demo.ts"), "--duration", "2"], { stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  expect(err).toBe("");
  expect(code).toBe(0);
  const rows = out.split("\n").filter((l) => /^(factory-berlin|store-austin|port-singapore)\s/.test(l));
  expect(rows).toHaveLength(3);
  for (const r of rows) expect(r).toMatch(/\shealthy\s+dev:ok\s+2\s/);
  expect(out).toMatch(/task \S+: sum of 1\.\.30 split across 3 clusters = 465/);
  expect(out).toContain("stopped cleanly");
});
