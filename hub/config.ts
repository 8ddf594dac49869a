/**
 * Hub configuration in two shapes: the user-facing file DIR/hub.json (written
 * by `init`, editable) and flags, resolved into one validated HubConfig that
 * reports every problem at once with its path.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConnectorsShape, HealthShape, resolveConnectors, type ResolvedConnectors } from "../plugins/connector-config/config.ts";
import { parseConfigText, type ConfigProblem } from "../plugins/host/config-file.ts";
import { ConfigError } from "../plugins/sdk/errors.ts";
import { SessionsShape } from "../plugins/sdk/session.ts";
import { writeFileAtomic } from "../plugins/sdk/fs.ts";
import { KmsConfigSchema } from "../plugins/host/keystore.ts";
import { heartbeatIntervalMsDefault, memberCertTtlMsDefault, memberCertTtlMsMin } from "../plugins/sdk/limits.ts";
import { fedlogSnapshotEntriesDefault } from "./fedlog/constants.ts";

export const HUB_CONFIG_FILE = "hub.json";

const HubFile = z.object({
  org: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  /** Evidence formats this hub accepts at join and renewal; policyFile (relative to the data dir) replaces `allow` with per-boundary rules. */
  attestation: z.object({ allow: z.array(z.string().min(1)).min(1), policyFile: z.string().min(1).optional() }),
  memberCertTtlMs: z.number().int().min(memberCertTtlMsMin).default(memberCertTtlMsDefault),
  heartbeatIntervalMs: z.number().int().min(100).max(600_000).default(heartbeatIntervalMsDefault),
  listen: z.array(z.string()).default(["/ip4/127.0.0.1/tcp/0"]),
  api: z.string().default("127.0.0.1:8443"),
  bootstrap: z.array(z.string()).default([]),
  pskFile: z.string().optional(),
  /** Extra rate card files (*.yaml) beside the built-in ones. */
  rateCardsDir: z.string().optional(),
  /** Governance policy file (operations per trust boundary, org/peer allow-lists). Default: DEFAULT_GOVERNANCE. */
  governanceFile: z.string().optional(),
  /** Per-peer rate limit on the protocol streams (join, renew, heartbeat). */
  streamRateLimit: z.object({ perSecond: z.number().positive().max(1e6), burst: z.number().int().positive().max(1e6) }).default({ perSecond: 20, burst: 40 }),
  /** Per-client API rate limit (token bucket). */
  apiRateLimit: z.object({ perSecond: z.number().positive().max(1e6), burst: z.number().int().positive().max(1e6) }).default({ perSecond: 50, burst: 100 }),
  /**
   * What each provider organisation offers to OTHER organisations' tasks in total
   * (cpu like "8 cores"/"500m", memory like "16 GiB"), checked by the scheduler
   * with every agreement's admission (hub/tasks/sharing.ts). An org or resource
   * left out is unbounded: only the agreements' limits apply.
   */
  sharedCapacity: z.record(
    z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
    z.strictObject({ cpu: z.union([z.string(), z.number()]).optional(), memory: z.union([z.string(), z.number()]).optional() }),
  ).default({}),
  /** Envelope encryption of the CA key and node key at rest (plugins/host/keystore.ts). Absent: plaintext key files. */
  kms: KmsConfigSchema.optional(),
  /** The federation log (hub/fedlog): the other hubs of the Raft group, as multiaddrs ending in /p2p/PEER_ID. Absent or empty: no consensus. */
  consensus: z.object({
    peers: z.array(z.string().min(1).max(512)).max(15),
    tickMs: z.number().int().min(1).max(10_000).default(100),
    electionTicks: z.number().int().min(2).max(1000).default(10),
    /**
     * Snapshot the federation log's state (members, agreements, task state...) and drop the entries it covers
     * once this many were applied since the last snapshot. A hub that lags or joins late installs the snapshot.
     */
    snapshotEntries: z.number().int().min(2).max(10_000_000).default(fedlogSnapshotEntriesDefault),
    /** Rotate the leader among the hubs on this period (rotating federation leader). Absent: no rotation. */
    rotateEveryMs: z.number().int().min(1000).optional(),
    /** This hub joins a running group (`grey-hub consensus add-peer` on it): it starts empty, never as a founder. */
    join: z.boolean().default(false),
    /**
     * Which groups this hub runs (ARCHITECTURE.md, "Consensus and the federation log"):
     * "flat" — one federation log of `peers` (full mesh / hub-and-spoke);
     * "region" — one log for this hub's `region` (its `peers` are the region's other hubs);
     * "global" — the region log, plus the global log whose voters are the region leaders.
     */
    level: z.enum(["flat", "region", "global"]).default("flat"),
    /** This hub's region (levels region and global): its group is "region:REGION". */
    region: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/).optional(),
    /** Level global: the global group. */
    global: z.strictObject({
      /** Every other hub that may sit in or observe the global group (MULTIADDR/p2p/PEER_ID). */
      peers: z.array(z.string().min(1).max(512)).max(63).default([]),
      /** Founding voters, one hub per region, the same list on every hub (peer ids or multiaddrs). */
      founders: z.array(z.string().min(1).max(512)).min(1).max(15),
      /** Hubs that hold no seat follow the global log as learners, so they serve its state (agreements). Default true. */
      observers: z.boolean().default(true),
    }).optional(),
  }).superRefine((c, ctx) => checkConsensusLevel(c, (path, message) => ctx.addIssue({ code: "custom", path: path.slice(1), message }))).optional(),
  /** Cloud/on-prem connectors: allow-lists and endpoints (plugins/connector-config/config.ts). */
  connectors: ConnectorsShape,
  /** Attested sessions (hub ↔ agents): hybrid ML-KEM-768 policy, default "offer". */
  sessions: SessionsShape,
  /** Connector-health probes (configured connectors, verified peers): grey_connector_up, grey_peer_* on /metrics. */
  health: HealthShape,
});
export type HubConfig = z.infer<typeof HubFile> & { dataDir: string; resolvedConnectors: ResolvedConnectors };

