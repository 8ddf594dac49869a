/**
 * `bun run plugin:check FILE [OPTIONS_JSON]`: loads a bundled plugin file exactly as the binaries
 * do (plugins/host/loader.ts) and runs the compliance suite for its kind (check.test.ts).
 */
import { resolve } from "node:path";

const [file, options] = process.argv.slice(2);
if (!file) {
  console.error("usage: bun run plugin:check FILE [OPTIONS_JSON]");
  process.exit(2);
}
const p = Bun.spawnSync([process.execPath, "test", resolve(import.meta.dir, "check.test.ts")], {
  env: { ...process.env, GREY_PLUGIN: resolve(file), GREY_PLUGIN_OPTIONS: options ?? "{}" }, stdout: "inherit", stderr: "inherit",
});
process.exit(p.exitCode ?? 1);
