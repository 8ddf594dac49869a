import { beforeAll, describe, expect, test } from "bun:test";
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import { generateKeyPair as generateLibp2pKey } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { MalformedInputError, UnauthorizedError } from "./errors.ts";
import {
  adminUri,
  caFingerprint,
  derToPem,
  hubUri,
  memberUri,
  parseFederationUri,
  peerUri,
  pemToDer,
  verifyFederationCert,
} from "./identity.ts";
import { certValidity, createCaCert, createLeafCert, type GeneralNameSpec } from "../../hub/ca/issue.ts";
import { generateKeyPair } from "../../hub/ca/keys.ts";

const now = new Date("2030-01-01T00:00:00Z");
const hour = 3600_000;
type Signer = { cert: Awaited<ReturnType<typeof createCaCert>>; privateKey: CryptoKey };
let ca: Signer;
let caDer: Uint8Array;
let peerId: string;

async function makeCa(org = "acme"): Promise<Signer> {
  const keys = await generateKeyPair();
  return { cert: await createCaCert(keys, org, certValidity(now, 10 * 365 * 24 * hour)), privateKey: keys.privateKey };
}

async function leaf(names: GeneralNameSpec[], opts: { signer?: Signer; from?: Date; ttlMs?: number; key?: CryptoKey } = {}) {
  const publicKey = opts.key ?? (await generateKeyPair()).publicKey;
  const cert = await createLeafCert({
    ca: opts.signer ?? ca,
    publicKey,
    subject: "CN=test",
    names,
    purposes: ["client", "server"],
    ...certValidity(opts.from ?? now, opts.ttlMs ?? hour),
  });
  return new Uint8Array(cert.rawData);
}

beforeAll(async () => {
  ca = await makeCa();
  caDer = new Uint8Array(ca.cert.rawData);
  peerId = peerIdFromPrivateKey(await generateLibp2pKey("Ed25519")).toString();
});

describe("federation URIs", () => {
  test("build and parse the three shapes", () => {
    expect(parseFederationUri(memberUri("acme", "eu-west", "edge-7"))).toEqual({ role: "member", org: "acme", region: "eu-west", cluster: "edge-7" });
    expect(parseFederationUri(hubUri("acme", "hub-1"))).toEqual({ role: "hub", org: "acme", name: "hub-1" });
    expect(parseFederationUri(adminUri("acme", "ops"))).toEqual({ role: "admin", org: "acme", name: "ops" });
    expect(peerUri(peerId)).toBe(`libp2p:peer:${peerId}`);
  });
  test("refuses bad names and shapes", () => {
    for (const bad of ["grey://Acme/r/c", "grey://acme/r", "grey://acme/r/c/d", "http://acme/r/c", "grey://acme/_hub/", "grey://acme/r/-c"]) {
      expect(() => parseFederationUri(bad)).toThrow(MalformedInputError);
    }
    expect(() => memberUri("acme", "eu west", "c")).toThrow(MalformedInputError);
    expect(() => peerUri("not a peer id")).toThrow(MalformedInputError);
  });
});

describe("PEM and fingerprint", () => {
  test("round trip, labels, garbage", () => {
    const pem = derToPem(caDer);
    expect(pem.startsWith("-----BEGIN CERTIFICATE-----\n")).toBe(true);
    expect(pem.split("\n").every((l) => l.length <= 64)).toBe(true);
    expect(pemToDer(pem)).toEqual(caDer);
    expect(pemToDer(`junk before\n${pem}junk after`, "CERTIFICATE")).toEqual(caDer);
    expect(() => pemToDer(pem, "PRIVATE KEY")).toThrow(MalformedInputError);
    expect(() => pemToDer("nothing here")).toThrow(MalformedInputError);
    expect(() => pemToDer("-----BEGIN X-----\n!!!!\n-----END X-----")).toThrow(MalformedInputError);
  });
  test("fingerprint is lowercase hex sha256 of the DER", () => {
    expect(caFingerprint(caDer)).toBe(createHash("sha256").update(caDer).digest("hex"));
    expect(caFingerprint(caDer)).toMatch(/^[0-9a-f]{64}$/);
  });
  test("certificates verify under node's own X.509 implementation too", async () => {
    const der = await leaf([{ type: "url", value: memberUri("acme", "r", "c") }, { type: "url", value: peerUri(peerId) }]);
    expect(new NodeX509(derToPem(der)).verify(new NodeX509(derToPem(caDer)).publicKey)).toBe(true);
  });
});

