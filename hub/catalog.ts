/** Built-in hub plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { awsConnector } from "../plugins/connector-aws/index.ts";
import { azureConnector } from "../plugins/connector-azure/index.ts";
import { gcpConnector } from "../plugins/connector-gcp/index.ts";
import { onpremConnector } from "../plugins/connector-onprem/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import { addExternalPlugin, type LoadedPlugin } from "../plugins/host/loader.ts";
import type { HostComponents } from "../plugins/sdk/plugin.ts";
import { policyAttestors, type VerifierSettings } from "./attest-policy/index.ts";

let external: readonly LoadedPlugin[] = [];

/** External plugin files loaded by main.ts (--plugin, hub.json `plugins`) before the runtime builds its catalog. */
export function useExternalPlugins(plugins: readonly LoadedPlugin[]): void {
  external = plugins;
}

/** `verifiers`: trust roots and settings from the attestation policy file (none: hardware formats fail their `roots` check). */
export function hubCatalog(components: HostComponents, verifiers: VerifierSettings = {}, plugins: readonly LoadedPlugin[] = external): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  for (const factory of policyAttestors(verifiers)) catalog.add(factory(components));
  // Connectors with default endpoints and empty allow-lists: they verify nothing until configured.
  const net = { ...components, fetch };
  for (const c of [awsConnector({ probe: ["sts"] }), gcpConnector({ probe: ["jwks"] }), azureConnector({ probe: ["jwks"] }), onpremConnector()]) catalog.add(c(net));
  for (const p of plugins) addExternalPlugin(catalog, p, components);
  catalog.seal();
  return catalog;
}
