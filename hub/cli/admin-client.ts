/**
 * The operator's client for CLI commands that act on a running hub: finds
 * the API in DIR/run.json and authenticates with DIR/admin/{ca,cert,key}.pem.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, GreyError } from "../../plugins/sdk/errors.ts";

export type AdminCall = (method: string, path: string, body?: unknown, opts?: { contentType?: string; raw?: boolean }) => Promise<Record<string, unknown> & { text?: string }>;

export async function adminClient(dir: string): Promise<AdminCall> {
  const runFile = join(dir, "run.json");
  if (!existsSync(runFile)) throw new ConfigError([`${runFile} not found: is the hub running?`]);
  const base = (JSON.parse(readFileSync(runFile, "utf8")) as { api: string }).api;
  const a = join(dir, "admin");
  const tls = { ca: readFileSync(join(a, "ca.pem"), "utf8"), cert: readFileSync(join(a, "cert.pem"), "utf8"), key: readFileSync(join(a, "key.pem"), "utf8") };
  return async (method, path, body, opts = {}) => {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const contentType = opts.contentType ?? (typeof body === "string" ? "text/plain" : "application/json");
    const res = await fetch(base + path, {
      method, tls, ...(payload !== undefined ? { body: payload, headers: { "content-type": contentType } } : {}),
    } as RequestInit);
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // non-JSON body (CSV invoices)
    }
    if (!res.ok) {
      const e = json.error as { code?: string; message?: string; problems?: { path: string; line: number | null; message: string }[] } | undefined;
      const problems = e?.problems?.map((p) => `\n  line ${p.line ?? "?"}: ${p.path}: ${p.message}`).join("") ?? "";
      throw new GreyError(e?.code ?? `HTTP_${res.status}`, (e?.message ?? `HTTP ${res.status}`) + problems);
    }
    return opts.raw ? { ...json, text } : json;
  };
}
