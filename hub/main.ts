/** grey-hub: federation CA, registry, attestation verifier and mTLS API. */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseLogLevel } from "../plugins/host/log.ts";
import { writeSecretFile } from "../plugins/sdk/fs.ts";
import { parseDuration, requireString, runCli, type Command } from "../plugins/host/cli.ts";
import { caPaths } from "./ca/layout.ts";
import { ConfigError } from "../plugins/sdk/errors.ts";
import { tokenTtlMsDefault } from "../plugins/sdk/limits.ts";
import { agreementCommands } from "./cli/agreement.ts";
import { consensusCommands } from "./fedlog/cli.ts";
import { attestVerifyCommand } from "./cli/attest-verify.ts";
import { taskGetCommand, taskSubmitCommand } from "./tasks/cli.ts";

// Commands import what they use when they run (static specifiers: still bundled, in chunks of their
// own with `bun build --compile --splitting`): --version/--help and the light commands never load
// libp2p, the CA, the registry or the KMS clients. Keep heavy modules out of the static imports.
const nodeKey = () => import("../plugins/mesh-libp2p/node-key.ts");
const keystore = () => import("../plugins/host/keystore.ts");
const config = () => import("./config.ts");
const runtime = () => import("./runtime.ts");
const audit = () => import("./audit/index.ts");

const dataDirOpt = { "data-dir": { type: "string" as const, description: "hub data directory (required)" } };
const pluginOpt = { plugin: { type: "string" as const, multiple: true, description: "external plugin file built with bun build --target=bun (repeatable; also hub.json \"plugins\")" } };
const noop = () => {};
const quiet = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };

/** External plugins from hub.json and --plugin; a broken one is a one-line error and the hub does not start. */
async function loadExternal(v: Record<string, unknown>, dir: string | undefined) {
  const [{ HUB_CONFIG_FILE }, { loadPluginFiles, pluginsFromConfig }, { hubCatalog, useExternalPlugins }] =
    await Promise.all([config(), import("../plugins/host/loader.ts"), import("./catalog.ts")]);
  const sources = [...(dir ? pluginsFromConfig(join(dir, HUB_CONFIG_FILE)) : []), ...((v.plugin as string[] | undefined) ?? []).map((f) => ({ file: resolve(f) }))];
  const loaded = await loadPluginFiles(sources);
  hubCatalog(quiet, {}, loaded); // create + validate now, before anything listens
  useExternalPlugins(loaded);
  return loaded;
}

function dataDir(values: Record<string, unknown>): string {
  return resolve(requireString(values, "data-dir"));
}

async function checkId(flag: string, value: string): Promise<string> {
  const { IdSchema } = await import("../plugins/sdk/wire.ts");
  if (!IdSchema.safeParse(value).success) throw new ConfigError([`--${flag}: "${value}" must be lowercase letters, digits and '-' (max 63)`]);
  return value;
}

