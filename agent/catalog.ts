/** Built-in agent plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import type { AttestorComponents } from "../plugins/sdk/attestor.ts";

export function agentCatalog(components: AttestorComponents): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  catalog.seal();
  return catalog;
}
