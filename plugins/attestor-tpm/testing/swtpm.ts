/**
 * Test harness: a private swtpm (TPM 2.0, libtpms) on a free loopback port pair, state in a temp
 * dir. Missing tools are a hard failure with an install hint — CI must install them, tests never skip.
 */
import { mkdtemp, rm } from "node:fs/promises";
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

/** Start swtpm; TPM2_Startup is left to the client (`--flags not-need-init` skips only CMD_INIT). */
export async function startSwtpm(): Promise<Swtpm> {
  requireTools();
  const dir = await mkdtemp(join(tmpdir(), "grey-swtpm-"));
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
          async stop() {
            proc.kill();
            await proc.exited;
            await rm(dir, { recursive: true, force: true });
          },
        };
      }
      await Bun.sleep(20);
    }
    proc.kill();
    await proc.exited;
    lastError = await new Response(proc.stderr).text();
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`swtpm did not start after ${startAttemptsMax} attempts: ${lastError.trim()}`);
}
