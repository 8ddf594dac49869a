import { describe, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { devAttestor } from "../attestor-dev/index.ts";
import type { Attestor } from "../sdk/attestor.ts";
import { ConfigError, PluginError } from "../sdk/errors.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { Catalog } from "./catalog.ts";

const host = { logger: { debug() {}, info() {}, warn() {}, error() {} }, clock: { now: () => Date.now() } };

function fake(over: Partial<Attestor>): Attestor {
  return { name: "fake", kind: "attestor", apiVersion: PLUGIN_API_VERSION, format: "fake", ...over } as Attestor;
}

async function binding() {
  const key = await generateKeyPair("Ed25519");
  return { key, b: { nonce: crypto.getRandomValues(new Uint8Array(32)), peerId: peerIdFromPrivateKey(key).toString(), subjectPublicKey: new Uint8Array([1, 2, 3]) } };
}

describe("catalog", () => {
  test("refuses wrong API version, duplicates, and empty attestor set", () => {
    const c = new Catalog();
    expect(() => c.add(fake({ apiVersion: 99 }))).toThrow(PluginError);
    expect(() => c.seal()).toThrow(ConfigError);
    c.add(fake({}));
    expect(() => c.add(fake({}))).toThrow(/loaded twice/);
    expect(() => c.add(fake({ name: "other" }))).toThrow(/already provided/);
    c.seal();
    expect(c.list()).toEqual([{ name: "fake", kind: "attestor", apiVersion: PLUGIN_API_VERSION, format: "fake" }]);
  });

  test("a throwing or lying verifier yields a failed result, never a crash", async () => {
    const { b } = await binding();
    const c = new Catalog();
    c.add(fake({ verify: async () => { throw new Error("boom"); } }));
    c.add(fake({ name: "liar", format: "liar", verify: async () => ({ format: "liar", ok: true, checks: [{ name: "x", ok: false }], claims: {} }) }));
    const r1 = await c.verify({ format: "fake", data: new Uint8Array(1) }, b, new Date());
    expect(r1).toMatchObject({ ok: false, failed: "verifier" });
    const r2 = await c.verify({ format: "liar", data: new Uint8Array(1) }, b, new Date());
    expect(r2).toMatchObject({ ok: false, failed: "verifier" });
    const r3 = await c.verify({ format: "unknown", data: new Uint8Array(1) }, b, new Date());
    expect(r3).toMatchObject({ ok: false, failed: "format" });
  });

  test("collect output is validated", async () => {
    const { b } = await binding();
    const c = new Catalog();
    c.add(fake({ collect: async () => ({ format: "other", data: new Uint8Array(1) }) }));
    await expect(c.collect("fake", b)).rejects.toThrow(PluginError);
  });

  test("dev attestor round trip through the catalog, and forged/replayed evidence fails", async () => {
    const { key, b } = await binding();
    const identity = { publicKey: key.publicKey.raw, sign: async (d: Uint8Array) => await key.sign(d) };
    const c = new Catalog();
    c.add(devAttestor()({ ...host, identity }));
    const ev = await c.collect("dev", b);
    const now = new Date();
    expect(await c.verify(ev, b, now)).toMatchObject({ ok: true, claims: { platform: "dev" } });
    // replay against a different nonce
    const other = { ...b, nonce: crypto.getRandomValues(new Uint8Array(32)) };
    expect(await c.verify(ev, other, now)).toMatchObject({ ok: false, failed: "signature" });
    // another node's key
    const { b: b2 } = await binding();
    expect(await c.verify(ev, { ...b, peerId: b2.peerId }, now)).toMatchObject({ ok: false, failed: "peer-binding" });
    // different certified key
    expect(await c.verify(ev, { ...b, subjectPublicKey: new Uint8Array([9]) }, now)).toMatchObject({ ok: false, failed: "signature" });
    // garbage
    expect(await c.verify({ format: "dev", data: new Uint8Array([0xff, 0x00]) }, b, now)).toMatchObject({ ok: false, failed: "structure" });
  });
});
