/** grey-agent command line: joins a federation hub, proves what it runs on, keeps membership alive. */
import { join as joinPath, resolve } from "node:path";
import { parseDuration, requireString, runCli, type Command } from "../plugins/host/cli.ts";
import { parseLogLevel } from "../plugins/host/log.ts";
import { ConfigError } from "../plugins/sdk/errors.ts";
import { desiredCommand, statusCommand, submitCommand } from "./autonomy/cli.ts";

// Each command imports what it uses when it runs (static specifiers: still bundled, one chunk each
// with `bun build --compile --splitting`): --version/--help and the light commands never load
// libp2p, the attestors, the connectors or the KMS clients, and `run` does not load join-only code.

const common = {
  "data-dir": { type: "string" as const, description: "agent data directory (required)" },
  psk: { type: "string" as const, description: "pre-shared key file for a private network (pnet)" },
  "log-level": { type: "string" as const, description: "debug|info|warn|error|silent" },
  plugin: { type: "string" as const, multiple: true, description: "external plugin file built with bun build --target=bun (repeatable; also DIR/agent.json \"plugins\")" },
};

const noop = () => {};
const quiet = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };

/**
 * DIR/agent.json (connectors, sessions: every problem at once) and the external plugins it and
 * --plugin name; a broken one is a one-line error and the command stops.
 */
async function loadExternal(v: Record<string, unknown>, dir: string | undefined): Promise<void> {
  const [{ AGENT_CONFIG_FILE, agentCatalog, loadAgentSettings, useAgentSettings, useExternalPlugins }, { loadPluginFiles, pluginsFromConfig }] =
    await Promise.all([import("./catalog.ts"), import("../plugins/host/loader.ts")]);
  if (dir) useAgentSettings(loadAgentSettings(dir));
  const sources = [...(dir ? pluginsFromConfig(joinPath(dir, AGENT_CONFIG_FILE)) : []), ...((v.plugin as string[] | undefined) ?? []).map((f) => ({ file: resolve(f) }))];
  const loaded = await loadPluginFiles(sources);
  agentCatalog(quiet, {}, loaded); // create + validate now, before anything connects
  useExternalPlugins(loaded);
}

