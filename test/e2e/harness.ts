/**
 * Drives the compiled binaries as separate processes on loopback. Every
 * process started here is tracked and killed by `stopAll()` (call it in
 * afterAll: `bun test` does not reap children).
 */
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const root = resolve(import.meta.dir, "../..");
const arch = process.arch === "arm64" ? "arm64" : "x64";
export const hubBin = join(root, "dist", `grey-hub-linux-${arch}`);
export const agentBin = join(root, "dist", `grey-agent-linux-${arch}`);

export function requireBinaries(): void {
  for (const b of [hubBin, agentBin]) {
    if (!existsSync(b)) throw new Error(`${b} is missing: run 'bun run build' (npm test does it)`);
  }
}

const live = new Set<Subprocess>();
const dirs: string[] = [];

export function tempDir(prefix = "grey-e2e-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

export async function stopAll(): Promise<void> {
  for (const p of live) p.kill("SIGTERM");
  await Promise.race([Promise.allSettled([...live].map((p) => p.exited)), Bun.sleep(4000)]);
  for (const p of live) p.kill("SIGKILL");
  live.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function run(bin: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  const p = Bun.spawn([bin, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  live.add(p);
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, exitCode] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  clearTimeout(timer);
  live.delete(p);
  return { exitCode, stdout, stderr };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

export interface HubRun {
  peerId: string;
  multiaddrs: string[];
  api: string;
}

export interface Daemon {
  proc: Subprocess;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

function daemon(bin: string, args: string[], quiet: boolean): Daemon {
  let log = "";
  const proc = Bun.spawn([bin, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  live.add(proc);
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const text = dec.decode(chunk);
      log += text;
      if (!quiet && process.env.GREY_E2E_VERBOSE) process.stderr.write(text);
      if (log.length > 2_000_000) log = log.slice(-1_000_000);
    }
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  return {
    proc,
    log: () => log,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      proc.kill(signal);
      const code = await Promise.race([proc.exited, Bun.sleep(5000).then(() => -1)]);
      if (code === -1) proc.kill("SIGKILL");
      live.delete(proc);
      return code;
    },
  };
}

export async function initHub(dir: string, extra: string[] = []): Promise<Run> {
  const r = await run(hubBin, ["init", "--data-dir", dir, ...extra]);
  if (r.exitCode !== 0) throw new Error(`hub init failed: ${r.stderr}`);
  return r;
}

export async function startHub(dir: string, extra: string[] = [], quiet = false): Promise<Daemon & { info: HubRun }> {
  rmSync(join(dir, "run.json"), { force: true });
  const d = daemon(hubBin, ["run", "--data-dir", dir, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", ...extra], quiet);
  const info = await waitFor("hub run.json", () => {
    if (d.proc.exitCode !== null) throw new Error(`hub exited ${d.proc.exitCode}: ${d.log()}`);
    const p = join(dir, "run.json");
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as HubRun) : undefined;
  }, 30_000);
  return Object.assign(d, { info });
}

export async function createToken(hubDir: string, cluster: string, org: string, region: string, extra: string[] = []): Promise<string> {
  const r = await run(hubBin, ["token", "create", "--data-dir", hubDir, "--cluster", cluster, "--org", org, "--region", region, ...extra]);
  if (r.exitCode !== 0) throw new Error(`token create failed: ${r.stderr}`);
  return r.stdout.trim();
}

export function agentStatus(dir: string): AgentStatus | undefined {
  const p = join(dir, "status.json");
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as AgentStatus;
  } catch {
    return undefined;
  }
}

export interface AgentStatus {
  pid: number;
  peerId: string;
  multiaddrs: string[];
  clusterId: string;
  hub: { peerId: string; reachable: boolean; lastAckAt: string | null };
  heartbeatsSent: number;
  renewals: number;
  certNotAfter: string;
  peers: { clusterId: string; peerId: string }[];
}

export function startAgent(dir: string, extra: string[] = [], quiet = false): Daemon {
  return daemon(agentBin, ["run", "--data-dir", dir, "--heartbeat-interval", "500ms", ...extra], quiet);
}

export interface Creds {
  ca: string;
  cert?: string;
  key?: string;
}

export function adminCreds(hubDir: string): Creds {
  const a = join(hubDir, "admin");
  return { ca: readFileSync(join(a, "ca.pem"), "utf8"), cert: readFileSync(join(a, "cert.pem"), "utf8"), key: readFileSync(join(a, "key.pem"), "utf8") };
}

/** HTTPS request to the hub API with (or without) a client certificate. */
export async function api(base: string, path: string, creds: Creds, post?: unknown): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(base + path, {
    tls: { ca: creds.ca, ...(creds.cert ? { cert: creds.cert } : {}), ...(creds.key ? { key: creds.key } : {}) },
    ...(post !== undefined ? { method: "POST", body: JSON.stringify(post), headers: { "content-type": "application/json" } } : {}),
  } as RequestInit);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (e.g. /metrics)
  }
  return { status: res.status, body, text };
}

/**
 * `n` TCP ports free on 127.0.0.1 right now, for tests that must know a node's
 * address before it starts (Raft peers). Picked below Linux's ephemeral range
 * (32768+) so outgoing connections cannot take them meanwhile, and each is
 * checked by binding it.
 */
export async function freePorts(n: number): Promise<number[]> {
  const { createServer } = await import("node:net");
  const bindable = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
  const ports: number[] = [];
  for (let tries = 0; ports.length < n && tries < 1000; tries++) {
    const p = 20_000 + Math.floor(Math.random() * 12_000);
    if (!ports.includes(p) && (await bindable(p))) ports.push(p);
  }
  if (ports.length < n) throw new Error(`could not find ${n} free ports`);
  return ports;
}
