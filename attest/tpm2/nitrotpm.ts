/**
 * AWS NitroTPM: a TPM2_Quote whose AK has no certificate, bound instead by a Nitro attestation document
 * (COSE_Sign1 to AWS Nitro Root G1). Checks: document.* (see nitro/document.ts), binding.ak (the
 * document's public_key is the AK, uncompressed EC point), quote.* (see quote.ts, AK from the
 * document), binding.nonce (document nonce == quote extraData), binding.pcrs (document nitrotpm_pcrs
 * == the reported SHA-384 PCR values, for every quoted PCR).
 */
import { bytesEqual, toHex } from "../bytes.ts";
import { ecPointToSpki } from "../x509/keys.ts";
import { checkNitroDocument } from "../nitro/document.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import type { CertInput } from "../x509/chain.ts";
import { checkTpmQuote, type PcrBank, type PcrPolicy, type QuoteClaims } from "./quote.ts";
import type { NitroClaims } from "../nitro/document.ts";

export type NitroTpmInput = {
  document: Uint8Array;
  attest: Uint8Array;
  signature: Uint8Array;
  pcrs: PcrBank[];
  nonce: Uint8Array;
  roots: CertInput[];
  at: Date;
  policy?: PcrPolicy & { maxAgeMs?: number };
};

export type NitroTpmClaims = { document: NitroClaims; quote: QuoteClaims };

export function verifyNitroTpm(input: NitroTpmInput): Promise<Verdict<NitroTpmClaims>> {
  return runChecks("structure", (c: Checks) => {
    const docPolicy = input.policy?.maxAgeMs !== undefined ? { maxAgeMs: input.policy.maxAgeMs } : {};
    const document = checkNitroDocument(c.sub("document"), { document: input.document, roots: input.roots, at: input.at, policy: docPolicy });
    const pk = document.document.publicKey;
    if (!pk) c.fail("binding.ak", "document has no public_key");
    const spki = ecPointToSpki(pk);
    c.pass("binding.ak", `AK = document public_key ${toHex(pk).slice(0, 18)}…`);
    const quote = checkTpmQuote(c.sub("quote"), {
      attest: input.attest, signature: input.signature, ak: { kind: "key", spki }, pcrs: input.pcrs, nonce: input.nonce, at: input.at,
      ...(input.policy ? { policy: input.policy } : {}),
    });
    const docNonce = document.document.nonce;
    c.require("binding.nonce", docNonce !== undefined && bytesEqual(docNonce, quote.attest.extraData), "document nonce == quote extraData");
    const sel = quote.attest.quote!.pcrSelect.find((s) => s.hash === "sha384");
    const bank = input.pcrs.find((b) => b.hash === "sha384");
    if (!sel || !bank) c.fail("binding.pcrs", "quote has no SHA-384 PCR bank");
    for (const p of sel.pcrs) {
      const docPcr = document.document.pcrs.get(p);
      if (!docPcr || !bytesEqual(docPcr, bank.values[p]!)) c.fail("binding.pcrs", `PCR ${p} differs from the document's nitrotpm_pcrs`);
    }
    c.pass("binding.pcrs", `${sel.pcrs.length} SHA-384 PCRs equal the document's nitrotpm_pcrs`);
    return { document, quote };
  });
}
