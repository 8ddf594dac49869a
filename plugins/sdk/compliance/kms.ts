/**
 * Compliance suite for KMS plugins (sdk/kms.ts): envelope round trip, tamper and context
 * (AAD) negatives, rotation keeps old wraps readable and moves new wraps to the new version,
 * and an unreachable key service is a KmsUnavailableError (matched by name), promptly.
 *
 *   kmsCompliance("kms-aws", async () => ({ kms, unreachable, stop }));
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Catalog } from "../../host/catalog.ts";
import { dataKeyBytes, type Kms, type WrappedKey } from "../kms.ts";
import { PLUGIN_API_VERSION } from "../plugin.ts";

export interface KmsHarness {
  kms: Kms;
  /** An instance whose key service cannot be reached. */
  unreachable?: Kms;
  stop(): Promise<void> | void;
}

const ctx = { context: { purpose: "grey/compliance" } };

export function kmsCompliance(name: string, setup: () => Promise<KmsHarness>, options: { unreachableMs?: number } = {}): void {
  describe(`kms compliance: ${name}`, () => {
    let h: KmsHarness;
    beforeAll(async () => {
      h = await setup();
      await h.kms.start?.();
    });
    afterAll(async () => {
      await h.kms.stop?.();
      await h.stop();
    });

    test("declares itself; the catalog accepts it", () => {
      expect(h.kms.kind).toBe("kms");
      expect(h.kms.apiVersion).toBe(PLUGIN_API_VERSION);
      const c = new Catalog();
      c.add(h.kms);
      expect(c.kms()).toHaveLength(1);
    });

    test("generateDataKey: 32 fresh bytes that unwrap to themselves", async () => {
      const a = await h.kms.generateDataKey(ctx);
      const b = await h.kms.generateDataKey(ctx);
      expect(a.plaintext.byteLength).toBe(dataKeyBytes);
      expect(Buffer.from(a.plaintext).equals(Buffer.from(b.plaintext))).toBe(false);
      expect(a.wrapped.kms).toBe(h.kms.name);
      expect(await h.kms.unwrap(a.wrapped, ctx)).toEqual(a.plaintext);
    });

    test("wrap/unwrap a caller's key", async () => {
      const key = crypto.getRandomValues(new Uint8Array(32));
      expect(await h.kms.unwrap(await h.kms.wrap(key, ctx), ctx)).toEqual(key);
    });

    test("forged: a tampered wrapped key is refused (KmsRefusedError)", async () => {
      const w = await h.kms.wrap(crypto.getRandomValues(new Uint8Array(32)), ctx);
      const ct = new Uint8Array(w.ciphertext);
      ct[ct.length - 1]! ^= 1;
      await expect(h.kms.unwrap({ ...w, ciphertext: ct }, ctx)).rejects.toMatchObject({ name: "KmsRefusedError" });
      const ct2 = new Uint8Array(w.ciphertext);
      ct2[Math.floor(ct2.length / 2)]! ^= 0x80;
      await expect(h.kms.unwrap({ ...w, ciphertext: ct2 }, ctx)).rejects.toMatchObject({ name: "KmsRefusedError" });
    });

    test("wrong context (AAD) is refused", async () => {
      const w = await h.kms.wrap(crypto.getRandomValues(new Uint8Array(32)), ctx);
      await expect(h.kms.unwrap(w, { context: { purpose: "something-else" } })).rejects.toMatchObject({ name: "KmsRefusedError" });
    });

    test("unknown key id is refused", async () => {
      const w = await h.kms.wrap(crypto.getRandomValues(new Uint8Array(32)), ctx);
      const bogus: WrappedKey = { ...w, keyId: `${w.keyId}-does-not-exist` };
      await expect(h.kms.unwrap(bogus, ctx)).rejects.toMatchObject({ name: "KmsRefusedError" });
    });

    test("rotate: new wraps use the new version, old wraps still unwrap", async () => {
      const key = crypto.getRandomValues(new Uint8Array(32));
      const before = await h.kms.wrap(key, ctx);
      const newId = await h.kms.rotate();
      const after = await h.kms.wrap(key, ctx);
      expect(after.keyId).toBe(newId);
      expect(after.keyId).not.toBe(before.keyId);
      expect(await h.kms.unwrap(before, ctx)).toEqual(key);
      expect(await h.kms.unwrap(after, ctx)).toEqual(key);
    });

    test("unreachable key service: KmsUnavailableError, promptly", async () => {
      if (!h.unreachable) return;
      const started = performance.now();
      await expect(h.unreachable.generateDataKey(ctx)).rejects.toMatchObject({ name: "KmsUnavailableError" });
      await expect(h.unreachable.unwrap({ kms: h.unreachable.name, keyId: "x", ciphertext: new Uint8Array(40) }, ctx)).rejects.toMatchObject({ name: "KmsUnavailableError" });
      expect(performance.now() - started).toBeLessThan(options.unreachableMs ?? 12_000);
    });
  });
}
