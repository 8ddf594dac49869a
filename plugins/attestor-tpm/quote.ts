/**
 * Quote evidence: the TPM signs (nonce, PCR selection, digest of the selected PCRs) with the AK; we
 * ship the signed TPMS_ATTEST, the TPMT_SIGNATURE, the AK public area and the PCR values the
 * verifier replays into the digest. Before returning, the agent checks its own evidence is coherent
 * (nonce echoed, PCR values hash to the quoted digest) and retakes it if a PCR moved in between.
 */
import { createHash } from "node:crypto";
import { quoteAttemptsMax, quoteNonceBytesMax, quoteNonceBytesMin } from "./constants.ts";
import { TpmError } from "./errors.ts";
import { TpmReader, concat, toHex } from "./marshal.ts";
import { parsePublic, toTpm2bPublic } from "./public.ts";
import { TPM_GENERATED_VALUE, TPM_ST, hashByAlg, type HashName } from "./spec.ts";
import { parsePcrSelection, type CallOptions, type LoadedObject, type PcrSelection, type Tpm } from "./tpm.ts";

export interface QuoteEvidence {
  /** TPMS_ATTEST exactly as signed (the contents of TPM2B_ATTEST). */
  readonly tpmsAttest: Uint8Array;
  /** TPMT_SIGNATURE over tpmsAttest. */
  readonly signature: Uint8Array;
  /** TPM2B_PUBLIC of the AK. */
  readonly akPublic: Uint8Array;
  /** PCR index → lowercase hex value, for every PCR in pcrSelection. */
  readonly pcrs: Record<number, string>;
  /** One bank; pcrs ascending (the order the TPM digests them in). */
  readonly pcrSelection: { readonly hash: HashName; readonly pcrs: readonly number[] };
}

/** The fields of a quote TPMS_ATTEST the agent checks; verifiers parse it fully themselves. */
export interface QuoteInfo {
  readonly extraData: Uint8Array;
  readonly selection: { alg: number; pcrs: number[] }[];
  readonly pcrDigest: Uint8Array;
}

export function parseQuoteInfo(tpmsAttest: Uint8Array): QuoteInfo {
  const r = new TpmReader(tpmsAttest, "TPMS_ATTEST");
  const magic = r.u32();
  const type = r.u16();
  if (magic !== TPM_GENERATED_VALUE || type !== TPM_ST.ATTEST_QUOTE) {
    throw new TpmError("malformed-response", `not a quote TPMS_ATTEST (magic 0x${magic.toString(16)}, type 0x${type.toString(16)})`);
  }
  r.tpm2b(); // qualifiedSigner
  const extraData = r.tpm2b();
  r.bytes(8 + 4 + 4 + 1); // clockInfo
  r.bytes(8); // firmwareVersion
  const selection = parsePcrSelection(r);
  const pcrDigest = r.tpm2b();
  r.end();
  return { extraData, selection, pcrDigest };
}

export interface QuoteRequest {
  readonly ak: LoadedObject;
  readonly nonce: Uint8Array;
  readonly pcrSelection: PcrSelection;
}

export async function collectQuote(tpm: Tpm, req: QuoteRequest, options: CallOptions = {}): Promise<QuoteEvidence> {
  if (req.nonce.length < quoteNonceBytesMin || req.nonce.length > quoteNonceBytesMax) {
    throw new RangeError(`nonce must be ${quoteNonceBytesMin}..${quoteNonceBytesMax} bytes, got ${req.nonce.length}`);
  }
  const selection: PcrSelection = { hash: req.pcrSelection.hash, pcrs: [...new Set(req.pcrSelection.pcrs)].sort((a, b) => a - b) };
  const signHash = hashByAlg(parsePublic(req.ak.publicArea).scheme.hashAlg ?? 0);
  if (!signHash) throw new RangeError("AK has no signing scheme hash (restricted signing keys always have one)");

  for (let attempt = 1; attempt <= quoteAttemptsMax; attempt++) {
    const { values } = await tpm.pcrRead(selection, options);
    const { attest, signature } = await tpm.quote(req.ak.handle, req.nonce, selection, options);
    const info = parseQuoteInfo(attest);
    if (toHex(info.extraData) !== toHex(req.nonce)) {
      throw new TpmError("malformed-response", "quote does not carry the requested nonce", { command: "Quote" });
    }
    const ordered = selection.pcrs.map((p) => values.get(p)!);
    const digest = createHash(signHash).update(concat(...ordered)).digest();
    if (toHex(digest) === toHex(info.pcrDigest)) {
      return {
        tpmsAttest: attest,
        signature,
        akPublic: toTpm2bPublic(req.ak.publicArea),
        pcrs: Object.fromEntries(selection.pcrs.map((p, i) => [p, toHex(ordered[i]!)])),
        pcrSelection: selection,
      };
    }
    // A PCR was extended between PCR_Read and Quote: take both again.
  }
  throw new TpmError("response-code", `PCRs changed during each of ${quoteAttemptsMax} quote attempts`, { command: "Quote", rc: 0x128 });
}
