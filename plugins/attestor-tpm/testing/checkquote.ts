/** Run the real `tpm2_checkquote` (tpm2-tools) on our evidence: the independent verdict in tests. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { concat, fromHex, toHex } from "../marshal.ts";
import { hashAlgs, type HashName } from "../spec.ts";
import { fromTpm2bPublic, publicKeyPem } from "../public.ts";
import type { QuoteEvidence } from "../quote.ts";

export interface CheckquoteResult {
  readonly ok: boolean;
  readonly output: string;
}

export interface CheckquoteInput {
  readonly evidence: QuoteEvidence;
  readonly nonce: Uint8Array;
  /** Replace parts of the evidence to check that tampering is caught. */
  readonly pcrValues?: Uint8Array;
}

export async function checkquote({ evidence, nonce, pcrValues }: CheckquoteInput): Promise<CheckquoteResult> {
  const dir = await mkdtemp(join(tmpdir(), "grey-checkquote-"));
  try {
    const sel = evidence.pcrSelection;
    const values = pcrValues ?? concat(...sel.pcrs.map((p) => fromHex(evidence.pcrs[p]!)));
    const serialized = tpm2ToolsSerializedPcrs(sel.hash, sel.pcrs, values);
    await Promise.all([
      writeFile(join(dir, "ak.pem"), publicKeyPem(fromTpm2bPublic(evidence.akPublic))),
      writeFile(join(dir, "quote.msg"), evidence.tpmsAttest),
      writeFile(join(dir, "quote.sig"), evidence.signature),
      writeFile(join(dir, "pcrs.bin"), serialized),
    ]);
    const proc = Bun.spawn(
      [
        "tpm2_checkquote",
        "-u", join(dir, "ak.pem"),
        "-g", "sha256",
        "-m", join(dir, "quote.msg"),
        "-s", join(dir, "quote.sig"),
        "-f", join(dir, "pcrs.bin"),
        "-q", toHex(nonce),
      ],
      { stdout: "pipe", stderr: "pipe", cwd: dir },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { ok: code === 0, output: `${out}${err}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * tpm2-tools 5.4 `-F serialized` PCR file: a little-endian dump of its C structs — TPML_PCR_SELECTION
 * (count + 16 x {hash u16, sizeofSelect u8, pcrSelect[4], pad}) = 132 B, then tpm2_pcrs.count (u32)
 * and that many TPML_DIGEST (count u32 + 8 x {size u16, buffer[64]}) = 532 B each, 8 values per
 * TPML_DIGEST in selection order. (`-f values -l ...` is broken in 5.4: "Failed to hash PCR values".)
 */
function tpm2ToolsSerializedPcrs(hash: HashName, pcrs: readonly number[], values: Uint8Array): Uint8Array {
  const digestBytes = hashAlgs[hash].bytes;
  const lists = Math.ceil(pcrs.length / 8);
  const out = new Uint8Array(132 + 4 + lists * 532);
  const v = new DataView(out.buffer);
  v.setUint32(0, 1, true);
  v.setUint16(4, hashAlgs[hash].alg, true);
  v.setUint8(6, 3);
  for (const p of pcrs) out[7 + (p >> 3)]! |= 1 << (p & 7);
  v.setUint32(132, lists, true);
  pcrs.forEach((_, i) => {
    const list = 136 + Math.floor(i / 8) * 532;
    v.setUint32(list, Math.min(8, pcrs.length - Math.floor(i / 8) * 8), true);
    const at = list + 4 + (i % 8) * 66;
    v.setUint16(at, digestBytes, true);
    out.set(values.subarray(i * digestBytes, (i + 1) * digestBytes), at + 2);
  });
  return out;
}
