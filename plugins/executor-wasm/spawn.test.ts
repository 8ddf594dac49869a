import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASM_CHILD_FLAG } from "./constants.ts";
import { maybeRunWasmChild } from "./child.ts";
import { RunnerChild } from "./runner.ts";
import { isCompiledBinary, runnerCommand } from "./spawn.ts";

describe("runner command", () => {
  test("from source: bun + runner-main.ts + flag", () => {
    expect(isCompiledBinary()).toBe(false);
    expect(runnerCommand({ prlimitPath: null })).toEqual([process.execPath, join(import.meta.dir, "runner-main.ts"), WASM_CHILD_FLAG]);
  });

  test("compiled: the binary itself + flag", () => {
    expect(isCompiledBinary("/$bunfs/root/grey-agent")).toBe(true);
    expect(isCompiledBinary("B:\\~BUN\\root\\grey-agent.exe")).toBe(true);
    expect(runnerCommand({ compiled: true, prlimitPath: null })).toEqual([process.execPath, WASM_CHILD_FLAG]);
  });

  test("wrapped in prlimit --as when util-linux is present, plain when it is not", () => {
    expect(runnerCommand({ compiled: true, prlimitPath: "/usr/bin/prlimit", addressSpaceBytes: 123 * 1024 * 1024 })).toEqual([
      "/usr/bin/prlimit", `--as=${123 * 1024 * 1024}`, process.execPath, WASM_CHILD_FLAG,
    ]);
    expect(runnerCommand({ compiled: true, prlimitPath: "/nonexistent/prlimit", addressSpaceBytes: 1 })).toEqual([process.execPath, WASM_CHILD_FLAG]);
  });

  test("maybeRunWasmChild ignores ordinary command lines", async () => {
    expect(await maybeRunWasmChild(["bun", "/x/main.ts", "run", "--data-dir", WASM_CHILD_FLAG])).toBe(false);
    expect(await maybeRunWasmChild(["bun", "/x/main.ts"])).toBe(false);
  });

  test("the child really runs under the RLIMIT_AS backstop", async () => {
    const bytes = 3 * 1024 * 1024 * 1024;
    const child = new RunnerChild(runnerCommand({ prlimitPath: "/usr/bin/prlimit", addressSpaceBytes: bytes }), 10_000);
    expect(await child.ready).toBe(true);
    const limits = readFileSync(`/proc/${child.pid}/limits`, "utf8");
    expect(limits).toMatch(new RegExp(`Max address space\\s+${bytes}\\s+${bytes}`));
    child.kill();
    await child.exited;
  });
});

describe("compiled binary", () => {
  const dir = mkdtempSync(join(tmpdir(), "grey-wasm-compiled-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a `bun build --compile` host re-executes itself as the runner", async () => {
    const out = join(dir, "host");
    const build = Bun.spawnSync([
      process.execPath, "build", "--compile", "--minify", "--bytecode", "--format=esm",
      "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
      join(import.meta.dir, "testing", "compiled-host.ts"), `--outfile=${out}`,
    ], { stdout: "pipe", stderr: "pipe" });
    expect(build.exitCode, build.stderr.toString()).toBe(0);

    const run = Bun.spawnSync([out], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    expect(run.exitCode, run.stderr.toString()).toBe(0);
    const r = JSON.parse(run.stdout.toString());
    expect(r.command).toEqual([out, WASM_CHILD_FLAG]);
    expect(r.echo).toEqual({ ok: true, output: "from the compiled host" });
    expect(r.spin).toEqual({ ok: false, reason: "timeout" });
    expect(r.grow).toEqual({ ok: false, reason: "memory" });
    expect(r.after).toEqual({ ok: true, output: "hello" });

    const direct = Bun.spawnSync([out, WASM_CHILD_FLAG], { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
    expect(direct.exitCode).toBe(2);
    expect(direct.stderr.toString()).toContain("internal");
  }, 30_000);
});

describe("orphaned runner", () => {
  test("a runner spinning in WASM dies when its parent is SIGKILLed", async () => {
    const parent = Bun.spawn([process.execPath, join(import.meta.dir, "testing", "orphan-parent.ts")], { stdout: "pipe", stderr: "inherit" });
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    const runnerPid = Number(new TextDecoder().decode(value).trim().split("\n")[0]);
    expect(runnerPid).toBeGreaterThan(0);
    expect(() => process.kill(runnerPid, 0)).not.toThrow();
    parent.kill("SIGKILL");
    await parent.exited;
    const deadline = performance.now() + 3_000;
    let alive = true;
    while (alive && performance.now() < deadline) {
      await Bun.sleep(50);
      try {
        process.kill(runnerPid, 0);
      } catch {
        alive = false;
      }
    }
    if (alive) process.kill(runnerPid, "SIGKILL");
    expect(alive).toBe(false);
  });
});
