import { describe, expect, test } from "bun:test";
import { capModule } from "./module.ts";
import { fixtures } from "./testing/wasm-builder.ts";
import { runWasi } from "./wasi.ts";

const MiB = 1024 * 1024;
const limits = { memoryBytes: 16 * MiB, outputBytes: 64 * 1024 };
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe("runWasi (in process; never given a non-terminating module)", () => {
  test("echo copies stdin to stdout, across several reads", () => {
    const input = enc("x".repeat(10_000) + "end");
    const r = runWasi(fixtures.echo(), input, limits);
    expect(r.ok && dec(r.output)).toBe(dec(input));
  });
  test("hello writes to stdout from a data segment", () => {
    const r = runWasi(fixtures.hello(), new Uint8Array(), limits);
    expect(r.ok && dec(r.output)).toBe("hello");
  });
  test("memory growth stops at the cap and the trap is reported as memory", () => {
    const r = runWasi(fixtures.grow(), new Uint8Array(), { ...limits, memoryBytes: 8 * MiB });
    expect(r).toMatchObject({ ok: false, reason: "memory" });
  });
  test("initial memory over the cap is refused before running", () => {
    expect(runWasi(fixtures.bigMemory(1000), new Uint8Array(), limits)).toMatchObject({ ok: false, reason: "memory" });
  });
  test("output beyond the cap stops the module", () => {
    expect(runWasi(fixtures.flood(), new Uint8Array(), limits)).toMatchObject({ ok: false, reason: "output-too-large" });
  });
  test("unreachable is a crash", () => {
    expect(runWasi(fixtures.trap(), new Uint8Array(), limits)).toMatchObject({ ok: false, reason: "crash" });
  });
  test("stack overflow is a crash", () => {
    expect(runWasi(fixtures.recurse(), new Uint8Array(), limits)).toMatchObject({ ok: false, reason: "crash" });
  });
  test("proc_exit(0) is success, non-zero is a crash carrying stderr", () => {
    expect(runWasi(fixtures.exit(0), new Uint8Array(), limits)).toMatchObject({ ok: true });
    const r = runWasi(fixtures.exit(3), new Uint8Array(), limits);
    expect(r).toMatchObject({ ok: false, reason: "crash" });
    expect(!r.ok && r.detail).toContain("exit code 3; stderr: oops");
  });
  test.each([["garbage", fixtures.garbage()], ["noStart", fixtures.noStart()], ["foreignImport", fixtures.foreignImport()], ["empty", new Uint8Array()], ["truncated", fixtures.echo().subarray(0, 30)]])(
    "%s is an invalid module",
    (_name, bytes) => {
      expect(runWasi(bytes, new Uint8Array(), limits)).toMatchObject({ ok: false, reason: "invalid-module" });
    },
  );
});

describe("capModule", () => {
  test("rewrites the memory maximum and keeps everything else", () => {
    const r = capModule(fixtures.hello(), 4 * MiB, 100);
    if (!r.ok) throw new Error(r.detail);
    const mem = new WebAssembly.Instance(new WebAssembly.Module(r.module), {
      wasi_snapshot_preview1: { fd_read: () => 0, fd_write: () => 0, proc_exit: () => {} },
    }).exports.memory as WebAssembly.Memory;
    expect(() => mem.grow(64)).toThrow();
    expect(mem.grow(63)).toBe(1);
  });
  test("lowers a declared maximum above the cap, keeps one below", () => {
    const m = new WebAssembly.Module(capModule(fixtures.bigMemory(1), MiB, 100).ok ? (capModule(fixtures.bigMemory(1), MiB, 100) as { module: Uint8Array }).module : new Uint8Array());
    expect(WebAssembly.Module.exports(m).some((e) => e.kind === "memory")).toBe(true);
  });
  test("refuses memory64 limits and sections that overrun", () => {
    const bytes = fixtures.hello();
    const memSection = bytes.indexOf(0x05, 8);
    const patched = bytes.slice();
    patched[memSection + 3] = 0x04;
    expect(capModule(patched, MiB, 100)).toMatchObject({ ok: false, reason: "invalid-module" });
    expect(capModule(bytes.subarray(0, bytes.length - 2), MiB, 100)).toMatchObject({ ok: false, reason: "invalid-module" });
  });
});
