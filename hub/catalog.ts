/** Built-in hub plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import type { HostComponents } from "../plugins/sdk/plugin.ts";
import { policyAttestors, type VerifierSettings } from "./attest-policy/index.ts";

/** `verifiers`: trust roots and settings from the attestation policy file (none: hardware formats fail their `roots` check). */
export function hubCatalog(components: HostComponents, verifiers: VerifierSettings = {}): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  for (const factory of policyAttestors(verifiers)) catalog.add(factory(components));
  catalog.seal();
  return catalog;
}
