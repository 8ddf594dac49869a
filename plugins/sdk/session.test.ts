import { describe, expect, test } from "bun:test";
import { ed25519 } from "@noble/curves/ed25519.js";
import { UnauthorizedError } from "./errors.ts";
import {
  attestationDigest, initiateSession, respondSession, SessionReplayError, SessionTamperError, ZERO_DIGEST,
  type LocalParty, type SessionHello,
} from "./session.ts";

function party(name: string, attestation = attestationDigest({ format: "dev", ok: true, who: name })): LocalParty & { secret: Uint8Array } {
  const secret = ed25519.utils.randomSecretKey();
  return { secret, idKey: ed25519.getPublicKey(secret), sign: async (d) => ed25519.sign(d, secret), cert: new TextEncoder().encode(`cert:${name}`), attestation };
}

const clock = { t: 0, now() { return this.t; } };
const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
/** The check a real caller makes: the hello's key is the one we expect (peer id), its digest the one we hold. */
const expectKey = (key: Uint8Array, digest?: Uint8Array) => (h: SessionHello) => {
  if (!same(h.idKey, key)) throw new UnauthorizedError("identity key is not the expected peer's");
  if (digest && !same(h.attestation, digest)) throw new UnauthorizedError("attestation digest differs");
};

async function pair(opts: { rotateAfterMessages?: number; onReject?: (r: string) => void } = {}) {
  const a = party("hub");
  const b = party("agent");
  const init = initiateSession(a, { clock, seen: b.attestation, ...opts });
  const resp = await respondSession(b, init.hello, expectKey(a.idKey), { clock, ...opts });
  const { sig, session: sa } = await init.finish(resp.hello, resp.sig, expectKey(b.idKey, b.attestation));
  const sb = resp.complete(sig);
  return { a, b, sa, sb };
}

describe("attested session", () => {
  test("both directions round-trip, binding both identities and digests", async () => {
    const { a, b, sa, sb } = await pair();
    expect(same(sa.id, sb.id)).toBe(true);
    expect(same(sa.remote.idKey, b.idKey)).toBe(true);
    expect(same(sb.remote.idKey, a.idKey)).toBe(true);
    expect(same(sb.remote.seen, b.attestation)).toBe(true);
    for (let i = 0; i < 5; i++) {
      expect(new TextDecoder().decode(sb.open(sa.seal(new TextEncoder().encode(`a${i}`))))).toBe(`a${i}`);
      expect(new TextDecoder().decode(sa.open(sb.seal(new TextEncoder().encode(`b${i}`))))).toBe(`b${i}`);
    }
  });

  test("a modified frame is refused as tampered and counted; the session keeps working", async () => {
    const rejects: string[] = [];
    const { sa, sb } = await pair({ onReject: (r) => rejects.push(r) });
    const frame = sa.seal(new Uint8Array([1, 2, 3]));
    for (const at of [0, 5, 12, frame.byteLength - 1]) {
      const bad = frame.slice();
      bad[at]! ^= 1;
      expect(() => sb.open(bad)).toThrow(at < 12 ? SessionReplayError : SessionTamperError);
    }
    expect(() => sb.open(frame.subarray(0, 20))).toThrow(SessionTamperError);
    expect(sb.open(frame)).toEqual(new Uint8Array([1, 2, 3]));
    expect(rejects.length).toBe(5);
    expect(sb.stats.rejected).toBe(5);
  });

  test("replayed and reordered frames are refused", async () => {
    const { sa, sb } = await pair();
    const f0 = sa.seal(new Uint8Array([0]));
    const f1 = sa.seal(new Uint8Array([1]));
    const f2 = sa.seal(new Uint8Array([2]));
    try {
      sb.open(f1);
      throw new Error("accepted a frame out of order");
    } catch (err) {
      expect(err).toBeInstanceOf(SessionReplayError);
      expect((err as SessionReplayError).reason).toBe("reorder");
    }
    sb.open(f0);
    sb.open(f1);
    try {
      sb.open(f0);
      throw new Error("accepted a replay");
    } catch (err) {
      expect((err as SessionReplayError).reason).toBe("replay");
    }
    expect(sb.open(f2)).toEqual(new Uint8Array([2]));
  });

  test("a man in the middle with another identity key cannot complete either side", async () => {
    const hub = party("hub");
    const agent = party("agent");
    const mitm = party("mitm");
    // The attacker answers the hub as if it were the agent.
    const init = initiateSession(hub, { clock });
    const fake = await respondSession(mitm, init.hello, () => {}, { clock });
    await expect(init.finish(fake.hello, fake.sig, expectKey(agent.idKey))).rejects.toThrow(UnauthorizedError);
    // The attacker substitutes its own ephemeral key in a real hello: the signature no longer matches.
    const real = await respondSession(agent, init.hello, () => {}, { clock });
    const swapped = { ...real.hello, eph: fake.hello.eph };
    await expect(init.finish(swapped, real.sig, expectKey(agent.idKey))).rejects.toThrow(/signature/);
    // A changed attestation digest in transit breaks the transcript signature as well.
    const lied = { ...real.hello, attestation: ZERO_DIGEST };
    await expect(init.finish(lied, real.sig, () => {})).rejects.toThrow(/signature/);
    // Initiator signature forged by the attacker is refused by the responder.
    const ok = await initiateSession(hub, { clock }).finish(real.hello, real.sig, () => {}).catch((e) => e);
    expect(ok).toBeInstanceOf(UnauthorizedError); // different transcript (other hello)
    expect(() => real.complete(new Uint8Array(64))).toThrow(UnauthorizedError);
  });

  test("keys rotate on a message schedule and on demand; the receiver follows, old epochs are refused", async () => {
    const { sa, sb } = await pair({ rotateAfterMessages: 3 });
    const frames = Array.from({ length: 10 }, (_, i) => sa.seal(new Uint8Array([i])));
    expect(sa.sendEpoch).toBe(3);
    for (let i = 0; i < 10; i++) expect(sb.open(frames[i]!)).toEqual(new Uint8Array([i]));
    sa.rotate();
    const late = sa.seal(new Uint8Array([42]));
    expect(sb.open(late)).toEqual(new Uint8Array([42]));
    expect(() => sb.open(frames[0]!)).toThrow(SessionReplayError);
    // time-based schedule
    const before = sa.sendEpoch;
    clock.t += 11 * 60_000;
    sb.open(sa.seal(new Uint8Array([7])));
    expect(sa.sendEpoch).toBe(before + 1);
  });

  test("different digests give unrelated keys (re-attestation means a new session)", async () => {
    const a = party("a");
    const b1 = party("b");
    const i1 = initiateSession(a, { clock });
    const r1 = await respondSession(b1, i1.hello, () => {}, { clock });
    const { session: s1 } = await i1.finish(r1.hello, r1.sig, () => {});
    const b2 = { ...b1, attestation: attestationDigest({ re: "attested" }) };
    const i2 = initiateSession(a, { clock });
    const r2 = await respondSession(b2, i2.hello, () => {}, { clock });
    const { session: s2 } = await i2.finish(r2.hello, r2.sig, () => {});
    const sb2 = r2.complete((await i2.finish(r2.hello, r2.sig, () => {})).sig);
    expect(same(s1.id, s2.id)).toBe(false);
    expect(() => sb2.open(s1.seal(new Uint8Array([1])))).toThrow(SessionTamperError);
  });
});