const commands: Record<string, Command> = {
  join: {
    summary: "join a federation with a one-time token from 'grey-hub token create'",
    usage: "join TOKEN --data-dir DIR",
    options: {
      ...common,
      format: { type: "string", description: "evidence format to present: dev | tpm2-quote | aws-iid | gcp-iit | azure-imds | onprem-x509 (cloud/on-prem identity from agent.json connectors; default: dev)" },
      tpm: { type: "string", description: "TPM for tpm2-quote: swtpm:HOST:PORT or a device (default /dev/tpmrm0)" },
    },
    async run(v, positionals) {
      const token = positionals[0];
      if (!token) throw new ConfigError(["join needs the TOKEN printed by 'grey-hub token create'"]);
      await loadExternal(v, resolve(requireString(v, "data-dir")));
      const { join } = await import("./join.ts");
      const m = await join({
        dataDir: resolve(requireString(v, "data-dir")), token,
        ...(v.format ? { format: v.format as string } : {}),
        ...(v.tpm ? { tpm: v.tpm as string } : {}),
        ...(v.psk ? { pskFile: resolve(v.psk as string) } : {}),
        logLevel: parseLogLevel(v["log-level"] ?? "warn"),
      });
      console.log(`joined grey://${m.org}/${m.region}/${m.clusterId}; certificate valid until ${new Date(m.certNotAfter).toISOString()}`);
    },
  },
  run: {
    summary: "run the agent: heartbeats, certificate renewal, peer sessions",
    usage: "run --data-dir DIR [--listen MULTIADDR] [--heartbeat-interval 2s]",
    options: {
      ...common,
      listen: { type: "string", multiple: true, description: "libp2p listen multiaddr (default /ip4/127.0.0.1/tcp/0)" },
      "heartbeat-interval": { type: "string", description: "heartbeat period (default 2s)" },
      format: { type: "string", description: "evidence format for renewals (default: dev)" },
      tpm: { type: "string", description: "TPM for tpm2-quote: swtpm:HOST:PORT or a device (default /dev/tpmrm0)" },
    },
    async run(v) {
      await loadExternal(v, resolve(requireString(v, "data-dir")));
      const { startAgent } = await import("./runtime.ts");
      const agent = await startAgent({
        dataDir: resolve(requireString(v, "data-dir")),
        ...(v.listen ? { listen: v.listen as string[] } : {}),
        ...(v["heartbeat-interval"] ? { heartbeatIntervalMs: parseDuration(v["heartbeat-interval"] as string, "heartbeat-interval") } : {}),
        ...(v.psk ? { pskFile: resolve(v.psk as string) } : {}),
        ...(v.format ? { format: v.format as string } : {}),
        ...(v.tpm ? { tpm: v.tpm as string } : {}),
        logLevel: parseLogLevel(v["log-level"]),
      });
      await new Promise<void>((r) => {
        process.once("SIGINT", () => r());
        process.once("SIGTERM", () => r());
      });
      await agent.stop();
      process.exit(0);
    },
  },
  "tpm ak": {
    summary: "print the TPM attestation key to pin in the hub's attestation policy (akNames)",
    usage: "tpm ak [--tpm swtpm:HOST:PORT | /dev/tpmrm0] [--json]",
    options: {
      tpm: { type: "string", description: "TPM: swtpm:HOST:PORT or a device (default /dev/tpmrm0)" },
      json: { type: "boolean", description: "print {name, pem} as JSON" },
    },
    async run(v) {
      const { readAk } = await import("../plugins/attestor-tpm/attestor.ts");
      const ak = await readAk((v.tpm as string) ?? "/dev/tpmrm0", {}, { signal: AbortSignal.timeout(30_000) });
      console.log(v.json ? JSON.stringify(ak) : `AK name ${ak.name}\n${ak.pem.trim()}`);
    },
  },
  "kms migrate": {
    summary: "seal the plaintext node key with a KMS (envelope file); --kms also saves it in agent.json",
    usage: "kms migrate --data-dir DIR [--kms JSON|FILE]",
    options: { "data-dir": common["data-dir"], kms: { type: "string", description: "KMS: JSON {\"provider\":\"aws|gcp|azure|hsm|tpm\",...} or a file (default: agent.json kms)" } },
    async run(v) {
      const dir = resolve(requireString(v, "data-dir"));
      const [{ dataDirKmsConfig, kmsFromConfig, kmsOption, migrateKeyFiles, PURPOSE, setConfigKms }, { NODE_KEY_FILE }, { AGENT_CONFIG_FILE }] =
        await Promise.all([import("../plugins/host/keystore.ts"), import("../plugins/mesh-libp2p/node-key.ts"), import("./catalog.ts")]);
      const have = dataDirKmsConfig(dir);
      const cfg = v.kms ? kmsOption(v.kms as string) : have;
      if (have && cfg && JSON.stringify(have) !== JSON.stringify(cfg)) throw new ConfigError([`--kms: agent.json already names another KMS (${have.provider}); re-wrapping under a new KMS is not supported`]);
      if (!cfg) throw new ConfigError([`${joinPath(dir, AGENT_CONFIG_FILE)} has no "kms": pass --kms`]);
      for (const line of await migrateKeyFiles([{ path: joinPath(dir, NODE_KEY_FILE), purpose: PURPOSE.nodeKey }], kmsFromConfig(cfg))) console.log(line);
      if (v.kms) setConfigKms(joinPath(dir, AGENT_CONFIG_FILE), cfg);
    },
  },
  status: statusCommand,
  submit: submitCommand,
  desired: desiredCommand,
  "tpm ek": {
    summary: "print the TPM endorsement key to pin in the hub's attestation policy (ekNames; the AK is then proven by credential activation at join)",
    usage: "tpm ek [--tpm swtpm:HOST:PORT | /dev/tpmrm0] [--json]",
    options: {
      tpm: { type: "string", description: "TPM: swtpm:HOST:PORT or a device (default /dev/tpmrm0)" },
      json: { type: "boolean", description: "print {name, pem, certificate} as JSON" },
    },
    async run(v) {
      const { readEk } = await import("../plugins/attestor-tpm/attestor.ts");
      const ek = await readEk((v.tpm as string) ?? "/dev/tpmrm0", {}, { signal: AbortSignal.timeout(30_000) });
      console.log(v.json ? JSON.stringify(ek) : `EK name ${ek.name}${ek.certificate ? " (EK certificate in NV)" : ""}\n${ek.pem.trim()}`);
    },
  },
  plugins: {
    summary: "list the plugins this agent loads",
    usage: "plugins [--data-dir DIR] [--plugin FILE]... [--health]",
    options: {
      "data-dir": { type: "string", description: "also load the plugins listed in DIR/agent.json" },
      plugin: common.plugin,
      health: { type: "boolean", description: "probe each connector's platform endpoints" },
    },
    async run(v) {
      await loadExternal(v, v["data-dir"] ? resolve(v["data-dir"] as string) : undefined);
      const [{ pluginLines }, { agentCatalog }] = await Promise.all([import("../plugins/host/loader.ts"), import("./catalog.ts")]);
      for (const line of await pluginLines(agentCatalog(quiet), { health: v.health === true })) console.log(line);
    },
  },
};

// Exit explicitly: libp2p listeners and timers would otherwise keep a failed `run` alive.
process.exit(await runCli("grey-agent", commands, process.argv.slice(2)));
