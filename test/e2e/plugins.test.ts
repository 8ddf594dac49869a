/**
 * External plugins in the compiled binaries: the example connector is built
 * with `bun build --target=bun` (as an outside author would), loaded by the
 * compiled hub and agent with --plugin and from the config file, listed by
 * `plugins`, and exercised (health probe through the injected fetch, join with
 * it loaded). Broken plugins (another plugin API, throws at import, bad
 * export) stop the command with one clear line and no stack trace.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agentBin, createToken, hubBin, initHub, requireBinaries, root, run, startAgent, startHub, stopAll, tempDir, waitFor, agentStatus } from "./harness.ts";

let dir: string;
let example: string;
let probe: ReturnType<typeof Bun.serve>;
let probes = 0;

beforeAll(async () => {
  requireBinaries();
  dir = tempDir("grey-plugins-");
  example = join(dir, "example-connector.js");
  const b = Bun.spawnSync([process.execPath, "build", "--target=bun", join(root, "examples/external-connector/index.ts"), "--outfile", example], { stderr: "pipe" });
  if (b.exitCode !== 0) throw new Error(`bun build failed: ${b.stderr.toString()}`);
  writeFileSync(join(dir, "v2.js"), `export default { apiVersion: 2, name: "connector-future", kind: "connector", create: () => ({}) };\n`);
  writeFileSync(join(dir, "throws.js"), `throw new Error("kaboom at import");\n`);
  writeFileSync(join(dir, "shape.js"), `export default { apiVersion: 1, kind: "connector" };\n`);
  writeFileSync(join(dir, "bad-object.js"), `export default { apiVersion: 1, name: "connector-bad", kind: "connector", create: () => ({ name: "connector-bad", kind: "connector", apiVersion: 1, platform: "x", credentialTypes: [] }) };\n`);
  probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (probes++, new Response("ok")) });
});

afterAll(async () => {
  probe?.stop(true);
  await stopAll();
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines.length).toBe(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

describe("external plugin in the compiled binaries", () => {
  test("hub and agent list it with its source file and health", async () => {
    for (const [bin, name] of [[hubBin, "grey-hub"], [agentBin, "grey-agent"]] as const) {
      const r = await run(bin, ["plugins", "--plugin", example, "--health"]);
      expect(r.stderr).toBe("");
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^connector\\s+connector-example\\s+api v1\\s+platform=example health=ok file=${example}$`, "m"));
      expect(r.stdout).toContain("attestor-dev"); // built-ins still there
      void name;
    }
  });

  test("config entry with options: the plugin's health probe goes through the injected fetch", async () => {
    const hubDir = tempDir("grey-plugins-hub-");
    await initHub(hubDir, ["--org", "acme"]);
    const cfgPath = join(hubDir, "hub.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    cfg.plugins = [{ file: example, options: { endpoint: `http://127.0.0.1:${probe.port}/health` } }];
    writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
    const before = probes;
    const r = await run(hubBin, ["plugins", "--data-dir", hubDir, "--health"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/connector-example .*health=ok/);
    expect(probes).toBe(before + 1);

    // the hub runs with it loaded, and an agent with the same plugin joins
    const hub = await startHub(hubDir);
    const agentDir = tempDir("grey-plugins-agent-");
    writeFileSync(join(agentDir, "agent.json"), JSON.stringify({ plugins: ["../" + example.split("/").slice(-2).join("/")] }));
    const token = await createToken(hubDir, "edge-x", "acme", "eu-west");
    const j = await run(agentBin, ["join", token, "--data-dir", agentDir]);
    expect(j.stderr).toBe("");
    expect(j.exitCode).toBe(0);
    const a = startAgent(agentDir, [], true);
    await waitFor("agent heartbeat", () => (agentStatus(agentDir)?.heartbeatsSent ?? 0) > 0, 20_000);
    expect(await a.stop()).toBe(0);
    expect(await hub.stop()).toBe(0);
  }, 60_000);
});

describe("broken plugins: one line, non-zero exit, nothing started", () => {
  const cases: [string, RegExp][] = [
    ["v2.js", /plugin .*v2\.js: built for plugin API 2, this host speaks 1 \[ERR_PLUGIN\]$/],
    ["throws.js", /plugin .*throws\.js: failed to import: kaboom at import \[ERR_PLUGIN\]$/],
    ["shape.js", /plugin .*shape\.js: default export is not a plugin definition \(name: .*\) \[ERR_PLUGIN\]$/],
    ["bad-object.js", /plugin .*bad-object\.js: plugin connector-bad: connector without health\(\) \[ERR_PLUGIN\]$/],
    ["missing.js", /plugin .*missing\.js: file not found \[ERR_PLUGIN\]$/],
  ];
  for (const [file, message] of cases) {
    test(`${file}: plugins (hub and agent) refuses it`, async () => {
      for (const bin of [hubBin, agentBin]) {
        const r = await run(bin, ["plugins", "--plugin", join(dir, file)]);
        expect(r.exitCode).toBe(1);
        expect(oneLine(r.stderr)).toMatch(message);
      }
    });
  }

  test("hub run with a broken plugin exits 1 before listening (no run.json)", async () => {
    const hubDir = tempDir("grey-plugins-broken-");
    await initHub(hubDir);
    const r = await run(hubBin, ["run", "--data-dir", hubDir, "--api", "127.0.0.1:0", "--plugin", join(dir, "v2.js")], 20_000);
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^grey-hub: plugin .*v2\.js: built for plugin API 2/);
    expect(Bun.file(join(hubDir, "run.json")).size).toBe(0);
  });

  test("agent run with a plugin that throws at import exits 1", async () => {
    const agentDir = tempDir("grey-plugins-broken-agent-");
    const r = await run(agentBin, ["run", "--data-dir", agentDir, "--plugin", join(dir, "throws.js")], 20_000);
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^grey-agent: plugin .*throws\.js: failed to import/);
  });
});
