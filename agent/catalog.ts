/** Built-in agent plugins: static imports so the compiled binary bundles them. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { tpmQuoteAttestor } from "../plugins/attestor-tpm/attestor.ts";
import { snpAttestor } from "../plugins/attestor-sev-snp/index.ts";
import { dcapAttestor } from "../plugins/attestor-dcap/index.ts";
import { execExecutor } from "../plugins/executor-exec/index.ts";
import { wasmExecutor } from "../plugins/executor-wasm/index.ts";
import { awsConnector } from "../plugins/connector-aws/index.ts";
import { azureConnector } from "../plugins/connector-azure/index.ts";
import { connectorAttestor, formatOfPlatform } from "../plugins/connector-config/attestor.ts";
import { ConnectorsShape, HealthShape, NO_CONNECTORS, PLATFORMS, resolveConnectors, type ResolvedConnectors } from "../plugins/connector-config/config.ts";
import { gcpConnector } from "../plugins/connector-gcp/index.ts";
import { onpremConnector } from "../plugins/connector-onprem/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import { parseConfigText } from "../plugins/host/config-file.ts";
import { KmsConfigSchema } from "../plugins/host/keystore.ts";
import { addExternalPlugin, type LoadedPlugin } from "../plugins/host/loader.ts";
import type { AttestorComponents } from "../plugins/sdk/attestor.ts";
import { ConfigError } from "../plugins/sdk/errors.ts";
import { pqPolicyDefault, SessionsShape, type PqPolicy } from "../plugins/sdk/session.ts";

export interface AgentAttestOptions {
  /** TPM for "tpm2-quote" evidence (default /dev/tpmrm0, opened only when used). */
  tpm?: string;
}

/** Optional agent config file in the data dir: external plugins, kms, connectors, sessions. */
export const AGENT_CONFIG_FILE = "agent.json";

const AgentFile = z.object({
  plugins: z.array(z.unknown()).optional(), // checked by plugins/host/loader.ts
  kms: KmsConfigSchema.optional(),
  connectors: ConnectorsShape,
  sessions: SessionsShape,
  health: HealthShape,
});

export interface AgentSettings {
  connectors: ResolvedConnectors;
  pq: PqPolicy;
  health: { intervalMs: number; timeoutMs: number };
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { connectors: NO_CONNECTORS, pq: pqPolicyDefault, health: HealthShape.parse(undefined) };

/** DIR/agent.json validated (every problem at once, with path and line); absent file: defaults. */
export function loadAgentSettings(dir: string): AgentSettings {
  const path = join(dir, AGENT_CONFIG_FILE);
  if (!existsSync(path)) return DEFAULT_AGENT_SETTINGS;
  const parsed = parseConfigText(readFileSync(path, "utf8"), AGENT_CONFIG_FILE, AgentFile, (file, problems) =>
    new ConfigError(problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ""}: ${p.path || "(top)"}: ${p.message}`)));
  const connectors = resolveConnectors(parsed.data.connectors, dir, parsed.problem);
  parsed.finish();
  return { connectors, pq: parsed.data.sessions.pq, health: parsed.data.health };
}

let external: readonly LoadedPlugin[] = [];
let settings: AgentSettings = DEFAULT_AGENT_SETTINGS;

/** External plugin files loaded by cli.ts (--plugin, DIR/agent.json `plugins`) before join/run build their catalog. */
export function useExternalPlugins(plugins: readonly LoadedPlugin[]): void {
  external = plugins;
}

/** DIR/agent.json settings, loaded by cli.ts before join/run build their catalog and services. */
export function useAgentSettings(s: AgentSettings): void {
  settings = s;
}

export function agentSettings(): AgentSettings {
  return settings;
}

export function agentCatalog(components: AttestorComponents, opts: AgentAttestOptions = {}, plugins: readonly LoadedPlugin[] = external, connectors: ResolvedConnectors = settings.connectors): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  catalog.add(tpmQuoteAttestor({ tpm: opts.tpm ?? "/dev/tpmrm0" })(components));
  // Confidential VMs: SEV-SNP reports and TDX quotes through Linux configfs-tsm (touched only when used).
  catalog.add(snpAttestor()(components));
  catalog.add(dcapAttestor()(components));
  // Connectors with agent.json's settings (unconfigured: default endpoints, touched only when used).
  const net = { ...components, fetch };
  const built = [
    awsConnector({ probe: ["imds"], ...connectors.aws }),
    gcpConnector({ probe: ["metadata"], ...connectors.gcp }),
    azureConnector({ probe: ["imds"], ...connectors.azure }),
    onpremConnector(connectors.onprem ?? {}),
  ].map((f) => f(net));
  for (const c of built) catalog.add(c);
  for (const p of plugins) addExternalPlugin(catalog, p, components);
  // A cloud identity as join evidence (--format aws-iid | gcp-iit | azure-imds | onprem-x509), unless a plugin took the format.
  for (const platform of PLATFORMS) {
    const format = formatOfPlatform(platform);
    if (catalog.formats().includes(format)) continue;
    const present = platform === "aws" && connectors.aws?.identity === "iid" ? "evidence" : "credential";
    catalog.add(connectorAttestor({ format, connector: built.find((c) => c.platform === platform)!, present })(components));
  }
  // Executors: WebAssembly (sandboxed child process), host commands (off unless configured).
  catalog.add(wasmExecutor()(components));
  catalog.add(execExecutor()(components));
  catalog.seal();
  return catalog;
}
