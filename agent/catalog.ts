/** Built-in agent plugins: static imports so the compiled binary bundles them. */
import { devAttestor } from "../plugins/attestor-dev/index.ts";
import { tpmQuoteAttestor } from "../plugins/attestor-tpm/attestor.ts";
import { Catalog } from "../plugins/host/catalog.ts";
import type { AttestorComponents } from "../plugins/sdk/attestor.ts";

export interface AgentAttestOptions {
  /** TPM for "tpm2-quote" evidence: "swtpm:HOST:PORT" or a device (default /dev/tpmrm0, opened only when used). */
  tpm?: string;
}

export function agentCatalog(components: AttestorComponents, opts: AgentAttestOptions = {}): Catalog {
  const catalog = new Catalog();
  catalog.add(devAttestor()(components));
  catalog.add(tpmQuoteAttestor({ tpm: opts.tpm ?? "/dev/tpmrm0" })(components));
  catalog.seal();
  return catalog;
}
