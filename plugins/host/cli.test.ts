import { expect, test } from "bun:test";
import { ConfigError } from "../sdk/errors.ts";
import { parseDuration, parseFlags, runCli } from "./cli.ts";

test("durations as people write them", () => {
  expect(parseDuration("1500", "x")).toBe(1500);
  expect(parseDuration("500ms", "x")).toBe(500);
  expect(parseDuration("90s", "x")).toBe(90_000);
  expect(parseDuration("1.5m", "x")).toBe(90_000);
  expect(parseDuration("1h", "x")).toBe(3_600_000);
  expect(parseDuration("2d", "x")).toBe(172_800_000);
  for (const bad of ["", "1w", "-1s", "abc", "1 h"]) expect(() => parseDuration(bad, "ttl")).toThrow(/--ttl/);
});

test("strict flags: unknown flags and missing values are ConfigErrors", () => {
  const opts = { name: { type: "string" as const } };
  expect(parseFlags(["--name", "x", "pos"], opts)).toEqual({ values: { name: "x" }, positionals: ["pos"] });
  expect(() => parseFlags(["--nope"], opts)).toThrow(ConfigError);
  expect(() => parseFlags(["--name"], opts)).toThrow(ConfigError);
});

test("dispatch: two-word commands, exit codes, one-line errors", async () => {
  const seen: string[] = [];
  const errors: string[] = [];
  const origError = console.error;
  console.error = (m: string) => void errors.push(m);
  try {
    const cmds = {
      "token create": { summary: "s", usage: "u", options: {}, run: async () => void seen.push("tc") },
      fail: { summary: "s", usage: "u", options: {}, run: async () => { throw new Error("boom\nsecond line"); } },
    };
    expect(await runCli("t", cmds, ["token", "create"])).toBe(0);
    expect(seen).toEqual(["tc"]);
    expect(await runCli("t", cmds, ["fail"])).toBe(1);
    expect(await runCli("t", cmds, ["nope"])).toBe(2);
    expect(await runCli("t", cmds, ["token", "create", "--bad"])).toBe(2);
  } finally {
    console.error = origError;
  }
  expect(errors.slice(0, 2)).toEqual(["t: boom", 't: unknown command "nope" (see t --help)']);
  expect(errors[2]).toMatch(/^t: Unknown option '--bad'.* \[ERR_CONFIG\]$/);
});
