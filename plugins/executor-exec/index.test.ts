import { describe, expect, test } from "bun:test";
import { executorCompliance } from "../sdk/compliance/executor.ts";
import { ConfigError } from "../sdk/errors.ts";
import type { CommandTask, ExecLimits } from "../sdk/executor.ts";
import { execExecutor, type ExecExecutorInit } from "./index.ts";

const noop = () => {};
const components = { logger: { debug: noop, info: noop, warn: noop, error: noop } };
const MiB = 1024 * 1024;
const limits: ExecLimits = { timeMs: 5_000, memoryBytes: 256 * MiB, outputBytes: MiB };
const SH = "/bin/sh";
const allowedCommands = ["/bin/cat", "/bin/sleep", "/usr/bin/yes", SH, "/usr/bin/env", "/nonexistent/tool"];
const cmd = (path: string, args: string[] = [], over: Partial<CommandTask> = {}): CommandTask => ({
  id: "t", kind: "command", command: { path, args }, input: new Uint8Array(), limits, ...over,
});
const make = (init: ExecExecutorInit = {}) => execExecutor({ enabled: true, allowedCommands, ...init })(components);

executorCompliance("executor-exec", () => make(), {
  echo: (input, l) => cmd("/bin/cat", [], { input, limits: l }),
  spin: (l) => cmd("/bin/sleep", ["1000"], { limits: l }),
  flood: (l) => cmd("/usr/bin/yes", [], { limits: l }),
  invalid: (l) => cmd("/nonexistent/tool", [], { limits: l }),
});

describe("executor-exec", () => {
  test("disabled by default: every task fails with reason disabled", async () => {
    const ex = execExecutor()(components);
    await ex.start();
    expect(await ex.execute(cmd("/bin/cat"))).toMatchObject({ ok: false, reason: "disabled" });
    await ex.stop();
  });

  test("enabled without an allow-list is a configuration error", () => {
    expect(() => execExecutor({ enabled: true })).toThrow(ConfigError);
    expect(() => execExecutor({ enabled: true, allowedCommands: ["cat"] })).toThrow(/absolute path/);
  });

  test("commands outside the allow-list are refused", async () => {
    const ex = make();
    await ex.start();
    expect(await ex.execute(cmd("/bin/ls"))).toMatchObject({ ok: false, reason: "invalid-module" });
    await ex.stop();
  });

  test("no shell: metacharacters are plain arguments", async () => {
    const ex = make();
    await ex.start();
    const r = await ex.execute(cmd(SH, ["-c", 'printf "%s" "$0"', "a;b|c$(x)"]));
    expect(r.ok && new TextDecoder().decode(r.output)).toBe("a;b|c$(x)");
    await ex.stop();
  });

  test("environment is scrubbed: only configured variables are visible", async () => {
    process.env.GREY_SECRET_FOR_TEST = "leak";
    const ex = make({ env: { ONLY: "this" } });
    await ex.start();
    const r = await ex.execute(cmd("/usr/bin/env"));
    expect(r.ok && new TextDecoder().decode(r.output).trim()).toBe("ONLY=this");
    delete process.env.GREY_SECRET_FOR_TEST;
    await ex.stop();
  });

  test("non-zero exit is a crash carrying the stderr tail", async () => {
    const ex = make();
    await ex.start();
    const r = await ex.execute(cmd(SH, ["-c", "echo boom >&2; exit 3"]));
    expect(r).toMatchObject({ ok: false, reason: "crash", detail: "exit code 3; stderr: boom" });
    await ex.stop();
  });

  test("timeout kills the whole process group, background children included", async () => {
    const ex = make();
    await ex.start();
    const marker = `grey-exec-test-${process.pid}`;
    const started = performance.now();
    const r = await ex.execute(cmd(SH, ["-c", `exec -a ${marker} /bin/sleep 1000 & /bin/sleep 1000`], { limits: { ...limits, timeMs: 200 } }));
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(performance.now() - started).toBeLessThan(2_000);
    await Bun.sleep(50);
    expect(Bun.spawnSync(["pgrep", "-f", marker]).stdout.toString().trim()).toBe("");
    await ex.stop();
  });

  test("memory: the command runs under RLIMIT_AS = limits.memoryBytes", async () => {
    const ex = make();
    await ex.start();
    const r = await ex.execute(cmd("/bin/cat", ["/proc/self/limits"], { limits: { ...limits, memoryBytes: 64 * MiB } }));
    expect(r.ok && new TextDecoder().decode(r.output)).toMatch(new RegExp(`Max address space\\s+${64 * MiB}\\s+${64 * MiB}`));
    const big = await ex.execute(cmd(SH, ["-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo ${#x}"], { limits: { ...limits, memoryBytes: 16 * MiB } }));
    expect(big).toMatchObject({ ok: false });
    await ex.stop();
  });

  test("usage: cpu time, wall time and peak RSS of the command", async () => {
    const ex = make();
    await ex.start();
    const r = await ex.execute(cmd("/bin/cat", [], { input: new Uint8Array(1000) }));
    if (!r.ok) throw new Error(r.detail);
    expect(r.usage.wallMs).toBeGreaterThan(0);
    expect(r.usage.maxRssBytes).toBeGreaterThan(0);
    await ex.stop();
  });
});