describe("hybrid post-quantum key exchange (X25519 + ML-KEM-768)", () => {
  async function handshake(pqI: "off" | "offer" | "require", pqR: "off" | "offer" | "require", tamper?: (h: SessionHello) => SessionHello) {
    const a = party("hub");
    const b = party("agent");
    const init = initiateSession(a, { clock, pq: pqI });
    const resp = await respondSession(b, tamper ? tamper(init.hello) : init.hello, expectKey(a.idKey), { clock, pq: pqR });
    const { sig, session: sa } = await init.finish(resp.hello, resp.sig, expectKey(b.idKey));
    return { init, resp, sa, sb: resp.complete(sig) };
  }

  test("round trip: both sides agree on hybrid keys, which rotate like classic ones", async () => {
    const { init, resp, sa, sb } = await handshake("require", "offer");
    expect(init.hello.kemPub?.byteLength).toBe(1184);
    expect(resp.hello.kemCt?.byteLength).toBe(1088);
    expect(sa.keyExchange).toBe("x25519+ml-kem-768");
    expect(sb.keyExchange).toBe("x25519+ml-kem-768");
    expect(same(sa.id, sb.id)).toBe(true);
    for (let i = 0; i < 3; i++) {
      expect(new TextDecoder().decode(sb.open(sa.seal(new TextEncoder().encode(`pq${i}`))))).toBe(`pq${i}`);
      expect(new TextDecoder().decode(sa.open(sb.seal(new TextEncoder().encode(`qp${i}`))))).toBe(`qp${i}`);
      sa.rotate();
    }
    expect(sa.sendEpoch).toBe(3);
  });

  test("offer meets off: X25519 alone; off meets off: the classic transcript", async () => {
    const { sa, sb } = await handshake("offer", "off");
    expect(sa.keyExchange).toBe("x25519");
    expect(sb.keyExchange).toBe("x25519");
    expect(sb.open(sa.seal(Uint8Array.of(1)))).toEqual(Uint8Array.of(1));
    expect((await handshake("off", "off")).sa.keyExchange).toBe("x25519");
  });

  test("downgrade refused when hybrid is required, on either side", async () => {
    await expect(handshake("off", "require")).rejects.toMatchObject({ name: "SessionDowngradeError" });
    await expect(handshake("require", "off")).rejects.toMatchObject({ name: "SessionDowngradeError" });
  });

  test("a man in the middle stripping the ML-KEM key breaks the transcript signature", async () => {
    const strip = (h: SessionHello) => ({ ...h, kemPub: undefined });
    await expect(handshake("offer", "offer", strip)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  test("a swapped ML-KEM key is caught the same way; malformed sizes are refused", async () => {
    const other = initiateSession(party("x"), { clock, pq: "offer" }).hello.kemPub!;
    await expect(handshake("offer", "offer", (h) => ({ ...h, kemPub: other }))).rejects.toBeInstanceOf(UnauthorizedError);
    await expect(handshake("offer", "offer", (h) => ({ ...h, kemPub: new Uint8Array(10) }))).rejects.toThrow(/malformed ML-KEM key/);
  });
});
