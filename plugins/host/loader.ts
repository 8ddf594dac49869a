/**
 * Loads external plugin files (sdk/external.ts) into a running binary.
 *
 * Policy: a plugin the operator named but that cannot be loaded (missing file,
 * throws at import, wrong shape, another plugin API version, create() throws,
 * the catalog refuses it) stops the process before it starts serving, with one
 * line naming the file and the reason (`PluginError`, ERR_PLUGIN). Starting
 * without it would silently change what the node proves or accepts.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { bindingAudience, bindingDigest256, bindingMessage } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import { ConnectorResponseError, ConnectorUnavailableError } from "../sdk/connector.ts";
import * as errors from "../sdk/errors.ts";
import type { ExternalComponents, HostApi, PluginDefinition } from "../sdk/external.ts";
import { KmsRefusedError, KmsUnavailableError } from "../sdk/kms.ts";
import { PLUGIN_API_VERSION, PLUGIN_CARDINALITY, type HostComponents, type PluginMeta } from "../sdk/plugin.ts";
import type { Catalog } from "./catalog.ts";

/** Largest plugin file accepted. Larger: refused before import. */
export const pluginFileBytesMax = 64 * 1024 * 1024;
/** How long importing a plugin may take (top-level await). Then: refused. */
export const pluginImportTimeoutMs = 10_000;
/** External plugins per process. More: refused at config load. */
export const externalPluginsMax = 32;

export interface PluginSource {
  file: string;
  options?: Record<string, unknown>;
}

export interface LoadedPlugin {
  file: string;
  definition: PluginDefinition;
  options: Record<string, unknown>;
}

const Definition = z.object({
  apiVersion: z.number(),
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "lowercase letters, digits and '-'"),
  kind: z.string(),
  create: z.function(),
});

export const hostApi: HostApi = {
  apiVersion: PLUGIN_API_VERSION,
  cbor: { encode: encodeCbor, decode: decodeCbor },
  binding: { message: bindingMessage, digest256: bindingDigest256, audience: bindingAudience },
  errors: {
    GreyError: errors.GreyError, MalformedInputError: errors.MalformedInputError, UnauthorizedError: errors.UnauthorizedError,
    AttestationError: errors.AttestationError, PluginError: errors.PluginError, TimeoutError: errors.TimeoutError,
    ConnectorUnavailableError, ConnectorResponseError, KmsUnavailableError, KmsRefusedError,
  },
};

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 300);
}

/** Import one plugin file and check its definition. Throws PluginError (one line) on any problem. */
export async function loadPluginFile(src: PluginSource): Promise<LoadedPlugin> {
  const file = resolve(src.file);
  const fail = (msg: string, cause?: unknown): never => {
    throw new errors.PluginError(file, msg, cause ? { cause } : undefined);
  };
  if (!existsSync(file)) fail("file not found");
  const st = statSync(file);
  if (!st.isFile()) fail("not a regular file");
  if (st.size > pluginFileBytesMax) fail(`file of ${st.size} bytes exceeds ${pluginFileBytesMax}`);
  let mod: Record<string, unknown>;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    mod = await Promise.race([
      import(file) as Promise<Record<string, unknown>>,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`import did not finish in ${pluginImportTimeoutMs} ms`)), pluginImportTimeoutMs);
      }),
    ]);
  } catch (err) {
    return fail(`failed to import: ${firstLine(err)}`, err);
  } finally {
    clearTimeout(timer);
  }
  const parsed = Definition.safeParse(mod.default);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return fail(`default export is not a plugin definition (${issue.path.join(".") || "default"}: ${issue.message})`);
  }
  const def = mod.default as PluginDefinition;
  if (def.apiVersion !== PLUGIN_API_VERSION) fail(`built for plugin API ${def.apiVersion}, this host speaks ${PLUGIN_API_VERSION}`);
  if (!(def.kind in PLUGIN_CARDINALITY)) fail(`unknown plugin kind ${def.kind}`);
  return { file, definition: def, options: src.options ?? {} };
}

