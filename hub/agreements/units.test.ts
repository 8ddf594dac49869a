import { describe, expect, test } from "bun:test";
import { decimal, formatBytes, parseBurst, parseBytes, parseCpu } from "./units.ts";

const MAX = Number.MAX_SAFE_INTEGER;
const value = (p: { ok: boolean; value?: number; message?: string }) => (p.ok ? p.value : p.message);

describe("units", () => {
  test("cpu as people write it, in millicores", () => {
    expect(value(parseCpu("1000 cores", MAX))).toBe(1_000_000);
    expect(value(parseCpu("1 core", MAX))).toBe(1000);
    expect(value(parseCpu("0.5 cores", MAX))).toBe(500);
    expect(value(parseCpu("500m", MAX))).toBe(500);
    expect(value(parseCpu("250 millicores", MAX))).toBe(250);
    expect(value(parseCpu(4, MAX))).toBe(4000);
    expect(value(parseCpu(1.5, MAX))).toBe(1500);
  });
  test("cpu refusals say why", () => {
    expect(value(parseCpu("0.0005 cores", MAX))).toContain("finer than one millicore");
    expect(value(parseCpu("10 kores", MAX))).toContain('unknown cpu unit "kores"');
    expect(value(parseCpu("0 cores", MAX))).toContain("greater than zero");
    expect(value(parseCpu("-1 cores", MAX))).toContain("cannot read");
    expect(value(parseCpu("2000 cores", 1_000_000))).toContain("largest");
  });
  test("memory: decimal and binary units, exact", () => {
    expect(value(parseBytes("4 TB", MAX))).toBe(4e12);
    expect(value(parseBytes("512 GiB", MAX))).toBe(512 * 2 ** 30);
    expect(value(parseBytes("512Gi", MAX))).toBe(512 * 2 ** 30);
    expect(value(parseBytes("1.5 GB", MAX))).toBe(1.5e9);
    expect(value(parseBytes("0.5 KiB", MAX))).toBe(512);
    expect(value(parseBytes("0.1 B", MAX))).toContain("whole number of bytes");
    expect(value(parseBytes("4", MAX))).toContain("needs a unit");
    expect(value(parseBytes("4 TQ", MAX))).toContain("unknown memory unit");
  });
  test("burst as x, percent or a bare number, in permille", () => {
    expect(value(parseBurst("1.5x", 1000, 10_000))).toBe(1500);
    expect(value(parseBurst("150%", 1000, 10_000))).toBe(1500);
    expect(value(parseBurst(1.5, 1000, 10_000))).toBe(1500);
    expect(value(parseBurst("1x", 1000, 10_000))).toBe(1000);
    expect(value(parseBurst("0.5x", 1000, 10_000))).toContain("from 1x to 10x");
    expect(value(parseBurst("1.2345x", 1000, 10_000))).toContain("finer than 0.001x");
    expect(value(parseBurst("fast", 1000, 10_000))).toContain("cannot read");
  });
  test("formatting is exact", () => {
    expect(decimal(1500n, 3)).toBe("1.5");
    expect(decimal(-5, 2)).toBe("-0.05");
    expect(formatBytes(4e12)).toBe("4 TB");
    expect(formatBytes(512 * 2 ** 30)).toBe("512 GiB");
    expect(formatBytes(7)).toBe("7 B");
  });
});