/** One line per problem, with the file's line when known: "hub.json:12: connectors.aws.accounts.0: ...". */
export const configProblemLines = (file: string, problems: readonly ConfigProblem[]) =>
  new ConfigError(problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ""}: ${p.path || "(top)"}: ${p.message}`));

export function writeHubConfig(dataDir: string, cfg: z.input<typeof HubFile>): void {
  writeFileAtomic(join(dataDir, HUB_CONFIG_FILE), JSON.stringify(HubFile.parse(cfg), null, 2) + "\n");
}

export function loadHubConfig(dataDir: string, overrides: Partial<z.input<typeof HubFile>> = {}): HubConfig {
  const path = join(dataDir, HUB_CONFIG_FILE);
  if (!existsSync(path)) throw new ConfigError([`${path} not found: run 'grey-hub init --data-dir ${dataDir}' first`]);
  // Every problem of the file at once (schema, then the files connectors name), with its line.
  const parsed = parseConfigText(readFileSync(path, "utf8"), HUB_CONFIG_FILE, HubFile, configProblemLines);
  const resolvedConnectors = resolveConnectors(parsed.data.connectors, dataDir, parsed.problem);
  parsed.finish();
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const r = HubFile.safeParse({ ...parsed.data, ...defined });
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${HUB_CONFIG_FILE}: ${i.path.join(".")}: ${i.message}`));
  return { ...r.data, dataDir, resolvedConnectors };
}

/** What the consensus level needs besides the schema (every problem reported with the others). */
export function checkConsensusLevel(c: { level: string; region?: string | undefined; global?: unknown }, problem: (path: (string | number)[], message: string) => void): void {
  if (c.level !== "flat" && !c.region) problem(["consensus", "region"], `required with level "${c.level}"`);
  if (c.level === "global" && !c.global) problem(["consensus", "global"], 'required with level "global" (founders: one hub per region)');
  if (c.level !== "global" && c.global) problem(["consensus", "global"], `only with level "global" (level is "${c.level}")`);
  if (c.level === "flat" && c.region) problem(["consensus", "region"], 'only with level "region" or "global"');
}

/** `--raft-peer` flags replace hub.json's consensus.peers (keeping its timing). */
export function withRaftPeers(cfg: HubConfig, peers: string[] | undefined): HubConfig {
  if (!peers?.length) return cfg;
  return { ...cfg, consensus: { tickMs: 100, electionTicks: 10, snapshotEntries: fedlogSnapshotEntriesDefault, join: false, level: "flat", ...cfg.consensus, peers } };
}

/** "HOST:PORT" → parts; IPv6 as "[::1]:8443". */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError([`--${flag}: "${text}" is not HOST:PORT`]);
  return { host: (m[1] ?? m[2])!, port };
}
