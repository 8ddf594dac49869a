/**
 * Quote latency, side by side in one run against one swtpm:
 *   ours  : Tpm.quote (one TPM2_Quote round trip) and collectQuote (PCR_Read + Quote + self-check)
 *   tools : `tpm2_quote` process (ContextLoad + Quote; tool start-up included), tpm2-tools' own AK
 * usage: bun plugins/attestor-tpm/bench/quote-latency.ts [N=50]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAk, createEk } from "../keys.ts";
import { collectQuote } from "../quote.ts";
import { requireTools, startSwtpm } from "../testing/swtpm.ts";
import { Tpm } from "../tpm.ts";
import { tcpTransport } from "../transport.ts";

const n = Number(process.argv[2] ?? 50);
const pcrs = [0, 1, 2, 3, 7, 10, 16, 23];

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `median ${q(0.5)} ms, p90 ${q(0.9)} ms, min ${s[0]!.toFixed(2)} ms (n=${s.length})`;
}

async function time(f: () => Promise<unknown>, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await f();
    out.push(performance.now() - t0);
  }
  return out;
}

async function tool(args: string[], env: Record<string, string>): Promise<void> {
  const p = Bun.spawn(args, { env: { ...process.env, ...env }, stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`${args[0]} failed: ${await new Response(p.stderr).text()}`);
}

requireTools(["swtpm", "tpm2_quote", "tpm2_createak", "tpm2_flushcontext"]);
const sw = await startSwtpm();
const dir = await mkdtemp(join(tmpdir(), "grey-bench-"));
const tpm = new Tpm({ transport: tcpTransport({ host: sw.host, port: sw.port }) });
try {
  await tpm.ensureStarted();
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  for (const alg of ["ecc", "rsa"] as const) {
    let t0 = performance.now();
    const ek = await createEk(tpm, "rsa");
    const tEk = performance.now() - t0;
    t0 = performance.now();
    const ak = await createAk(tpm, ek, alg);
    const tAk = performance.now() - t0;
    await time(() => tpm.quote(ak.handle, nonce, { hash: "sha256", pcrs }), 3); // warm-up
    const raw = await time(() => tpm.quote(ak.handle, nonce, { hash: "sha256", pcrs }), n);
    const full = await time(() => collectQuote(tpm, { ak, nonce, pcrSelection: { hash: "sha256", pcrs } }), n);
    console.log(`ours  ${alg}: TPM2_Quote             ${stats(raw)}`);
    console.log(`ours  ${alg}: collectQuote (read+quote+check) ${stats(full)}`);
    console.log(`ours  ${alg}: CreatePrimary EK(rsa) ${tEk.toFixed(1)} ms, Create+Load AK ${tAk.toFixed(1)} ms`);
    await tpm.flushContext(ak.handle);
    await tpm.flushContext(ek.handle);
  }
  await tpm.close(); // tpm2-tools open their own connection; swtpm serves one client at a time

  const env = { TPM2TOOLS_TCTI: `swtpm:host=${sw.host},port=${sw.port}` };
  const flush = async () => {
    for (const f of ["-t", "-l", "-s"]) await tool(["tpm2_flushcontext", f], env);
  };
  await tool(["tpm2_createek", "-c", join(dir, "ek.ctx"), "-G", "rsa"], env);
  await flush();
  for (const alg of ["ecc", "rsa"] as const) {
    await tool(["tpm2_createak", "-C", join(dir, "ek.ctx"), "-c", join(dir, `ak_${alg}.ctx`), "-G", alg, "-g", "sha256", "-s", alg === "ecc" ? "ecdsa" : "rsassa"], env);
    await flush();
    const runs: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await tool(["tpm2_quote", "-c", join(dir, `ak_${alg}.ctx`), "-l", `sha256:${pcrs.join(",")}`, "-q", Buffer.from(nonce).toString("hex"), "-m", join(dir, "m"), "-s", join(dir, "s")], env);
      runs.push(performance.now() - t0);
      await flush();
    }
    console.log(`tools ${alg}: tpm2_quote process      ${stats(runs)}`);
  }
} finally {
  await tpm.close();
  await sw.stop();
  await rm(dir, { recursive: true, force: true });
}
