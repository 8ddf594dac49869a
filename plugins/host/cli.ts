/**
 * Shared command-line plumbing for both binaries: strict flag parsing,
 * --help/--version, and one clear line plus a non-zero exit on error.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { ConfigError, GreyError } from "../sdk/errors.ts";

declare const GREY_VERSION: string;
declare const GREY_COMMIT: string;

export const version: string = typeof GREY_VERSION !== "undefined" ? GREY_VERSION : "0.0.0-source";
export const commit: string = typeof GREY_COMMIT !== "undefined" ? GREY_COMMIT : "source";

export function versionLine(program: string): string {
  return `${program} ${version} (commit ${commit}, bun ${Bun.version}, ${process.platform}-${process.arch})`;
}

export interface OptionSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  /** Shown by --help. */
  description?: string;
}
export type Options = Record<string, OptionSpec>;

export interface Command {
  summary: string;
  usage: string;
  options: Options;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number | void>;
}

/** Parse flags strictly; unknown flags and missing values become a ConfigError. */
export function parseFlags(args: string[], options: Options): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const specs: NonNullable<ParseArgsConfig["options"]> = { help: { type: "boolean", short: "h" } };
    for (const [k, o] of Object.entries(options)) specs[k] = { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
    const r = parseArgs({ args, options: specs, strict: true, allowPositionals: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (err) {
    throw new ConfigError([(err as Error).message.split("\n")[0]!.replace(/^TypeError: /, "")]);
  }
}

export function requireString(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== "string" || v === "") throw new ConfigError([`--${name} is required`]);
  return v;
}

/** Parse "90s", "15m", "1h", "2d" or plain milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new ConfigError([`--${flag}: "${text}" is not a duration (e.g. 90s, 15m, 1h)`]);
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[(m[2] ?? "ms") as "ms"];
  return Math.round(n * unit);
}

function helpText(program: string, commands: Record<string, Command>): string {
  const lines = [`${program} ${version}`, "", "Commands:"];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(14)} ${c.summary}`);
  lines.push("", `Run '${program} COMMAND --help' for a command's flags. '${program} --version' prints version and commit.`);
  return lines.join("\n");
}

function commandHelp(program: string, name: string, c: Command): string {
  const lines = [`usage: ${program} ${c.usage}`, "", c.summary, ""];
  for (const [flag, o] of Object.entries(c.options)) {
    const desc = (o as { description?: string }).description ?? "";
    lines.push(`  --${flag}${o.type === "string" ? " VALUE" : ""}`.padEnd(28) + desc);
  }
  lines.push(`  --help`.padEnd(28) + "show this help");
  return lines.join("\n");
}

/** Dispatch argv to a command. Returns the exit code. */
export async function runCli(program: string, commands: Record<string, Command>, argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "--version" || first === "-v" || first === "version") {
    console.log(versionLine(program));
    return 0;
  }
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    console.log(helpText(program, commands));
    return first === undefined ? 2 : 0;
  }
  // two-word commands ("token create")
  let name = first;
  let args = rest;
  if (!commands[name] && rest[0] && commands[`${first} ${rest[0]}`]) {
    name = `${first} ${rest[0]}`;
    args = rest.slice(1);
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`${program}: unknown command "${first}" (see ${program} --help)`);
    return 2;
  }
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(commandHelp(program, name, cmd));
      return 0;
    }
    const { values, positionals } = parseFlags(args, cmd.options);
    return (await cmd.run(values, positionals)) ?? 0;
  } catch (err) {
    console.error(`${program}: ${describeError(err)}`);
    return err instanceof ConfigError ? 2 : 1;
  }
}

export function describeError(err: unknown): string {
  if (err instanceof GreyError) return `${err.message} [${err.code}]`;
  if (err instanceof Error) return err.message.split("\n")[0]!;
  return String(err);
}
