import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { makeCredential, kdfa } from "./credential.ts";
import { TpmError } from "./errors.ts";
import { createAk, createEk } from "./keys.ts";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TpmReader, fromHex, toHex } from "./marshal.ts";
import { ekTemplate, objectName, toTpm2bPublic, type KeyAlg } from "./public.ts";
import { TPM_RH } from "./spec.ts";
import { TPM_RC } from "./rc.ts";
import { requireTools, startSwtpm, type Swtpm } from "./testing/swtpm.ts";
import { Tpm, type LoadedObject } from "./tpm.ts";
import { tcpTransport } from "./transport.ts";

let swtpm: Swtpm;
let tpm: Tpm;

beforeAll(async () => {
  requireTools(["swtpm", "tpm2_makecredential"]);
  swtpm = await startSwtpm();
  tpm = new Tpm({ transport: tcpTransport({ host: swtpm.host, port: swtpm.port }), readTimeoutMs: 10_000 });
  await tpm.ensureStarted();
});

afterAll(async () => {
  await tpm?.close();
  await swtpm?.stop();
});

test("KDFa is SP 800-108 counter-mode HMAC with a NUL-terminated label", () => {
  // Independent computation: HMAC-SHA256(key, 00000001 || "STORAGE\0" || ctxU || ctxV || 00000080)[:16]
  const key = fromHex("00".repeat(32));
  const out = kdfa("sha256", key, "STORAGE", fromHex("0102"), new Uint8Array(0), 128);
  const hmac = new Bun.CryptoHasher("sha256", key)
    .update(fromHex("00000001" + Buffer.from("STORAGE\0").toString("hex") + "0102" + "00000080"))
    .digest();
  expect(toHex(out)).toBe(toHex(new Uint8Array(hmac).subarray(0, 16)));
});

for (const ekAlg of ["rsa", "ecc"] as KeyAlg[]) {
  describe(`credential activation with an ${ekAlg.toUpperCase()} EK`, () => {
    let ek: LoadedObject;
    let ak: LoadedObject;

    beforeAll(async () => {
      ek = await createEk(tpm, ekAlg);
      ak = await createAk(tpm, ek, "ecc");
    });
    afterAll(async () => {
      await tpm.flushContext(ak.handle);
      await tpm.flushContext(ek.handle);
    });

    test("software MakeCredential → ActivateCredential on the TPM returns the secret", async () => {
      const secret = crypto.getRandomValues(new Uint8Array(32));
      // the verifier computes the AK name from the AK public area, not from what the agent claims
      const { idObject, encryptedSecret } = makeCredential(ek.publicArea, objectName(ak.publicArea), secret);
      const recovered = await tpm.activateCredential(ak.handle, ek.handle, idObject, encryptedSecret);
      expect(toHex(recovered)).toBe(toHex(secret));
    });

    test("a credential bound to another object's name fails the integrity check", async () => {
      const wrongName = objectName(ak.publicArea);
      wrongName[wrongName.length - 1]! ^= 1;
      const { idObject, encryptedSecret } = makeCredential(ek.publicArea, wrongName, new Uint8Array(32).fill(5));
      const err = await tpm.activateCredential(ak.handle, ek.handle, idObject, encryptedSecret).catch((e) => e);
      expect(err).toBeInstanceOf(TpmError);
      expect(err.kind).toBe("response-code");
      expect(err.command).toBe("ActivateCredential");
      expect(err.is(TPM_RC.INTEGRITY)).toBe(true);
    });

    test("a credential sealed to a different EK cannot be activated", async () => {
      const otherEkArea = (await createOtherEk()).publicArea;
      const { idObject, encryptedSecret } = makeCredential(otherEkArea, objectName(ak.publicArea), new Uint8Array(32).fill(6));
      const err = await tpm.activateCredential(ak.handle, ek.handle, idObject, encryptedSecret).catch((e) => e);
      expect(err).toBeInstanceOf(TpmError);
      expect(err.kind).toBe("response-code");
    });

    test("a credential made by tpm2-tools' software tpm2_makecredential activates with our client", async () => {
      const dir = await mkdtemp(join(tmpdir(), "grey-mkcred-"));
      try {
        const secret = crypto.getRandomValues(new Uint8Array(32));
        await writeFile(join(dir, "ek.pub"), toTpm2bPublic(ek.publicArea));
        await writeFile(join(dir, "secret"), secret);
        const p = Bun.spawn(
          ["tpm2_makecredential", "-T", "none", "-u", join(dir, "ek.pub"), "-s", join(dir, "secret"), "-n", toHex(objectName(ak.publicArea)), "-o", join(dir, "cred")],
          { stdout: "ignore", stderr: "pipe" },
        );
        expect(await p.exited, await new Response(p.stderr).text()).toBe(0);
        // file: magic BADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET
        const r = new TpmReader(new Uint8Array(await readFile(join(dir, "cred"))));
        expect(r.u32()).toBe(0xbadcc0de);
        expect(r.u32()).toBe(1);
        const idObject = r.tpm2b();
        const encryptedSecret = r.tpm2b();
        expect(toHex(await tpm.activateCredential(ak.handle, ek.handle, idObject, encryptedSecret))).toBe(toHex(secret));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    /** An EK of the same type from another "TPM": same template, different unique field. */
    async function createOtherEk(): Promise<LoadedObject> {
      const t = ekTemplate(ekAlg);
      t[t.length - 1] = 1; // unique is the last field: a different seed input gives a different key
      const other = await tpm.createPrimary(TPM_RH.ENDORSEMENT, t);
      await tpm.flushContext(other.handle);
      return other;
    }
  });
}

test("a secret longer than the EK's digest is refused in software", async () => {
  const ek = await createEk(tpm, "ecc");
  await tpm.flushContext(ek.handle);
  expect(() => makeCredential(ek.publicArea, new Uint8Array(34), new Uint8Array(33))).toThrow(RangeError);
});