const commands: Record<string, Command> = {
  init: {
    summary: "create the federation CA, the hub identity and admin credentials",
    usage: "init --data-dir DIR [--org ORG] [--name NAME] [--federation-from DIR]",
    options: {
      ...dataDirOpt,
      org: { type: "string", description: "organisation owning the federation (default: grey)" },
      name: { type: "string", description: "hub name (default: hub-1)" },
      "federation-from": { type: "string", description: "join an existing federation: reuse the CA of that hub data dir" },
      "allow-formats": { type: "string", description: "comma-separated evidence formats accepted (default: dev)" },
      kms: { type: "string", description: "seal the CA key and node key with a KMS: JSON {\"provider\":\"aws|gcp|azure|hsm|tpm\",...} or a file holding it (saved in hub.json)" },
    },
    async run(v) {
      const dir = dataDir(v);
      const org = await checkId("org", (v.org as string) ?? "grey");
      const name = await checkId("name", (v.name as string) ?? "hub-1");
      const [{ kmsFromConfig, kmsOption }, { loadOrCreateNodeKey, peerIdOf }, { initFederation, initFederationFrom }, { loadCa }, { writeHubConfig }] =
        await Promise.all([keystore(), nodeKey(), import("./ca/init.ts"), import("./ca/ca.ts"), config()]);
      const kmsCfg = v.kms ? kmsOption(v.kms as string) : undefined;
      const kms = kmsCfg ? { kms: kmsFromConfig(kmsCfg) } : {};
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const key = await loadOrCreateNodeKey(dir, kms);
      const hubPeerId = peerIdOf(key);
      const from = v["federation-from"] as string | undefined;
      if (from) await initFederationFrom(dir, resolve(from), { hubPeerId, hubName: name, now: new Date(), ...kms });
      else await initFederation(dir, { org, hubPeerId, hubName: name, now: new Date(), ...kms });
      const ca = await loadCa(dir, kms);
      const allow = ((v["allow-formats"] as string) ?? "dev").split(",").map((s) => s.trim()).filter(Boolean);
      writeHubConfig(dir, { org: ca.org, name, attestation: { allow }, ...(kmsCfg ? { kms: kmsCfg } : {}) });
      if (kmsCfg) console.log(`keys sealed   ${kms.kms!.name} (ca/ca.key, node.key)`);
      console.log(`federation CA ${ca.fingerprint}`);
      console.log(`hub peer id   ${hubPeerId}`);
      console.log(`admin creds   ${join(dir, "admin")}/{ca.pem,cert.pem,key.pem}`);
    },
  },
  run: {
    summary: "run the hub: DHT node, join/heartbeat protocols, mTLS API",
    usage: "run --data-dir DIR [--listen MULTIADDR] [--api HOST:PORT] [--bootstrap MULTIADDR]...",
    options: {
      ...dataDirOpt,
      listen: { type: "string", multiple: true, description: "libp2p listen multiaddr (repeatable)" },
      api: { type: "string", description: "API listen HOST:PORT (default 127.0.0.1:8443; port 0 picks one)" },
      bootstrap: { type: "string", multiple: true, description: "another federation node to join the DHT through" },
      psk: { type: "string", description: "pre-shared key file for a private network (pnet)" },
      "raft-peer": { type: "string", multiple: true, description: "another hub of the federation log's Raft group: MULTIADDR/p2p/PEER_ID (repeatable)" },
      "raft-join": { type: "boolean", description: "join a running Raft group (then 'consensus add-peer' this hub on it) instead of founding one" },
      governance: { type: "string", description: "governance policy file: operations per trust boundary, org/peer allow-lists" },
      "cert-ttl": { type: "string", description: "member certificate lifetime (default 1h)" },
      "heartbeat-interval": { type: "string", description: "expected agent heartbeat period (default 2s)" },
      "attest-policy": { type: "string", description: "attestation policy file (YAML/JSON; overrides hub.json attestation.policyFile)" },
      "log-level": { type: "string", description: "debug|info|warn|error|silent" },
      ...pluginOpt,
    },
    async run(v) {
      const dir = dataDir(v);
      await loadExternal(v, dir);
      const [{ loadHubConfig, withRaftPeers }, { startHub }] = await Promise.all([config(), runtime()]);
      const cfg = loadHubConfig(dir, {
        listen: v.listen as string[] | undefined,
        api: v.api as string | undefined,
        bootstrap: v.bootstrap as string[] | undefined,
        pskFile: v.psk ? resolve(v.psk as string) : undefined,
        governanceFile: v.governance ? resolve(v.governance as string) : undefined,
        memberCertTtlMs: v["cert-ttl"] ? parseDuration(v["cert-ttl"] as string, "cert-ttl") : undefined,
        heartbeatIntervalMs: v["heartbeat-interval"] ? parseDuration(v["heartbeat-interval"] as string, "heartbeat-interval") : undefined,
      });
      if (v["attest-policy"]) cfg.attestation.policyFile = resolve(v["attest-policy"] as string);
      if (v["raft-peer"]) cfg.consensus = withRaftPeers(cfg, v["raft-peer"] as string[]).consensus;
      if (v["raft-join"] && cfg.consensus) cfg.consensus = { ...cfg.consensus, join: true };
      const hub = await startHub(cfg, parseLogLevel(v["log-level"]));
      await new Promise<void>((resolveStop) => {
        const stop = () => resolveStop();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await hub.stop();
      // a process with a TCP listener lingers after node.stop(): exit explicitly
      process.exit(0);
    },
  },
  "token create": {
    summary: "create a one-time join token for a cluster (works while the hub runs)",
    usage: "token create --data-dir DIR --cluster ID --org ORG --region REGION [--ttl 1h] [--bootstrap MULTIADDR]...",
    options: {
      ...dataDirOpt,
      cluster: { type: "string", description: "cluster id the token admits" },
      org: { type: "string", description: "organisation of the cluster" },
      region: { type: "string", description: "region of the cluster" },
      ttl: { type: "string", description: "token lifetime (default 1h, max 7d)" },
      bootstrap: { type: "string", multiple: true, description: "multiaddrs the agent dials first (default: this hub's, from run.json)" },
    },
    async run(v) {
      const dir = dataDir(v);
      const problems: string[] = [];
      for (const f of ["cluster", "org", "region"]) if (typeof v[f] !== "string") problems.push(`--${f} is required`);
      if (problems.length) throw new ConfigError(problems);
      const cluster = await checkId("cluster", v.cluster as string);
      const org = await checkId("org", v.org as string);
      const region = await checkId("region", v.region as string);
      const [{ loadCa }, { loadOrCreateNodeKey, peerIdOf }, { RUN_FILE, REGISTRY_FILE }, { openRegistry }, { loadHubConfig }, { encodeJoinToken }] = await Promise.all([
        import("./ca/ca.ts"), nodeKey(), runtime(), import("./registry/index.ts"), config(), import("../plugins/sdk/token.ts"),
      ]);
      const ttlMs = v.ttl ? parseDuration(v.ttl as string, "ttl") : tokenTtlMsDefault;
      const ca = await loadCa(dir);
      const hubPeerId = peerIdOf(await loadOrCreateNodeKey(dir));
      let bootstrap = v.bootstrap as string[] | undefined;
      if (!bootstrap?.length) {
        const runFile = join(dir, RUN_FILE);
        if (!existsSync(runFile)) throw new ConfigError([`${runFile} not found: start the hub first or pass --bootstrap`]);
        bootstrap = (JSON.parse(readFileSync(runFile, "utf8")) as { multiaddrs: string[] }).multiaddrs;
      }
      const registry = openRegistry(join(dir, REGISTRY_FILE), { heartbeatIntervalMs: loadHubConfig(dir).heartbeatIntervalMs });
      try {
        const { tokenId, secret } = registry.createToken({ cluster, org, region, ttlMs, now: new Date() });
        console.log(encodeJoinToken({ tokenId, secret, caFingerprint: ca.fingerprint, hubPeerId, bootstrap }));
      } finally {
        registry.close();
      }
    },
  },
  "psk create": {
    summary: "write a new pre-shared key file for a private network (give it to every node, out of band)",
    usage: "psk create --out FILE",
    options: { out: { type: "string", description: "where to write the key (mode 0600; refuses to overwrite)" } },
    async run(v) {
      const out = resolve(requireString(v, "out"));
      if (existsSync(out)) throw new ConfigError([`--out: ${out} exists; refusing to overwrite a key`]);
      const { generateKey } = await import("@libp2p/pnet");
      const key = new Uint8Array(95);
      generateKey(key);
      writeSecretFile(out, key);
      console.log(`wrote ${out}`);
    },
  },
  ...agreementCommands,
  ...consensusCommands,
  "audit verify": {
    summary: "check the hub's hash-chained, signed audit log; names the first bad record",
    usage: "audit verify --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v) {
      const dir = dataDir(v);
      const [{ AUDIT_DB }, { verifyAuditLog }, { loadOrCreateNodeKey }] = await Promise.all([runtime(), audit(), nodeKey()]);
      const path = join(dir, AUDIT_DB);
      if (!existsSync(path)) throw new ConfigError([`${path} not found: the hub has not run yet`]);
      const key = await loadOrCreateNodeKey(dir);
      const r = verifyAuditLog(path, { publicKeys: [key.publicKey.raw] });
      if (!r.ok) {
        console.error(`grey-hub: audit log broken at record ${r.seq}: ${r.problem} [ERR_AUDIT_TAMPERED]`);
        return 1;
      }
      console.log(`audit log intact: ${r.count} records, head ${r.head.seq} ${r.head.hash}`);
    },
  },
  "audit export": {
    summary: "print the audit log as JSON lines",
    usage: "audit export --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v) {
      const dir = dataDir(v);
      const [{ AUDIT_DB }, { AuditLog }, { loadOrCreateNodeKey }] = await Promise.all([runtime(), audit(), nodeKey()]);
      const key = await loadOrCreateNodeKey(dir);
      const log = AuditLog.open(join(dir, AUDIT_DB), { signingKey: key.raw.subarray(0, 32), clock: { now: Date.now } });
      try {
        for (const line of log.jsonLines()) process.stdout.write(line.endsWith("\n") ? line : line + "\n");
      } finally {
        log.close();
      }
    },
  },
  "kms migrate": {
    summary: "seal the plaintext CA key and node key with a KMS (envelope files); --kms also saves it in hub.json",
    usage: "kms migrate --data-dir DIR [--kms JSON|FILE]",
    options: { ...dataDirOpt, kms: { type: "string", description: "KMS to use (default: hub.json kms)" } },
    async run(v) {
      const dir = dataDir(v);
      const [{ HUB_CONFIG_FILE, loadHubConfig }, { dataDirKmsConfig, kmsFromConfig, kmsOption, migrateKeyFiles, PURPOSE, setConfigKms }, { NODE_KEY_FILE }] =
        await Promise.all([config(), keystore(), nodeKey()]);
      loadHubConfig(dir); // a valid hub data dir
      const have = dataDirKmsConfig(dir);
      const cfg = v.kms ? kmsOption(v.kms as string) : have;
      if (have && cfg && JSON.stringify(have) !== JSON.stringify(cfg)) throw new ConfigError([`--kms: hub.json already names another KMS (${have.provider}); re-wrapping under a new KMS is not supported`]);
      if (!cfg) throw new ConfigError([`${join(dir, HUB_CONFIG_FILE)} has no "kms": pass --kms`]);
      const files = [{ path: caPaths(dir).caKey, purpose: PURPOSE.caKey }, { path: join(dir, NODE_KEY_FILE), purpose: PURPOSE.nodeKey }];
      for (const line of await migrateKeyFiles(files, kmsFromConfig(cfg))) console.log(line);
      if (v.kms) setConfigKms(join(dir, HUB_CONFIG_FILE), cfg);
    },
  },
  "kms rotate": {
    summary: "rotate the KMS key and re-wrap the CA key and node key envelopes under it; appends a key-rotation audit record (works while the hub runs)",
    usage: "kms rotate --data-dir DIR",
    options: { ...dataDirOpt },
    async run(v) {
      const dir = dataDir(v);
      const [{ HUB_CONFIG_FILE, loadHubConfig }, { dataDirKmsConfig, kmsFromConfig, PURPOSE, rotateKeyFiles }, { loadOrCreateNodeKey, NODE_KEY_FILE }, { AUDIT_DB }, { AuditLog }] =
        await Promise.all([config(), keystore(), nodeKey(), runtime(), audit()]);
      loadHubConfig(dir); // a valid hub data dir
      const cfg = dataDirKmsConfig(dir);
      if (!cfg) throw new ConfigError([`${join(dir, HUB_CONFIG_FILE)} has no "kms": seal the keys first ('kms migrate --kms ...')`]);
      const kms = kmsFromConfig(cfg);
      const files = [{ path: caPaths(dir).caKey, purpose: PURPOSE.caKey }, { path: join(dir, NODE_KEY_FILE), purpose: PURPOSE.nodeKey }];
      const { keyId, lines } = await rotateKeyFiles(files, kms);
      for (const line of lines) console.log(line);
      // The audit log is sqlite WAL: appending beside a running hub is safe (serialised by sqlite).
      const key = await loadOrCreateNodeKey(dir);
      const log = AuditLog.open(join(dir, AUDIT_DB), { signingKey: key.raw.subarray(0, 32), clock: { now: Date.now } });
      try {
        const r = log.append({ kind: "key-rotation", actor: "grey-hub kms rotate", subject: kms.name, details: { keyId, files: files.map((f) => f.purpose) } });
        console.log(`audit record ${r.seq} key-rotation ${keyId}`);
      } finally {
        log.close();
      }
    },
  },
  "attest verify": attestVerifyCommand,
  "task submit": taskSubmitCommand,
  "task get": taskGetCommand,
  plugins: {
    summary: "list the plugins this hub loads",
    usage: "plugins [--data-dir DIR] [--plugin FILE]... [--health]",
    options: {
      "data-dir": { type: "string", description: "also load the plugins listed in DIR/hub.json" },
      ...pluginOpt,
      health: { type: "boolean", description: "probe each connector's platform endpoints" },
    },
    async run(v) {
      await loadExternal(v, v["data-dir"] ? dataDir(v) : undefined);
      const [{ HUB_CONFIG_FILE, loadHubConfig }, { pluginLines }, { hubCatalog, useConnectors }] =
        await Promise.all([config(), import("../plugins/host/loader.ts"), import("./catalog.ts")]);
      if (v["data-dir"] && existsSync(join(dataDir(v), HUB_CONFIG_FILE))) useConnectors(loadHubConfig(dataDir(v)).resolvedConnectors);
      for (const line of await pluginLines(hubCatalog(quiet), { health: v.health === true })) console.log(line);
    },
  },
};

// Exit explicitly: libp2p listeners and timers would otherwise keep a failed `run` alive.
process.exit(await runCli("grey-hub", commands, process.argv.slice(2)));
