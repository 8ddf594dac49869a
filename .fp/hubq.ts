import { initHub, tempDir, waitFor } from "../test/e2e/harness.ts";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
const hubDir = tempDir("grey-q-hub-");
await initHub(hubDir);
for (const v of process.env.VARIANTS!.split(",")) for (let i = 0; i < 2; i++) {
  rmSync(join(hubDir, "run.json"), { force: true });
  const p = Bun.spawn([v, "run", "--data-dir", hubDir, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"], { stdout: "ignore", stderr: "ignore" });
  await waitFor("run.json", () => existsSync(join(hubDir, "run.json")) || undefined);
  await Bun.sleep(4000);
  console.log(v.split("/").pop()!.padEnd(20), Bun.spawnSync(["/tmp/fp/smaps.sh", String(p.pid)]).stdout.toString().trim());
  p.kill("SIGTERM"); await p.exited;
}
process.exit(0);
