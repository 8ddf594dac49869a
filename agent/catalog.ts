/** Built-in agent plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { tpmQuoteAttestor } from "../plugins/attestor-tpm/attestor.ts";
import { snpAttestor } from "../plugins/attestor-sev-snp/index.ts";
import { dcapAttestor } from "../plugins/attestor-dcap/index.ts";
import { execExecutor } from "../plugins/executor-exec/index.ts";
import { wasmExecutor } from "../plugins/executor-wasm/index.ts";
import { awsConnector } from "../plugins/connector-aws/index.ts";
import { azureConnector } from "../plugins/connector-azure/index.ts";
import { gcpConnector } from "../plugins/connector-gcp/index.ts";
import { onpremConnector } from "../plugins/connector-onprem/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import { addExternalPlugin, type LoadedPlugin } from "../plugins/host/loader.ts";
import type { AttestorComponents } from "../plugins/sdk/attestor.ts";

export interface AgentAttestOptions {
  /** TPM for "tpm2-quote" evidence: "swtpm:HOST:PORT" or a device (default /dev/tpmrm0, opened only when used). */
  tpm?: string;
}

let external: readonly LoadedPlugin[] = [];

/** External plugin files loaded by cli.ts (--plugin, DIR/agent.json `plugins`) before join/run build their catalog. */
export function useExternalPlugins(plugins: readonly LoadedPlugin[]): void {
  external = plugins;
}

export function agentCatalog(components: AttestorComponents, opts: AgentAttestOptions = {}, plugins: readonly LoadedPlugin[] = external): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  catalog.add(tpmQuoteAttestor({ tpm: opts.tpm ?? "/dev/tpmrm0" })(components));
  // Confidential VMs: SEV-SNP reports and TDX quotes through Linux configfs-tsm (touched only when used).
  catalog.add(snpAttestor()(components));
  catalog.add(dcapAttestor()(components));
  // Connectors with default endpoints and empty allow-lists: they verify nothing until configured.
  const net = { ...components, fetch };
  for (const c of [awsConnector({ probe: ["imds"] }), gcpConnector({ probe: ["metadata"] }), azureConnector({ probe: ["imds"] }), onpremConnector()]) catalog.add(c(net));
  for (const p of plugins) addExternalPlugin(catalog, p, components);
  // Executors: WebAssembly (sandboxed child process), host commands (off unless configured).
  catalog.add(wasmExecutor()(components));
  catalog.add(execExecutor()(components));
  catalog.seal();
  return catalog;
}
