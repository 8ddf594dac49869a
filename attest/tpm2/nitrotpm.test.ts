import { describe, expect, test } from "bun:test";
import { fromHex } from "../bytes.ts";
import { flipByte, vectorBytes, vectorJson, vectorText } from "../testing/vectors.ts";
import { pemBlocks } from "../x509/cert.ts";
import { verifyNitroTpm, type NitroTpmInput } from "./nitrotpm.ts";
import type { PcrBank } from "./quote.ts";

const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const n = "tpm-vaportpm/nitro";

function input(): NitroTpmInput {
  const j = vectorJson<{ hash: "sha384"; pcrs: Record<string, string> }>(`${n}/pcrs.json`);
  const bank: PcrBank = { hash: j.hash, values: Object.fromEntries(Object.entries(j.pcrs).map(([k, v]) => [Number(k), fromHex(v)])) };
  return {
    document: vectorBytes(`${n}/nitro_document.cbor`),
    attest: vectorBytes(`${n}/quote.tpms_attest.bin`),
    signature: vectorBytes(`${n}/quote.tpmt_signature.bin`),
    pcrs: [bank],
    nonce: fromHex(vectorText(`${n}/nonce.hex`)),
    roots: pemBlocks(vectorText("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem")),
    at: new Date("2026-02-03T11:00:00Z"),
  };
}

describe("AWS NitroTPM quote bound by a Nitro attestation document", () => {
  test("VALID at 2026-02-03T11:00Z", async () => {
    const v = await verifyNitroTpm(input());
    expect(failedOf(v)).toBe("ok");
    const names = v.checks.map((c) => c.name);
    for (const n of ["document.signature", "document.cert.anchor", "binding.ak", "quote.signature", "quote.pcr-digest", "binding.nonce", "binding.pcrs"]) expect(names).toContain(n);
  });
  test("INVALID now (leaf expired) and before the window", async () => {
    expect(failedOf(await verifyNitroTpm({ ...input(), at: new Date("2026-11-27T00:00:00Z") }))).toBe("document.cert.validity");
    expect(failedOf(await verifyNitroTpm({ ...input(), at: new Date("2026-02-03T10:11:00Z") }))).toBe("document.cert.validity");
  });
  test("wrong nonce → quote.nonce; changed PCR → quote.pcr-digest", async () => {
    expect(failedOf(await verifyNitroTpm({ ...input(), nonce: flipByte(input().nonce, 0) }))).toBe("quote.nonce");
    const i = input();
    i.pcrs[0]!.values[7] = flipByte(i.pcrs[0]!.values[7]!, 0);
    expect(failedOf(await verifyNitroTpm(i))).toBe("quote.pcr-digest");
  });
  test("quote from another AK (GCP) → quote.signature", async () => {
    const g = "tpm-vaportpm/gcp-tdx";
    const v = await verifyNitroTpm({ ...input(), attest: vectorBytes(`${g}/quote.tpms_attest.bin`), signature: vectorBytes(`${g}/quote.tpmt_signature.bin`) });
    expect(failedOf(v)).toBe("quote.signature");
  });
  test("tampered document → document.signature", async () => {
    const doc = input().document;
    const at = Buffer.from(doc).indexOf("i-01cfb383223e42522");
    expect(failedOf(await verifyNitroTpm({ ...input(), document: flipByte(doc, at + 4) }))).toBe("document.signature");
  });
});