describe("verifyFederationCert", () => {
  const member = () => [
    { type: "url" as const, value: memberUri("acme", "eu-west", "edge-7") },
    { type: "url" as const, value: peerUri(peerId) },
  ];

  test("member", async () => {
    const id = await verifyFederationCert(await leaf(member()), caDer, now);
    expect(id).toMatchObject({ role: "member", org: "acme", region: "eu-west", cluster: "edge-7", peerId });
    expect(id.serial).toMatch(/^[0-9a-f]{32}$/);
    expect(id.notAfter.getTime()).toBe(now.getTime() + hour);
    expect(id.notBefore.getTime()).toBeLessThan(now.getTime());
  });

  test("hub (with DNS/IP SANs alongside) and admin", async () => {
    const hub = await leaf([
      { type: "url", value: hubUri("acme", "hub-1") },
      { type: "url", value: peerUri(peerId) },
      { type: "dns", value: "localhost" },
      { type: "ip", value: "127.0.0.1" },
    ]);
    expect(await verifyFederationCert(hub, caDer, now)).toMatchObject({ role: "hub", org: "acme", name: "hub-1", peerId });
    const admin = await verifyFederationCert(await leaf([{ type: "url", value: adminUri("acme", "ops") }]), caDer, now);
    expect(admin).toMatchObject({ role: "admin", org: "acme", name: "ops" });
    expect(admin.peerId).toBeUndefined();
  });

  const refusals: [string, () => Promise<[Uint8Array, Uint8Array, Date]>, RegExp][] = [
    ["expired", async () => [await leaf(member()), caDer, new Date(now.getTime() + 2 * hour)], /expired/],
    ["not yet valid", async () => [await leaf(member(), { from: new Date(now.getTime() + hour) }), caDer, now], /not yet valid/],
    ["other CA, same name", async () => [await leaf(member(), { signer: await makeCa("acme") }), caDer, now], /signature/],
    ["other CA, other name", async () => [await leaf(member(), { signer: await makeCa("evil") }), caDer, now], /issuer/],
    ["no SAN at all", async () => [await leaf([{ type: "dns", value: "x" }]), caDer, now], /exactly one grey/],
    ["two grey SANs", async () => [await leaf([...member(), { type: "url", value: memberUri("acme", "r", "other") }]), caDer, now], /exactly one grey/],
    ["malformed grey SAN", async () => [await leaf([{ type: "url", value: "grey://ACME/r/c" }, { type: "url", value: peerUri(peerId) }]), caDer, now], /malformed/],
    ["member without peer", async () => [await leaf([{ type: "url", value: memberUri("acme", "r", "c") }]), caDer, now], /peer/],
    ["admin with peer", async () => [await leaf([{ type: "url", value: adminUri("acme", "a") }, { type: "url", value: peerUri(peerId) }]), caDer, now], /admin/],
    ["leaf used as CA", async () => { const l = await leaf(member()); return [l, l, now]; }, /not a CA/],
    ["CA cert presented as identity", async () => [caDer, caDer, now], /CA certificate|grey/],
    ["CA expired", async () => [await leaf(member()), caDer, new Date(now.getTime() + 11 * 365 * 24 * hour)], /expired/],
    [
      "P-384 leaf key",
      async () => {
        const k = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"])) as CryptoKeyPair;
        return [await leaf(member(), { key: k.publicKey }), caDer, now];
      },
      /P-256/,
    ],
  ];
  for (const [name, make, message] of refusals) {
    test(`refuses: ${name}`, async () => {
      const [cert, caCert, at] = await make();
      const err = await verifyFederationCert(cert, caCert, at).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnauthorizedError);
      expect((err as Error).message).toMatch(message);
    });
  }

  test("tampered signature and malformed DER", async () => {
    const der = await leaf(member());
    const tampered = der.slice();
    tampered[tampered.length - 5]! ^= 0x01;
    await expect(verifyFederationCert(tampered, caDer, now)).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(verifyFederationCert(new Uint8Array([1, 2, 3]), caDer, now)).rejects.toBeInstanceOf(MalformedInputError);
    await expect(verifyFederationCert(der.subarray(0, 100), caDer, now)).rejects.toBeInstanceOf(MalformedInputError);
    await expect(verifyFederationCert(der, new Uint8Array(0), now)).rejects.toBeInstanceOf(MalformedInputError);
    // A view into a larger buffer (as Node hands out pooled Buffers) parses like a copy.
    const padded = new Uint8Array(der.byteLength + 20);
    padded.set(der, 7);
    expect((await verifyFederationCert(padded.subarray(7, 7 + der.byteLength), caDer, now)).role).toBe("member");
  });
});
