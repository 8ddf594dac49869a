/** Built-in hub plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import type { HostComponents } from "../plugins/sdk/plugin.ts";

export function hubCatalog(components: HostComponents): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  catalog.seal();
  return catalog;
}
