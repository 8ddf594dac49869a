import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash, verify as nodeVerify } from "node:crypto";
import { TpmError } from "./errors.ts";
import { createAk, createEk } from "./keys.ts";
import { TpmWriter, fromHex, toHex } from "./marshal.ts";
import { akTemplate, fromTpm2bPublic, leftPad, objectName, parsePublic, publicKeyObject, type KeyAlg } from "./public.ts";
import { collectQuote, parseQuoteInfo, type QuoteEvidence } from "./quote.ts";
import { TPM_RC } from "./rc.ts";
import { TPMA_OBJECT, TPM_ALG, TPM_ECC_NIST_P256, TPM_RH } from "./spec.ts";
import { checkquote } from "./testing/checkquote.ts";
import { requireTools, startSwtpm, type Swtpm } from "./testing/swtpm.ts";
import { Tpm, type LoadedObject } from "./tpm.ts";
import { tcpTransport } from "./transport.ts";

let swtpm: Swtpm;
let tpm: Tpm;
let ek: LoadedObject;

const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const quotedPcrs = [0, 1, 2, 3, 7, 10, 16, 23];

beforeAll(async () => {
  requireTools(); // fails the file with an install hint; never skips
  swtpm = await startSwtpm();
  tpm = new Tpm({ transport: tcpTransport({ host: swtpm.host, port: swtpm.port }), readTimeoutMs: 10_000 });
  await tpm.ensureStarted();
  ek = await createEk(tpm, "ecc");
});

afterAll(async () => {
  await tpm?.close();
  await swtpm?.stop();
});

