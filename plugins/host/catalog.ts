/**
 * The catalog: the host's view of its plugins. It checks each plugin's
 * metadata and cardinality at load, and never trusts plugin output: results
 * are validated before the core sees them, and a throwing plugin becomes a
 * typed error instead of a crash.
 */
import { z } from "zod";
import type { ActivationChallenge, AttestationResult, Attestor, EvidenceBinding } from "../sdk/attestor.ts";
import type { Connector, Credential, HealthReport, IdentityResult } from "../sdk/connector.ts";
import { AttestationError, ConfigError, GreyError, PluginError } from "../sdk/errors.ts";
import type { Kms } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION, PLUGIN_CARDINALITY, type PluginKind, type PluginMeta } from "../sdk/plugin.ts";
import { activationBlobBytesMax, activationSecretBytesMax, Evidence } from "../sdk/wire.ts";
import { EXEC_FAILURE_REASONS, type ExecResult, type ExecTask, type Executor } from "../sdk/executor.ts";

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

const blob = (max: number) => z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength > 0 && b.byteLength <= max);
const Secret = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength >= 16 && b.byteLength <= activationSecretBytesMax);
const ChallengeSchema = z.object({
  challenge: z.object({ credentialBlob: blob(activationBlobBytesMax), encryptedSecret: blob(activationBlobBytesMax) }),
  secret: Secret,
});

const IdentityResultSchema = AttestationResultSchema.and(z.object({ principal: z.string().max(1024).optional() }));
const HealthSchema = z.object({
  status: z.enum(["ok", "degraded", "down"]),
  checks: z.array(z.object({ name: z.string().min(1).max(64), ok: z.boolean(), latencyMs: z.number().nonnegative().optional(), detail: z.string().max(4096).optional() })).max(64),
});

const fn = (o: object, k: string) => typeof (o as Record<string, unknown>)[k] === "function";

function checkConnector(c: Connector, byName: Map<string, Connector>): void {
  if (typeof c.platform !== "string" || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(c.platform)) throw new PluginError(c.name, "connector without a valid platform name");
  if (!Array.isArray(c.credentialTypes) || c.credentialTypes.some((t) => typeof t !== "string" || !t)) throw new PluginError(c.name, "connector credentialTypes must be a list of names");
  if (!fn(c, "health")) throw new PluginError(c.name, "connector without health()");
  if (!fn(c, "authenticate") && !fn(c, "verifyCredential") && !fn(c, "evidence")) throw new PluginError(c.name, "connector implements none of authenticate, verifyCredential, evidence");
  if (c.credentialTypes.length && !fn(c, "verifyCredential")) throw new PluginError(c.name, "connector lists credentialTypes but has no verifyCredential()");
  for (const other of byName.values()) {
    const clash = c.credentialTypes.find((t) => other.credentialTypes.includes(t));
    if (clash) throw new PluginError(c.name, `credential type ${clash} already verified by ${other.name}`);
  }
  byName.set(c.name, c);
}

function checkKms(k: Kms): void {
  for (const m of ["generateDataKey", "wrap", "unwrap", "rotate"]) if (!fn(k, m)) throw new PluginError(k.name, `kms without ${m}()`);
}

const ExecUsageSchema = z.object({
  cpuMs: z.number().nonnegative().finite(),
  wallMs: z.number().nonnegative().finite(),
  maxRssBytes: z.number().nonnegative().finite().optional(),
});
const ExecResultSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), output: z.instanceof(Uint8Array), usage: ExecUsageSchema }),
  z.object({
    ok: z.literal(false),
    reason: z.enum(EXEC_FAILURE_REASONS as [string, ...string[]]),
    detail: z.string().max(8192),
    usage: ExecUsageSchema.optional(),
  }),
]);

export class Catalog {
  readonly #plugins: PluginMeta[] = [];
  readonly #attestors = new Map<string, Attestor>();
  readonly #executors: Executor[] = [];
  readonly #connectors = new Map<string, Connector>();
  readonly #sources = new Map<string, string>();

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
    if (plugin.kind === "executor") {
      const e = plugin as Executor;
      if (!Array.isArray(e.accepts) || typeof e.execute !== "function") throw new PluginError(e.name, "executor without accepts/execute");
      this.#executors.push(e);
    }
    if (plugin.kind === "connector") checkConnector(plugin as Connector, this.#connectors);
    if (plugin.kind === "kms") checkKms(plugin as Kms);
    this.#plugins.push(plugin);
  }

  /** Register a plugin that came from a file (listed with its source). */
  addExternal(plugin: PluginMeta, file: string): void {
    this.add(plugin);
    this.#sources.set(plugin.name, file);
  }

