/**
 * Test harness: a private swtpm (TPM 2.0, libtpms) on a free loopback port pair, state in a temp
 * dir. Missing tools are a hard failure with an install hint — CI must install them, tests never skip.
 */
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const requiredTools = ["swtpm", "tpm2_checkquote"] as const;
const aptHint = "install them with: apt-get install -y swtpm swtpm-tools tpm2-tools";

/** Throw a clear error when a required external tool is missing. */
export function requireTools(tools: readonly string[] = requiredTools): void {
  const missing = tools.filter((t) => !Bun.which(t));
  if (missing.length) throw new Error(`required TPM test tools missing: ${missing.join(", ")} — ${aptHint}`);
}

export interface Swtpm {
  readonly host: string;
  readonly port: number;
  readonly ctrlPort: number;
  readonly dir: string;
  stop(): Promise<void>;
}

const startAttemptsMax = 5;
const readyTimeoutMs = 5_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once("error", () => resolve(false));
    s.connect(port, "127.0.0.1", () => {
      s.destroy();
      resolve(true);
    });
  });
}

export interface SwtpmOptions {
  /**
   * Manufacture the TPM first with `swtpm_setup --create-ek-cert`: an RSA-2048 EK (TCG default
   * template) whose certificate, signed by a fresh swtpm_localca CA, is stored in NV index 0x01c00002.
   * The CA's certificates are then in `Swtpm.ekCa` (issuer first, then root; PEM).
   */
  ekCert?: boolean;
}

export interface SwtpmWithCa extends Swtpm {
  /** PEM of the local CA that signed the EK certificate (issuer, then root). */
  readonly ekCa?: string;
}

const setupTimeoutMs = 60_000;

/**
 * swtpm_setup with a private swtpm_localca configuration (XDG_CONFIG_HOME in the temp dir):
 * nothing outside `dir` is read or written.
 */
async function manufacture(dir: string): Promise<string> {
  requireTools(["swtpm_setup", "swtpm_localca"]);
  const cfg = join(dir, "cfg");
  const env = { ...process.env, XDG_CONFIG_HOME: cfg, HOME: dir };
  const runTool = async (argv: string[]) => {
    const p = Bun.spawn(argv, { env, stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill(), setupTimeoutMs);
    const [out, err, code] = [await new Response(p.stdout).text(), await new Response(p.stderr).text(), await p.exited];
    clearTimeout(timer);
    if (code !== 0) throw new Error(`${argv[0]} failed (${code}): ${(err || out).trim().slice(0, 2000)}`);
  };
  await runTool(["/usr/share/swtpm/swtpm-create-user-config-files", "--overwrite", "--root"]);
  const state = join(dir, "state");
  await mkdir(state, { recursive: true });
  await runTool(["swtpm_setup", "--tpm2", "--tpmstate", state, "--create-ek-cert", "--config", join(cfg, "swtpm_setup.conf"), "--overwrite"]);
  const ca = join(cfg, "var", "lib", "swtpm-localca");
  return (await readFile(join(ca, "issuercert.pem"), "utf8")) + (await readFile(join(ca, "swtpm-localca-rootca-cert.pem"), "utf8"));
}

/** Start swtpm; TPM2_Startup is left to the client (`--flags not-need-init` skips only CMD_INIT). */
export async function startSwtpm(options: SwtpmOptions = {}): Promise<SwtpmWithCa> {
  requireTools();
  const root = await mkdtemp(join(tmpdir(), "grey-swtpm-"));
  const ekCa = options.ekCert ? await manufacture(root).catch(async (err) => {
    await rm(root, { recursive: true, force: true });
    throw err;
  }) : undefined;
  const dir = options.ekCert ? join(root, "state") : root;
  let lastError = "";
  for (let attempt = 0; attempt < startAttemptsMax; attempt++) {
    const port = await freePort();
    const ctrlPort = port + 1;
    if (ctrlPort > 65535) continue;
    const proc = Bun.spawn(
      [
        "swtpm", "socket", "--tpm2",
        "--tpmstate", `dir=${dir}`,
        "--server", `type=tcp,port=${port},bindaddr=127.0.0.1`,
        "--ctrl", `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
        "--flags", "not-need-init",
        "--log", `file=${join(dir, "swtpm.log")},level=1`,
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    const deadline = Date.now() + readyTimeoutMs;
    while (Date.now() < deadline && proc.exitCode === null) {
      if (await canConnect(port)) {
        return {
          host: "127.0.0.1",
          port,
          ctrlPort,
          dir,
          ...(ekCa ? { ekCa } : {}),
          async stop() {
            proc.kill();
            await proc.exited;
            await rm(root, { recursive: true, force: true });
          },
        };
      }
      await Bun.sleep(20);
    }
    proc.kill();
    await proc.exited;
    lastError = await new Response(proc.stderr).text();
  }
  await rm(root, { recursive: true, force: true });
  throw new Error(`swtpm did not start after ${startAttemptsMax} attempts: ${lastError.trim()}`);
}
