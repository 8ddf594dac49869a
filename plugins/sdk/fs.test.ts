import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic, writeSecretFile } from "./fs.ts";

const dir = mkdtempSync(join(tmpdir(), "grey-fs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("writeSecretFile", () => {
  test("writes 0600, creates parent dirs, leaves no temp files", () => {
    const p = join(dir, "a", "b", "key.pem");
    writeSecretFile(p, "secret");
    expect(readFileSync(p, "utf8")).toBe("secret");
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, "a", "b"))).toEqual(["key.pem"]);
  });
  test("replaces an existing (even world-readable) file and tightens its mode", () => {
    const p = join(dir, "old.key");
    writeFileSync(p, "old", { mode: 0o644 });
    writeSecretFile(p, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(p)]).toEqual([1, 2, 3]);
    expect(statSync(p).mode & 0o777).toBe(0o600);
  });
  test("writeFileAtomic uses the given mode", () => {
    const p = join(dir, "pub.pem");
    writeFileAtomic(p, "x".repeat(100_000));
    expect(statSync(p).mode & 0o777).toBe(0o644);
    expect(readFileSync(p, "utf8").length).toBe(100_000);
  });
});
