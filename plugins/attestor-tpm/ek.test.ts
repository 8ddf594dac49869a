/**
 * EK trust for tpm2-quote evidence, on swtpm: the EK (and its NV certificate on a manufactured
 * swtpm) travels with the quote, the hub checks it and seals a secret to it for the AK's Name, and
 * only the same TPM recovers the secret (TPM2_ActivateCredential through our client).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { vectorPath } from "../../attest/testing/vectors.ts";
import { pemBlocks } from "../../attest/x509/cert.ts";
import { bindingDigest256 } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import type { EvidenceBinding } from "../sdk/attestor.ts";
import { readAk, readEk, tpmQuoteAttestor } from "./attestor.ts";
import { TpmError } from "./errors.ts";
import { startSwtpm, type SwtpmWithCa } from "./testing/swtpm.ts";

const noop = () => {};
const components = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };
const binding: EvidenceBinding = { nonce: new Uint8Array(32).fill(3), peerId: "12D3KooWtest", subjectPublicKey: new Uint8Array([48, 3, 1, 2, 3]) };
const timingSafe = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("EK in tpm2-quote evidence and credential activation (swtpm)", () => {
  let plain: SwtpmWithCa;
  let made: SwtpmWithCa;
  const spec = (sw: SwtpmWithCa) => `swtpm:${sw.host}:${sw.port}`;
  beforeAll(async () => {
    [plain, made] = await Promise.all([startSwtpm(), startSwtpm({ ekCert: true })]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([plain?.stop(), made?.stop()]);
  });

  test("evidence carries the EK; verify names it; a TPM without NV certificate has ek.trust=key", async () => {
    const a = tpmQuoteAttestor({ tpm: spec(plain), pcrs: [16] })(components);
    const ev = await a.collect!(binding);
    const parts = decodeCbor(ev.data) as Record<string, unknown>;
    expect(parts.ekPublic).toBeInstanceOf(Uint8Array);
    expect(parts.ekCert).toBeUndefined();
    const r = await a.verify!(ev, binding, new Date());
    expect(r.failed).toBeUndefined();
    const ek = await readEk(spec(plain));
    expect(ek.certificate).toBe(false);
    expect(r.claims["ek.name"]).toBe(ek.name);
    expect(r.claims["ek.trust"]).toBe("key");
    expect(r.checks.map((c) => c.name)).toContain("ek.attributes");
  });

  test("challenge → activate → the same secret, on the TPM that quoted", async () => {
    const a = tpmQuoteAttestor({ tpm: spec(plain) })(components);
    const ev = await a.collect!(binding);
    const { challenge, secret } = await a.challenge!(ev);
    expect(secret.byteLength).toBe(32);
    expect(timingSafe(await a.activate!(challenge), secret)).toBe(true);
  });

  test("another TPM cannot activate: a challenge for one TPM's EK fails with TPM_RC_INTEGRITY-class errors on the other", async () => {
    const hub = tpmQuoteAttestor({})(components);
    const ev = await tpmQuoteAttestor({ tpm: spec(plain) })(components).collect!(binding);
    const { challenge } = await hub.challenge!(ev);
    const err = await tpmQuoteAttestor({ tpm: spec(made) })(components).activate!(challenge).catch((e) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect((err as TpmError).kind).toBe("response-code");
  });

  test("an AK Name that is not the quoting AK's (evidence with another AK) does not activate", async () => {
    const ev = await tpmQuoteAttestor({ tpm: spec(plain) })(components).collect!(binding);
    const parts = decodeCbor(ev.data) as Record<string, Uint8Array>;
    // the hub seals to this TPM's EK but for the RSA AK's Name: the agent's ECC AK does not match
    const rsaAk = await tpmQuoteAttestor({ tpm: spec(plain), akAlg: "rsa" })(components).collect!(binding);
    const forged = { format: ev.format, data: encodeCbor({ ...parts, akPublic: (decodeCbor(rsaAk.data) as Record<string, Uint8Array>).akPublic }) };
    const { challenge } = await tpmQuoteAttestor({})(components).challenge!(forged);
    const err = await tpmQuoteAttestor({ tpm: spec(plain) })(components).activate!(challenge).catch((e) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect((err as TpmError).rcName).toContain("INTEGRITY");
  });

  test("manufactured swtpm: the EK certificate from NV 0x01c00002 chains to swtpm_localca and certifies the EK", async () => {
    const ek = await readEk(spec(made));
    expect(ek.certificate).toBe(true);
    const roots = pemBlocks(made.ekCa!);
    expect(roots.length).toBe(2);
    const hub = tpmQuoteAttestor({ ekRoots: roots })(components);
    const ev = await tpmQuoteAttestor({ tpm: spec(made), pcrs: [16] })(components).collect!(binding);
    const r = await hub.verify!(ev, binding, new Date());
    expect(r.failed).toBeUndefined();
    expect(r.claims["ek.trust"]).toBe("certificate");
    expect(r.claims["ek.name"]).toBe(ek.name);
    expect(r.checks.find((c) => c.name === "ek.binding")?.ok).toBe(true);
    // the same cert with the plain TPM's EK: ek.binding fails
    const other = decodeCbor((await tpmQuoteAttestor({ tpm: spec(plain), pcrs: [16] })(components).collect!(binding)).data) as Record<string, Uint8Array>;
    const mixed = { format: ev.format, data: encodeCbor({ ...(decodeCbor(ev.data) as Record<string, Uint8Array>), ekPublic: other.ekPublic }) };
    expect((await hub.verify!(mixed, binding, new Date())).failed).toBe("ek.binding");
    // roots that did not sign it: ek.cert.anchor
    const unrelated = pemBlocks(readFileSync(vectorPath("aws-nitro-enclaves/aws_nitro_enclaves_root_g1.pem"), "utf8"));
    const plainRoots = tpmQuoteAttestor({ ekRoots: unrelated })(components);
    expect((await plainRoots.verify!(ev, binding, new Date())).failed).toBe("ek.cert.anchor");
    // and the activation round trip works with the persisted EK too
    const a = tpmQuoteAttestor({ tpm: spec(made) })(components);
    const { challenge, secret } = await hub.challenge!(ev);
    expect(timingSafe(await a.activate!(challenge), secret)).toBe(true);
    // the AK is still the deterministic primary
    expect(r.claims["ak.name"]).toBe((await readAk(spec(made))).name);
  }, 30_000);

  test("evidence without an EK (older agents) verifies, and has no challenge", async () => {
    const ev = await tpmQuoteAttestor({ tpm: spec(plain) })(components).collect!(binding);
    const { ekPublic: _, ...old } = decodeCbor(ev.data) as Record<string, Uint8Array>;
    const oldEv = { format: ev.format, data: encodeCbor(old) };
    const hub = tpmQuoteAttestor({})(components);
    const r = await hub.verify!(oldEv, binding, new Date());
    expect(r.ok).toBe(true);
    expect(r.claims["ek.name"]).toBeUndefined();
    await expect(hub.challenge!(oldEv)).rejects.toThrow(/no EK/);
    expect(bindingDigest256(binding).byteLength).toBe(32);
  });
});
