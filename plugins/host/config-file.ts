/**
 * Operator-written config files (YAML or JSON): parse, validate with a zod
 * schema, and report EVERY problem at once with its field path and 1-based
 * line, so an operator fixes a file in one pass.
 */
import { isNode, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { GreyError } from "../sdk/errors.ts";

export type ConfigProblem = { path: string; line: number | null; message: string };

/** Problems reported per file at most; the rest are summarised. */
export const configProblemsMax = 50;

export class ConfigFileError extends GreyError {
  constructor(readonly file: string, readonly problems: readonly ConfigProblem[], code = "ERR_CONFIG_FILE") {
    super(code, problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ""}: ${p.path || "(top)"}: ${p.message}`).join("\n"));
  }
}

export interface ParsedConfig<T> {
  data: T;
  /** Record a semantic problem found after schema validation. */
  problem(path: (string | number)[], message: string): void;
  /** Throw ConfigFileError if any problem was recorded. */
  finish(): void;
}

function lineOf(doc: Document, lines: LineCounter, path: (string | number)[]): number | null {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return null;
}

export type ConfigErrorFactory = (file: string, problems: ConfigProblem[]) => Error;

/**
 * Parse `text` (YAML or JSON) and validate it with `schema`. Problems are
 * thrown as ConfigFileError with `code`, or built by `makeError`.
 */
export function parseConfigText<S extends z.ZodType>(text: string, file: string, schema: S, code?: string | ConfigErrorFactory): ParsedConfig<z.infer<S>> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problems: ConfigProblem[] = [];
  const fail = () => {
    const first = problems.slice(0, configProblemsMax);
    throw typeof code === "function" ? code(file, first) : new ConfigFileError(file, first, code);
  };
  for (const e of doc.errors) problems.push({ path: "", line: lines.linePos(e.pos[0]).line, message: e.message.split("\n")[0]! });
  if (problems.length) fail();
  // Integer map keys become strings, as in JSON.
  const raw = JSON.parse(JSON.stringify(doc.toJS({ maxAliasCount: 10 }) ?? null));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    for (const i of parsed.error.issues.slice(0, configProblemsMax)) {
      const path = i.path.map((p) => (typeof p === "symbol" ? String(p) : p));
      const keys = i.code === "unrecognized_keys" ? ` (${(i as { keys?: string[] }).keys?.join(", ")})` : "";
      problems.push({ path: path.join("."), line: lineOf(doc, lines, path), message: i.message + keys });
    }
    fail();
  }
  return {
    data: parsed.data as z.infer<S>,
    problem: (path, message) => void problems.push({ path: path.join("."), line: lineOf(doc, lines, path), message }),
    finish: () => {
      if (problems.length) fail();
    },
  };
}
