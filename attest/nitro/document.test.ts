import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { fromHex, toHex } from "../bytes.ts";
import { decodeCbor } from "../cose/cbor.ts";
import { parseCoseSign1 } from "../cose/sign1.ts";
import { flipByte, vectorBytes, vectorText } from "../testing/vectors.ts";
import { pemBlocks } from "../x509/cert.ts";
import { parseNitroPayload, verifyNitroDocument, type NitroInput } from "./document.ts";

const root = pemBlocks(vectorText("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem"))[0]!;
const failedOf = (v: { ok: boolean; failed?: string }) => (v.ok ? "ok" : v.failed);
const d = "aws-nitro-enclaves";
const now = new Date("2026-11-27T00:00:00Z");

describe("Nitro Enclaves attestation documents", () => {
  test("beta-valid: VALID at 2022-10-13T09:00Z (production PCRs); INVALID now (cert.validity)", async () => {
    const input: NitroInput = { document: vectorBytes(`${d}/evervault-beta-valid-attestation-doc.cbor`), roots: [root], at: new Date("2022-10-13T09:00:00Z") };
    const v = await verifyNitroDocument(input);
    expect(failedOf(v)).toBe("ok");
    expect(v.checks.map((c) => c.name)).toEqual([
      "structure", "alg", "cert.signature", "cert.anchor", "cert.ca", "cert.validity", "signature", "freshness", "nonce", "user-data", "public-key", "debug", "pcr-policy",
    ]);
    if (v.ok) {
      expect(v.claims.document.moduleId).toBe("i-020b6af9246d90e92-enc0183d09086c24190");
      expect(v.claims.document.timestamp.toISOString()).toBe("2022-10-13T08:58:02.136Z");
      expect(v.claims.debug).toBe(false);
      const nonce = v.claims.document.nonce!;
      expect(failedOf(await verifyNitroDocument({ ...input, nonce }))).toBe("ok");
      expect(failedOf(await verifyNitroDocument({ ...input, nonce: flipByte(nonce, 0) }))).toBe("nonce");
      expect(failedOf(await verifyNitroDocument({ ...input, userData: new Uint8Array([1]) }))).toBe("user-data");
      const pcr0 = toHex(v.claims.document.pcrs.get(0)!);
      expect(failedOf(await verifyNitroDocument({ ...input, policy: { pcrs: { 0: [pcr0] } } }))).toBe("ok");
      expect(failedOf(await verifyNitroDocument({ ...input, policy: { pcrs: { 0: ["00".repeat(48)] } } }))).toBe("pcr-policy");
      expect(failedOf(await verifyNitroDocument({ ...input, policy: { maxAgeMs: 60_000 } }))).toBe("freshness");
      expect(failedOf(await verifyNitroDocument({ ...input, at: new Date("2022-10-13T08:58:00Z"), policy: { clockSkewMs: 0 } }))).toBe("freshness");
    }
    expect(failedOf(await verifyNitroDocument({ ...input, at: now }))).toBe("cert.validity");
    expect(failedOf(await verifyNitroDocument({ ...input, at: new Date("2022-10-13T11:58:03Z") }))).toBe("cert.validity");
  });

  test("beta-debug-mode: signature VALID but rejected by default policy (debug); accepted with allowDebug", async () => {
    const input: NitroInput = { document: vectorBytes(`${d}/evervault-beta-debug-mode-attestation-doc.cbor`), roots: [root], at: new Date("2022-10-12T14:00:00Z") };
    const v = await verifyNitroDocument(input);
    expect(failedOf(v)).toBe("debug");
    expect(v.checks.find((c) => c.name === "signature")?.ok).toBe(true);
    const enc = new TextEncoder();
    const allowed = await verifyNitroDocument({ ...input, policy: { allowDebug: true }, publicKey: enc.encode("my super secret key"), userData: enc.encode("hello, world!") });
    expect(failedOf(allowed)).toBe("ok");
    expect(failedOf(await verifyNitroDocument({ ...input, policy: { allowDebug: true }, publicKey: enc.encode("my super secret kex") }))).toBe("public-key");
  });

  test("ga-valid (base64 and .cbor identical): VALID at 2023-09-18T15:04Z with allowDebug; debug by default", async () => {
    const cbor = vectorBytes(`${d}/evervault-ga-valid-attestation-doc.cbor`);
    expect(Buffer.from(vectorText(`${d}/evervault-ga-valid-attestation-doc.b64`).trim(), "base64").equals(Buffer.from(cbor))).toBe(true);
    const input: NitroInput = { document: cbor, roots: [root], at: new Date("2023-09-18T15:04:00Z") };
    expect(failedOf(await verifyNitroDocument(input))).toBe("debug");
    const v = await verifyNitroDocument({ ...input, policy: { allowDebug: true } });
    expect(failedOf(v)).toBe("ok");
    if (v.ok) expect(v.claims.document.userData?.[0]).toBe(0x30); // a DER SPKI
    expect(failedOf(await verifyNitroDocument({ ...input, at: new Date("2023-09-18T14:37:00Z"), policy: { allowDebug: true } }))).toBe("cert.validity");
  });

  test("tampering: payload byte → signature; signature byte → signature; wrong root → cert.anchor; truncation → structure", async () => {
    const doc = vectorBytes(`${d}/evervault-beta-valid-attestation-doc.cbor`);
    const at = new Date("2022-10-13T09:00:00Z");
    const cose = parseCoseSign1(doc);
    // Flip a byte inside the module_id text in the payload.
    const payloadOffset = cose.payload.byteOffset - doc.byteOffset;
    const idx = payloadOffset + Buffer.from(cose.payload).indexOf("i-020b");
    expect(failedOf(await verifyNitroDocument({ document: flipByte(doc, idx + 3), roots: [root], at }))).toBe("signature");
    expect(failedOf(await verifyNitroDocument({ document: flipByte(doc, -1), roots: [root], at }))).toBe("signature");
    const otherRoot = vectorBytes("tpm-gce/tpm_ek_root_1.cer");
    expect(failedOf(await verifyNitroDocument({ document: doc, roots: [otherRoot], at }))).toBe("cert.anchor");
    expect(failedOf(await verifyNitroDocument({ document: doc.subarray(0, 2000), roots: [root], at }))).toBe("structure");
  });

  test("indefinite-length payload map (NitroTPM document) parses; debug rule not applied to TPM PCRs", async () => {
    const doc = vectorBytes("tpm-vaportpm/nitro/nitro_document.cbor");
    const cose = parseCoseSign1(doc);
    expect(cose.payload[0]).toBe(0xbf);
    const p = parseNitroPayload(cose.payload);
    expect(p.pcrsField).toBe("nitrotpm_pcrs");
    expect(p.pcrs.size).toBe(24);
    const v = await verifyNitroDocument({ document: doc, roots: [root], at: new Date("2026-02-03T11:00:00Z") });
    expect(failedOf(v)).toBe("ok");
    expect(failedOf(await verifyNitroDocument({ document: doc, roots: [root], at: now }))).toBe("cert.validity");
  });
});