describe("TPM 2.0 client against swtpm", () => {
  test("Startup twice: the second TPM_RC_INITIALIZE is tolerated by ensureStarted, typed by startup", async () => {
    await tpm.ensureStarted();
    const err = await tpm.startup().catch((e) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect(err.name).toBe("TpmError");
    expect(err.kind).toBe("response-code");
    expect(err.rcName).toBe("TPM_RC_INITIALIZE");
    expect(err.is(TPM_RC.INITIALIZE)).toBe(true);
  });

  test("GetRandom returns the requested number of bytes, in chunks", async () => {
    const r = await tpm.getRandom(100);
    expect(r.length).toBe(100);
    expect(toHex(r)).not.toBe("00".repeat(100));
  });

  test("PCR_Read across more than 8 PCRs, then PCR_Extend and re-read", async () => {
    const all = Array.from({ length: 24 }, (_, i) => i);
    const before = await tpm.pcrRead({ hash: "sha256", pcrs: all });
    expect(before.values.size).toBe(24);
    expect(toHex(before.values.get(0)!)).toBe("00".repeat(32));

    const digest = sha256(new TextEncoder().encode("app-event-23"));
    await tpm.pcrExtend(23, [{ hash: "sha256", digest }, { hash: "sha1", digest: new Uint8Array(20).fill(7) }]);
    const after = await tpm.pcrRead({ hash: "sha256", pcrs: [23] });
    const expected = sha256(new Uint8Array([...before.values.get(23)!, ...digest]));
    expect(toHex(after.values.get(23)!)).toBe(toHex(expected));
    // PCR 16 and 21-23 do not move the update counter (PC Client profile); PCR 10 does.
    expect(after.updateCounter).toBe(before.updateCounter);
    await tpm.pcrExtend(10, [{ hash: "sha256", digest }]);
    expect((await tpm.pcrRead({ hash: "sha256", pcrs: [10] })).updateCounter).toBeGreaterThan(before.updateCounter);
  });

  test("extending a PCR with a digest of the wrong size is refused before it reaches the TPM", async () => {
    expect(() => tpm.pcrExtend(23, [{ hash: "sha256", digest: new Uint8Array(20) }])).toThrow(RangeError);
  });

  test("EK is the TCG default ECC template; its name matches our own computation", async () => {
    const p = parsePublic(ek.publicArea);
    expect(p.type).toBe("ecc");
    expect(toHex(ek.name)).toBe(toHex(objectName(ek.publicArea)));
    // the default-template EK is deterministic: CreatePrimary again gives the same key
    const again = await createEk(tpm, "ecc");
    expect(toHex(again.name)).toBe(toHex(ek.name));
    await tpm.flushContext(again.handle);
  });

  for (const alg of ["ecc", "rsa"] as KeyAlg[]) {
    describe(`${alg} AK`, () => {
      let ak: LoadedObject;
      let evidence: QuoteEvidence;
      const nonce = crypto.getRandomValues(new Uint8Array(32));

      beforeAll(async () => {
        ak = await createAk(tpm, ek, alg);
        await tpm.pcrExtend(10, [{ hash: "sha256", digest: sha256(new TextEncoder().encode(`measured-${alg}`)) }]);
        evidence = await collectQuote(tpm, { ak, nonce, pcrSelection: { hash: "sha256", pcrs: quotedPcrs } });
      });
      afterAll(async () => {
        await tpm.flushContext(ak.handle);
      });

      test("AK is a restricted signing key whose TPM-reported name we can recompute", () => {
        const p = parsePublic(ak.publicArea);
        expect(p.attributes).toBe(0x00050072);
        expect(p.scheme.alg).toBe(alg === "ecc" ? TPM_ALG.ECDSA : TPM_ALG.RSASSA);
        expect(toHex(ak.name)).toBe(toHex(objectName(ak.publicArea)));
      });

      test("evidence has the agreed shape and carries the nonce", () => {
        expect(Object.keys(evidence.pcrs).map(Number)).toEqual(quotedPcrs);
        expect(evidence.pcrSelection).toEqual({ hash: "sha256", pcrs: quotedPcrs });
        expect(toHex(fromTpm2bPublic(evidence.akPublic))).toBe(toHex(ak.publicArea));
        expect(toHex(parseQuoteInfo(evidence.tpmsAttest).extraData)).toBe(toHex(nonce));
        const sigAlg = new DataView(evidence.signature.buffer, evidence.signature.byteOffset).getUint16(0);
        expect(sigAlg).toBe(alg === "ecc" ? TPM_ALG.ECDSA : TPM_ALG.RSASSA);
      });

      test("tpm2_checkquote accepts the quote", async () => {
        const res = await checkquote({ evidence, nonce });
        expect(res.output).not.toContain("ERROR");
        expect(res.ok).toBe(true);
      });

      test("tpm2_checkquote rejects a wrong nonce", async () => {
        const wrong = nonce.slice();
        wrong[0]! ^= 0xff;
        expect((await checkquote({ evidence, nonce: wrong })).ok).toBe(false);
      });

      test("tpm2_checkquote rejects a flipped signature byte", async () => {
        const signature = evidence.signature.slice();
        signature[signature.length - 1]! ^= 1;
        expect((await checkquote({ evidence: { ...evidence, signature }, nonce })).ok).toBe(false);
      });

      test("tpm2_checkquote rejects a flipped TPMS_ATTEST byte", async () => {
        const tpmsAttest = evidence.tpmsAttest.slice();
        tpmsAttest[tpmsAttest.length - 1]! ^= 1;
        expect((await checkquote({ evidence: { ...evidence, tpmsAttest }, nonce })).ok).toBe(false);
      });

      test("tpm2_checkquote rejects a changed PCR value", async () => {
        const pcrs = { ...evidence.pcrs, 23: toHex(fromHex(evidence.pcrs[23]!).map((b, i) => (i === 0 ? b ^ 1 : b))) };
        expect((await checkquote({ evidence: { ...evidence, pcrs }, nonce })).ok).toBe(false);
      });
    });
  }

  test("tpm2_checkquote rejects a quote checked against another AK", async () => {
    const akEcc = await createAk(tpm, ek, "ecc");
    const akEcc2 = await createAk(tpm, ek, "ecc");
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    try {
      const evidence = await collectQuote(tpm, { ak: akEcc, nonce, pcrSelection: { hash: "sha256", pcrs: [0, 23] } });
      expect((await checkquote({ evidence, nonce })).ok).toBe(true);
      const forged = { ...evidence, akPublic: (await collectQuote(tpm, { ak: akEcc2, nonce, pcrSelection: { hash: "sha256", pcrs: [0] } })).akPublic };
      expect((await checkquote({ evidence: forged, nonce })).ok).toBe(false);
    } finally {
      await tpm.flushContext(akEcc.handle);
      await tpm.flushContext(akEcc2.handle);
    }
  });

  test("quoting with a flushed AK handle is a typed TPM warning (REFERENCE_H0)", async () => {
    const ak = await createAk(tpm, ek, "ecc");
    await tpm.flushContext(ak.handle);
    const err = await tpm.quote(ak.handle, new Uint8Array(32), { hash: "sha256", pcrs: [0] }).catch((e) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect(err.kind).toBe("response-code");
    expect(err.command).toBe("Quote");
    expect(err.rcName).toBe("TPM_RC_REFERENCE_H0"); // warning: handle 1 is not loaded
    expect(err.decoded.warning).toBe(true);
  });

  test("a command failing inside the EK policy session does not leak the session (swtpm: 3 slots)", async () => {
    const bad = akTemplate("ecc");
    bad[bad.length - 1] = 0xff; // unique.y announces 0xff bytes that are not there
    for (let i = 0; i < 5; i++) {
      const err = await tpm.withEndorsementPolicy((s) => tpm.create(ek.handle, s, bad)).catch((e) => e);
      expect(err).toBeInstanceOf(TpmError);
    }
    const ak = await createAk(tpm, ek, "ecc");
    await tpm.flushContext(ak.handle);
  });

  test("nonce outside the accepted size is a programmer error", async () => {
    const ak = { handle: 0x80000000, publicArea: ek.publicArea, name: ek.name };
    expect(collectQuote(tpm, { ak, nonce: new Uint8Array(2), pcrSelection: { hash: "sha256", pcrs: [0] } })).rejects.toThrow(RangeError);
  });
});

describe("TPM2_Sign", () => {
  /** Unrestricted ECC P-256 signing key, ECDSA/SHA-256 scheme, empty auth. */
  function signingTemplate(): Uint8Array {
    const A = TPMA_OBJECT;
    const w = new TpmWriter(256);
    w.u16(TPM_ALG.ECC).u16(TPM_ALG.SHA256).u32(A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.sign).tpm2b();
    w.u16(TPM_ALG.NULL).u16(TPM_ALG.ECDSA).u16(TPM_ALG.SHA256).u16(TPM_ECC_NIST_P256).u16(TPM_ALG.NULL).tpm2b().tpm2b();
    return w.finish();
  }

  test("an unrestricted key signs a software digest with a NULL ticket; the signature verifies outside", async () => {
    const key = await tpm.createPrimary(TPM_RH.OWNER, signingTemplate());
    try {
      const message = new TextEncoder().encode("grey sign test");
      const sig = await tpm.sign(key.handle, sha256(message));
      expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
      expect(sig.hashAlg).toBe(TPM_ALG.SHA256);
      const raw = Buffer.concat([leftPad(sig.ecdsa!.r, 32), leftPad(sig.ecdsa!.s, 32)]);
      const pub = publicKeyObject(key.publicArea);
      expect(nodeVerify("sha256", message, { key: pub, dsaEncoding: "ieee-p1363" }, raw)).toBe(true);
      expect(nodeVerify("sha256", new TextEncoder().encode("other"), { key: pub, dsaEncoding: "ieee-p1363" }, raw)).toBe(false);
    } finally {
      await tpm.flushContext(key.handle);
    }
  });

  test("a restricted key (AK) refuses to sign an external digest with a NULL ticket", async () => {
    const ak = await tpm.createPrimary(TPM_RH.ENDORSEMENT, akTemplate("ecc"));
    try {
      const err = await tpm.sign(ak.handle, sha256(new Uint8Array(1))).catch((e) => e);
      expect(err).toBeInstanceOf(TpmError);
      expect(err.kind).toBe("response-code");
    } finally {
      await tpm.flushContext(ak.handle);
    }
  });
});
