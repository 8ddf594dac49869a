/**
 * The catalog: the host's view of its plugins. It checks each plugin's
 * metadata and cardinality at load, and never trusts plugin output: results
 * are validated before the core sees them, and a throwing plugin becomes a
 * typed error instead of a crash.
 */
import { z } from "zod";
import type { AttestationResult, Attestor, EvidenceBinding } from "../sdk/attestor.ts";
import { AttestationError, ConfigError, PluginError } from "../sdk/errors.ts";
import { PLUGIN_API_VERSION, PLUGIN_CARDINALITY, type PluginKind, type PluginMeta } from "../sdk/plugin.ts";
import { Evidence } from "../sdk/wire.ts";

const Claim = z.union([z.string().max(4096), z.number(), z.boolean()]);
const AttestationResultSchema = z
  .object({
    format: z.string().min(1).max(64),
    ok: z.boolean(),
    checks: z.array(z.object({ name: z.string().min(1).max(64), ok: z.boolean(), detail: z.string().max(4096).optional() })).min(1).max(64),
    failed: z.string().max(64).optional(),
    claims: z.record(z.string().max(128), Claim),
  })
  .refine((r) => r.ok === r.checks.every((c) => c.ok), "ok must equal 'every check passed'")
  .refine((r) => (r.ok ? r.failed === undefined : r.checks.some((c) => !c.ok && c.name === r.failed)), "failed must name a failed check");

export class Catalog {
  readonly #plugins: PluginMeta[] = [];
  readonly #attestors = new Map<string, Attestor>();

  /** Register a built plugin; refuses API mismatches, duplicates and cardinality overflow. */
  add(plugin: PluginMeta): void {
    if (plugin === null || typeof plugin !== "object" || typeof plugin.name !== "string" || !plugin.name) {
      throw new PluginError(String((plugin as { name?: unknown })?.name ?? "?"), "is not a plugin object");
    }
    if (plugin.apiVersion !== PLUGIN_API_VERSION) {
      throw new PluginError(plugin.name, `built for plugin API ${plugin.apiVersion}, this host speaks ${PLUGIN_API_VERSION}`);
    }
    if (!(plugin.kind in PLUGIN_CARDINALITY)) throw new PluginError(plugin.name, `unknown kind ${String(plugin.kind)}`);
    if (this.#plugins.some((p) => p.name === plugin.name)) throw new PluginError(plugin.name, "loaded twice");
    if (this.count(plugin.kind) >= PLUGIN_CARDINALITY[plugin.kind].max) {
      throw new PluginError(plugin.name, `at most ${PLUGIN_CARDINALITY[plugin.kind].max} ${plugin.kind} plugins may be active`);
    }
    if (plugin.kind === "attestor") {
      const a = plugin as Attestor;
      if (typeof a.format !== "string" || !a.format) throw new PluginError(a.name, "attestor without a format");
      if (this.#attestors.has(a.format)) throw new PluginError(a.name, `format ${a.format} already provided`);
      this.#attestors.set(a.format, a);
    }
    this.#plugins.push(plugin);
  }

  count(kind: PluginKind): number {
    return this.#plugins.filter((p) => p.kind === kind).length;
  }

  /** Check minimum cardinalities once every plugin is added. */
  seal(): void {
    const problems = (Object.keys(PLUGIN_CARDINALITY) as PluginKind[])
      .filter((k) => this.count(k) < PLUGIN_CARDINALITY[k].min)
      .map((k) => `plugins: at least ${PLUGIN_CARDINALITY[k].min} ${k} plugin(s) required`);
    if (problems.length) throw new ConfigError(problems);
  }

  list(): { name: string; kind: PluginKind; apiVersion: number; format?: string }[] {
    return this.#plugins.map((p) => ({ name: p.name, kind: p.kind, apiVersion: p.apiVersion, ...("format" in p ? { format: String(p.format) } : {}) }));
  }

  formats(): string[] {
    return [...this.#attestors.keys()];
  }

  /** Collect evidence with the attestor for `format`; output validated. */
  async collect(format: string, binding: EvidenceBinding, signal?: AbortSignal): Promise<Evidence> {
    const a = this.#attestors.get(format);
    if (!a?.collect) throw new AttestationError("format", `no attestor can collect ${format} evidence`);
    let out: unknown;
    try {
      out = await a.collect(binding, signal ? { signal } : {});
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw new PluginError(a.name, `collect failed: ${(err as Error).message}`, { cause: err });
    }
    const parsed = Evidence.safeParse(out);
    if (!parsed.success || parsed.data.format !== format) throw new PluginError(a.name, "collect returned invalid evidence");
    return parsed.data;
  }

  /** Verify evidence; never throws for bad evidence: returns a failed result. */
  async verify(evidence: Evidence, binding: EvidenceBinding, now: Date): Promise<AttestationResult> {
    const a = this.#attestors.get(evidence.format);
    if (!a?.verify) {
      return { format: evidence.format, ok: false, checks: [{ name: "format", ok: false, detail: "no verifier for this format" }], failed: "format", claims: {} };
    }
    let out: unknown;
    try {
      out = await a.verify(evidence, binding, now);
    } catch (err) {
      return { format: evidence.format, ok: false, checks: [{ name: "verifier", ok: false, detail: `plugin ${a.name} threw: ${(err as Error).message}` }], failed: "verifier", claims: {} };
    }
    const parsed = AttestationResultSchema.safeParse(out);
    if (!parsed.success || parsed.data.format !== evidence.format) {
      return { format: evidence.format, ok: false, checks: [{ name: "verifier", ok: false, detail: `plugin ${a.name} returned an invalid result` }], failed: "verifier", claims: {} };
    }
    return parsed.data as AttestationResult;
  }
}