describe("CBOR / COSE / Nitro fuzz", () => {
  const seed = vectorBytes(`${d}/evervault-beta-debug-mode-attestation-doc.cbor`);
  test("mutated documents: typed failure, never a throw", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), async (edits, cut) => {
        const b = new Uint8Array(seed);
        for (const [i, v] of edits) b[i % b.length] = v;
        const v = await verifyNitroDocument({ document: b.subarray(0, cut % (b.length + 1)), roots: [root], at: new Date("2022-10-12T14:00:00Z") });
        expect(typeof v.ok).toBe("boolean");
        if (!v.ok) expect(v.failed).not.toBe("internal");
      }),
      { numRuns: 150 },
    );
  });
  test("random CBOR: value or MalformedInputError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          decodeCbor(b);
          parseCoseSign1(b);
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedInputError);
        }
      }),
      { numRuns: 1000 },
    );
  });
  test("nesting and huge lengths are bounded", () => {
    expect(() => decodeCbor(new Uint8Array(100).fill(0x81))).toThrow(MalformedInputError);
    expect(() => decodeCbor(fromHex("5bffffffffffffffff"))).toThrow(MalformedInputError);
    expect(() => decodeCbor(fromHex("9f9f9f"))).toThrow(MalformedInputError);
    expect(decodeCbor(fromHex("bf6161f5ff"))).toEqual(new Map([["a", true]]));
  });
});