  connectors(): Connector[] {
    return [...this.#connectors.values()];
  }

  kms(): Kms[] {
    return this.#plugins.filter((p): p is Kms => p.kind === "kms");
  }

  /** Verify a platform credential with the connector that accepts its type; never throws. */
  async verifyCredential(credential: Credential, binding: EvidenceBinding, now: Date, signal?: AbortSignal): Promise<IdentityResult> {
    const type = String(credential?.type);
    const fail = (name: string, detail: string): IdentityResult => ({ format: type, ok: false, checks: [{ name, ok: false, detail }], failed: name, claims: {} });
    const c = this.connectors().find((x) => x.credentialTypes.includes(type) && x.verifyCredential);
    if (!c) return fail("type", "no connector verifies this credential type");
    let out: unknown;
    try {
      out = await c.verifyCredential!(credential, binding, now, signal ? { signal } : {});
    } catch (err) {
      return fail("verifier", `plugin ${c.name} threw: ${(err as Error).message}`);
    }
    const parsed = IdentityResultSchema.safeParse(out);
    if (!parsed.success || parsed.data.format !== type) return fail("verifier", `plugin ${c.name} returned an invalid result`);
    return parsed.data as IdentityResult;
  }

  /** Health of every connector, validated and bounded by `timeoutMs`; never throws. */
  async health(timeoutMs = 5_000): Promise<{ name: string; report: HealthReport }[]> {
    return Promise.all(this.connectors().map(async (c) => {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const out = await Promise.race([
          c.health({ signal }),
          new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(new Error(`no answer in ${timeoutMs} ms`)), { once: true })),
        ]);
        const parsed = HealthSchema.safeParse(out);
        if (parsed.success) return { name: c.name, report: parsed.data as HealthReport };
        return { name: c.name, report: { status: "down" as const, checks: [{ name: "plugin", ok: false, detail: "invalid health report" }] } };
      } catch (err) {
        return { name: c.name, report: { status: "down" as const, checks: [{ name: "plugin", ok: false, detail: (err as Error).message }] } };
      }
    }));
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

  list(): { name: string; kind: PluginKind; apiVersion: number; format?: string; platform?: string; file?: string }[] {
    return this.#plugins.map((p) => ({
      name: p.name, kind: p.kind, apiVersion: p.apiVersion,
      ...("format" in p ? { format: String(p.format) } : {}),
      ...(p.kind === "connector" ? { platform: (p as Connector).platform } : {}),
      ...(this.#sources.has(p.name) ? { file: this.#sources.get(p.name)! } : {}),
    }));
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

  /**
   * Hub side: an activation challenge for verified evidence (see Attestor.challenge). Output validated
   * (sizes of the wire message; a secret of 16–64 bytes). Throws AttestationError("activation") when
   * the format has no challenge or the plugin fails: the join is then refused, never let through.
   */
  async challenge(evidence: Evidence): Promise<{ challenge: ActivationChallenge; secret: Uint8Array }> {
    const a = this.#attestors.get(evidence.format);
    if (!a?.challenge) throw new AttestationError("activation", `no attestor can challenge ${evidence.format} evidence`);
    let out: unknown;
    try {
      out = await a.challenge(evidence);
    } catch (err) {
      throw new AttestationError("activation", `cannot challenge this evidence: ${(err as Error).message}`.slice(0, 1024));
    }
    const parsed = ChallengeSchema.safeParse(out);
    if (!parsed.success) throw new AttestationError("activation", `plugin ${a.name} returned an invalid challenge`);
    return parsed.data;
  }

  /** Agent side: answer an activation challenge with the attestor for `format`; output validated. */
  async activate(format: string, challenge: ActivationChallenge, signal?: AbortSignal): Promise<Uint8Array> {
    const a = this.#attestors.get(format);
    if (!a?.activate) throw new AttestationError("activation", `no attestor can answer a ${format} activation challenge`);
    let out: unknown;
    try {
      out = await a.activate(challenge, signal ? { signal } : {});
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw new PluginError(a.name, `activation failed: ${(err as Error).message}`, { cause: err });
    }
    const parsed = Secret.safeParse(out);
    if (!parsed.success) throw new PluginError(a.name, "activate returned an invalid secret");
    return parsed.data;
  }

  /** Start every executor (call once before `execute`). */
  async startExecutors(): Promise<void> {
    for (const e of this.#executors) await e.start();
  }

  async stopExecutors(): Promise<void> {
    for (const e of this.#executors) await e.stop().catch(() => {});
  }

  /**
   * Run a task with the first executor that accepts its kind. The result is
   * validated: a plugin that returns garbage or throws for a task problem
   * yields a "crash" failure naming the plugin. Host-side refusals
   * (ExecutorBusyError, not started) are rethrown as they are typed.
   */
  async execute(task: ExecTask, options: { signal?: AbortSignal } = {}): Promise<ExecResult> {
    const e = this.#executors.find((x) => x.accepts.includes(task.kind));
    if (!e) return { ok: false, reason: "invalid-module", detail: `no executor runs ${task.kind} tasks` };
    let out: unknown;
    try {
      out = await e.execute(task, options);
    } catch (err) {
      if (err instanceof GreyError) throw err;
      return { ok: false, reason: "crash", detail: `plugin ${e.name} threw: ${(err as Error).message}`.slice(0, 1024) };
    }
    const parsed = ExecResultSchema.safeParse(out);
    if (!parsed.success) return { ok: false, reason: "crash", detail: `plugin ${e.name} returned an invalid result` };
    if (parsed.data.ok && parsed.data.output.byteLength > task.limits.outputBytes) {
      return { ok: false, reason: "output-too-large", detail: `plugin ${e.name} returned ${parsed.data.output.byteLength} bytes (limit ${task.limits.outputBytes})` };
    }
    return parsed.data as ExecResult;
  }
}
