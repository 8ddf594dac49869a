/**
 * Test-only: one SoftHSM2 token per test process (Debian package softhsm2), created in a temp
 * directory before the PKCS#11 module is first loaded (SoftHSM reads its tokens at C_Initialize).
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pkcs11Config } from "./pkcs11.ts";

export const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so";
let token: Pkcs11Config | undefined;

/** Bun's process.env does not reach the C environment a native module reads with getenv(): set it there too. */
function setNativeEnv(name: string, value: string): void {
  const { dlopen, FFIType, ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const libc = dlopen("libc.so.6", { setenv: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 } });
  const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");
  const [n, v] = [cstr(name), cstr(value)];
  libc.symbols.setenv(ptr(n), ptr(v), 1);
}

export function softhsmAvailable(): boolean {
  return existsSync(softhsmModule) && Bun.which("softhsm2-util") !== null;
}

export function softhsmToken(): Pkcs11Config {
  if (token) return token;
  const dir = mkdtempSync(join(tmpdir(), "grey-softhsm-"));
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${dir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  setNativeEnv("SOFTHSM2_CONF", conf);
  const r = Bun.spawnSync(["softhsm2-util", "--init-token", "--free", "--label", "grey-test", "--pin", "1234", "--so-pin", "5678"], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`softhsm2-util failed: ${r.stderr.toString()}`);
  token = { module: softhsmModule, tokenLabel: "grey-test", pin: "1234" };
  return token;
}