/** Load every source in order; the first failure stops (PluginError). */
export async function loadPluginFiles(sources: readonly PluginSource[]): Promise<LoadedPlugin[]> {
  if (sources.length > externalPluginsMax) throw new errors.ConfigError([`plugins: at most ${externalPluginsMax} external plugins`]);
  const out: LoadedPlugin[] = [];
  for (const s of sources) out.push(await loadPluginFile(s));
  return out;
}

/** Create the plugin with injected components and hand it to the catalog (which validates it). */
export function addExternalPlugin(catalog: Catalog, loaded: LoadedPlugin, components: HostComponents): void {
  const ext: ExternalComponents = { ...components, fetch: (components as { fetch?: typeof fetch }).fetch ?? fetch, host: hostApi };
  let plugin: PluginMeta;
  try {
    plugin = loaded.definition.create(ext, loaded.options);
  } catch (err) {
    throw new errors.PluginError(loaded.file, `create() threw: ${firstLine(err)}`, { cause: err });
  }
  if (plugin === null || typeof plugin !== "object") throw new errors.PluginError(loaded.file, "create() did not return a plugin object");
  if (plugin.name !== loaded.definition.name || plugin.kind !== loaded.definition.kind || plugin.apiVersion !== loaded.definition.apiVersion) {
    throw new errors.PluginError(loaded.file, `create() returned ${String(plugin.kind)} ${String(plugin.name)} (api ${String(plugin.apiVersion)}), the definition says ${loaded.definition.kind} ${loaded.definition.name} (api ${loaded.definition.apiVersion})`);
  }
  try {
    catalog.addExternal(plugin, loaded.file);
  } catch (err) {
    throw new errors.PluginError(loaded.file, firstLine(err), { cause: err });
  }
}

const ConfigEntry = z.union([z.string().min(1), z.object({ file: z.string().min(1), options: z.record(z.string(), z.unknown()).optional() })]);

/**
 * The `plugins` list of a JSON config file (hub.json, agent.json): entries are a path or
 * `{ file, options }`; relative paths are relative to the config file's directory.
 * A missing file or key means no plugins.
 */
export function pluginsFromConfig(configFile: string): PluginSource[] {
  if (!existsSync(configFile)) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configFile, "utf8"));
  } catch (err) {
    throw new errors.ConfigError([`${configFile}: not JSON (${firstLine(err)})`]);
  }
  const list = (raw as { plugins?: unknown })?.plugins;
  if (list === undefined) return [];
  const r = z.array(ConfigEntry).max(externalPluginsMax).safeParse(list);
  if (!r.success) throw new errors.ConfigError(r.error.issues.map((i) => `${configFile}: plugins.${i.path.join(".")}: ${i.message}`));
  const dir = resolve(configFile, "..");
  return r.data.map((e) => {
    const s = typeof e === "string" ? { file: e } : e;
    return { ...s, file: isAbsolute(s.file) ? s.file : resolve(dir, s.file) };
  });
}

/** The `plugins` command's output: one line per plugin; connectors also report their health. */
export async function pluginLines(catalog: Catalog, opts: { health?: boolean; healthTimeoutMs?: number } = {}): Promise<string[]> {
  const health = opts.health ? new Map((await catalog.health(opts.healthTimeoutMs ?? 2_000)).map((h) => [h.name, h.report])) : new Map();
  return catalog.list().map((p) => {
    const h = health.get(p.name);
    const extra = [
      p.format ? `format=${p.format}` : "",
      p.platform ? `platform=${p.platform}` : "",
      h ? `health=${h.status}` : "",
      p.file ? `file=${p.file}` : "",
    ].filter(Boolean).join(" ");
    return `${p.kind.padEnd(10)} ${p.name.padEnd(24)} api v${p.apiVersion}${extra ? `  ${extra}` : ""}`;
  });
}
