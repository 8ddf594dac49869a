/** Built-in hub plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { awsConnector } from "../plugins/connector-aws/index.ts";
import { azureConnector } from "../plugins/connector-azure/index.ts";
import { connectorAttestor, formatOfPlatform, type ConnectorFormat } from "../plugins/connector-config/attestor.ts";
import { NO_CONNECTORS, type ResolvedConnectors } from "../plugins/connector-config/config.ts";
import { gcpConnector } from "../plugins/connector-gcp/index.ts";
import { onpremConnector } from "../plugins/connector-onprem/index.ts";
import type { Jwk } from "../attest/iid/gcp.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import { addExternalPlugin, type LoadedPlugin } from "../plugins/host/loader.ts";
import type { Connector } from "../plugins/sdk/connector.ts";
import type { HostComponents } from "../plugins/sdk/plugin.ts";
import { policyAttestors, type VerifierSettings } from "./attest-policy/index.ts";

let external: readonly LoadedPlugin[] = [];
let configured: ResolvedConnectors = NO_CONNECTORS;

/** External plugin files loaded by main.ts (--plugin, hub.json `plugins`) before the runtime builds its catalog. */
export function useExternalPlugins(plugins: readonly LoadedPlugin[]): void {
  external = plugins;
}

/** hub.json `connectors`, resolved by loadHubConfig (main.ts sets it before the runtime builds its catalog). */
export function useConnectors(connectors: ResolvedConnectors): void {
  configured = connectors;
}

/**
 * The four built-in connectors with hub.json's settings; a platform not configured keeps the
 * defaults (empty allow-lists: it verifies nothing). Pinned roots come from the attestation
 * policy's verifier settings, so one file names the trust anchors of each format.
 */
export function hubConnectors(c: ResolvedConnectors, verifiers: VerifierSettings, components: HostComponents): Connector[] {
  const net = { ...components, fetch };
  const iid = verifiers["aws-iid"]?.roots;
  const jwks = verifiers["gcp-iit"]?.jwks as { keys: Jwk[] } | undefined;
  const azureRoots = verifiers["azure-imds"]?.roots;
  return [
    awsConnector({ probe: ["sts"], ...c.aws, ...(iid ? { iidCertificates: iid } : {}) }),
    gcpConnector({ probe: ["jwks"], ...c.gcp, ...(jwks ? { jwks, probe: [] } : {}) }),
    azureConnector({ probe: ["jwks"], ...c.azure, ...(azureRoots ? { roots: azureRoots } : {}) }),
    onpremConnector(c.onprem ?? {}),
  ].map((f) => f(net));
}

/**
 * `verifiers`: trust roots and settings from the attestation policy file (none: hardware formats fail their `roots` check).
 * A configured connector owns its platform's evidence format (aws-iid, gcp-iit, azure-imds, onprem-x509): the
 * format is verified by the connector (allow-lists included) instead of the verify-only iid attestor.
 */
export function hubCatalog(components: HostComponents, verifiers: VerifierSettings = {}, plugins: readonly LoadedPlugin[] = external, connectors: ResolvedConnectors = configured): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  const built = hubConnectors(connectors, verifiers, components);
  const owned = new Map<string, Connector>(connectors.configured.map((p) => [formatOfPlatform(p), built.find((c) => c.platform === p)!]));
  for (const factory of policyAttestors(verifiers)) {
    const a = factory(components);
    if (!owned.has(a.format)) catalog.add(a);
  }
  for (const c of built) catalog.add(c);
  for (const [format, connector] of owned) catalog.add(connectorAttestor({ format: format as ConnectorFormat, connector })(components));
  for (const p of plugins) addExternalPlugin(catalog, p, components);
  catalog.seal();
  return catalog;
}
