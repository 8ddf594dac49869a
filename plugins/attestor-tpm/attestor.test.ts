import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { bindingDigest256 } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import type { EvidenceBinding } from "../sdk/attestor.ts";
import { parseTpmSpec, readAk, tpmQuoteAttestor, TPM_QUOTE_FORMAT, withAk } from "./attestor.ts";
import { startSwtpm, type Swtpm } from "./testing/swtpm.ts";

const noop = () => {};
const components = { logger: { debug: noop, info: noop, warn: noop, error: noop }, clock: { now: Date.now } };
const binding = (n = 1): EvidenceBinding => ({ nonce: new Uint8Array(32).fill(n), peerId: "12D3KooWtest", subjectPublicKey: new Uint8Array([48, 3, 1, 2, 3]) });

describe("tpm2-quote attestor against swtpm", () => {
  let sw: Swtpm;
  let spec: string;
  beforeAll(async () => {
    sw = await startSwtpm();
    spec = `swtpm:${sw.host}:${sw.port}`;
  });
  afterAll(async () => {
    await sw?.stop();
  });

  test("collect → verify: every check passes; claims carry the AK name and PCRs", async () => {
    const a = tpmQuoteAttestor({ tpm: spec, pcrs: [0, 7, 16] })(components);
    const ev = await a.collect!(binding(), {});
    expect(ev.format).toBe(TPM_QUOTE_FORMAT);
    const r = await a.verify!(ev, binding(), new Date());
    expect(r.failed).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.name)).toContain("nonce");
    const ak = await readAk(spec);
    expect(r.claims["ak.name"]).toBe(ak.name);
    expect(r.claims["pcr.sha256.16"]).toBe("00".repeat(32));
    expect(r.claims.platform).toBe("tpm2");
  });

  test("the AK is deterministic: the same TPM presents the same AK name on every open", async () => {
    expect((await readAk(spec)).name).toBe((await readAk(spec)).name);
  });

  test("binding enforced: other nonce, peer id or subject key → nonce", async () => {
    const a = tpmQuoteAttestor({ tpm: spec, pcrs: [16] })(components);
    const ev = await a.collect!(binding(), {});
    expect((await a.verify!(ev, binding(2), new Date())).failed).toBe("nonce");
    expect((await a.verify!(ev, { ...binding(), peerId: "12D3KooWother" }, new Date())).failed).toBe("nonce");
    expect((await a.verify!(ev, { ...binding(), subjectPublicKey: new Uint8Array([1]) }, new Date())).failed).toBe("nonce");
  });

  test("a PCR value changed after the quote → pcr-digest; a forged quote → signature; garbage → structure", async () => {
    const a = tpmQuoteAttestor({ tpm: spec, pcrs: [16] })(components);
    const ev = await a.collect!(binding(), {});
    const parts = decodeCbor(ev.data) as Record<string, unknown> & { pcrs: Record<string, Uint8Array>; signature: Uint8Array };
    const changed = { ...parts, pcrs: { "16": new Uint8Array(32).fill(9) } };
    expect((await a.verify!({ format: ev.format, data: encodeCbor(changed) }, binding(), new Date())).failed).toBe("pcr-digest");
    const sig = new Uint8Array(parts.signature);
    sig[sig.length - 3]! ^= 1;
    expect((await a.verify!({ format: ev.format, data: encodeCbor({ ...parts, signature: sig }) }, binding(), new Date())).failed).toBe("signature");
    expect((await a.verify!({ format: ev.format, data: encodeCbor({ x: 1 }) }, binding(), new Date())).failed).toBe("structure");
  });

  test("extending a PCR changes the quoted value", async () => {
    const a = tpmQuoteAttestor({ tpm: spec, pcrs: [16] })(components);
    const before = await a.verify!(await a.collect!(binding(), {}), binding(), new Date());
    await withAk(spec, {}, (tpm) => tpm.pcrExtend(16, [{ hash: "sha256", digest: new Uint8Array(32).fill(1) }]));
    const after = await a.verify!(await a.collect!(binding(), {}), binding(), new Date());
    expect(after.ok).toBe(true);
    expect(after.claims["pcr.sha256.16"]).not.toBe(before.claims["pcr.sha256.16"]);
    expect(bindingDigest256(binding()).length).toBe(32);
  });
});

test("transport spec parsing", () => {
  expect(parseTpmSpec("swtpm:127.0.0.1:2321")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 2321 });
  expect(parseTpmSpec("/dev/tpmrm0")).toEqual({ kind: "device", path: "/dev/tpmrm0" });
  expect(() => parseTpmSpec("tcp:1")).toThrow(/swtpm:HOST:PORT/);
  expect(() => tpmQuoteAttestor({ pcrs: [24] })).toThrow(/pcrs\[0\]/);
});
