/**
 * Session resumption over channels (secure.ts + sdk/session.ts): one full
 * handshake serves many streams, each with its own keys, rotating inside a
 * stream; the caller's recheck, expiry, a changed local certificate, another
 * peer and an unknown session all fall back to a full handshake on the same stream.
 */
import { describe, expect, test } from "bun:test";
import { UnauthorizedError } from "../sdk/errors.ts";
import type { FederationIdentity } from "../sdk/identity.ts";
import type { LocalParty } from "../sdk/session.ts";
import { AckMsg } from "../sdk/wire-tasks.ts";
import { secureInitiator, secureResponder, SessionCache, type SecureChannel } from "./secure.ts";
import { channelPair, party } from "./testing.ts";


const clock = { t: 1_000_000, now() { return this.t; } };
const identity = (role: string) => ({ role, org: "acme", notAfter: new Date(8.64e15) }) as unknown as FederationIdentity;
const verifierOf = (role: string) => ({ verify: async () => {}, identity: () => identity(role) });

function setup() {
  const hub = party("hub");
  const agent = party("agent");
  const initCache = new SessionCache(clock);
  const respCache = new SessionCache(clock);
  let refuse: string | undefined;
  /** One stream: handshake or resume, then `n` sealed round trips. */
  const stream = async (n = 1, opts: { peer?: string; local?: LocalParty; rotateAfterMessages?: number } = {}) => {
    const [ci, cr] = channelPair();
    const recheck = () => {
      if (refuse) throw new UnauthorizedError(refuse);
    };
    const [si, sr] = await Promise.all([
      secureInitiator(ci, opts.local ?? hub, verifierOf("member"), { clock, rotateAfterMessages: opts.rotateAfterMessages, resume: { cache: initCache, peer: "agent", recheck } }),
      secureResponder(cr, agent, verifierOf("hub"), { clock, rotateAfterMessages: opts.rotateAfterMessages, resume: { cache: respCache, peer: opts.peer ?? "hub", recheck } }),
    ]) as [SecureChannel, SecureChannel];
    for (let i = 0; i < n; i++) {
      await si.send({ type: "ack", highWater: i });
      expect((await sr.receive(AckMsg)).highWater).toBe(i);
      await sr.send({ type: "ack", highWater: i + 1 });
      expect((await si.receive(AckMsg)).highWater).toBe(i + 1);
    }
    return { si, sr };
  };
  return { initCache, respCache, stream, setRefuse: (r?: string) => (refuse = r) };
}

describe("session resumption", () => {
  test("one handshake serves many streams, each with its own keys; keys rotate inside a stream", async () => {
    const { initCache, respCache, stream } = setup();
    // Rotation settings are the handshake's; resumed streams inherit them.
    const first = await stream(3, { rotateAfterMessages: 2 });
    expect(first.si.resumed).toBe(false);
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { si, sr } = await stream(5);
      expect(si.resumed && sr.resumed).toBe(true);
      expect(Buffer.from(si.session.id).equals(Buffer.from(sr.session.id))).toBe(true);
      ids.add(Buffer.from(si.session.id).toString("hex"));
      expect(si.session.stats.rotations).toBeGreaterThan(0);
    }
    expect(ids.size).toBe(20); // fresh nonces: no two streams share keys
    expect(initCache.stats).toEqual({ full: 1, resumed: 20, refused: 0 });
    expect(respCache.stats).toEqual({ full: 1, resumed: 20, refused: 0 });
    // A frame sealed on one resumed stream does not open on another.
    const a = await stream(0);
    const b = await stream(0);
    expect(() => b.sr.session.open(a.si.session.seal(new Uint8Array([1])))).toThrow();
  });

  test("a failed recheck (revoked, re-attested) means a full handshake, then resumption again", async () => {
    const { initCache, respCache, stream, setRefuse } = setup();
    await stream();
    setRefuse("member revoked");
    expect((await stream()).si.resumed).toBe(false); // the initiator's own recheck refuses first
    setRefuse(undefined);
    expect((await stream()).si.resumed).toBe(true);
    expect(initCache.stats.full).toBe(2);
    expect(respCache.stats.full).toBe(2);
  });

  test("expiry, a renewed local certificate, another peer or a forgotten session: refused, full handshake on the same stream", async () => {
    const { initCache, respCache, stream } = setup();
    await stream();
    clock.t += 6 * 60_000; // past resumeLifetimeMsDefault
    expect((await stream()).si.resumed).toBe(false);
    expect((await stream()).si.resumed).toBe(true);
    // The initiator renewed its certificate: its cached session no longer applies.
    const renewed = party("hub-renewed");
    expect((await stream(1, { local: renewed })).si.resumed).toBe(false);
    // Resume presented by another connected peer than the one that made the session: the responder refuses.
    const { si } = await stream(1, { local: renewed, peer: "someone-else" });
    expect(si.resumed).toBe(false);
    expect(respCache.stats.refused).toBe(1);
    // The responder lost its cache (restart): refused, then a full handshake.
    const before = respCache.stats.refused;
    respCache.forgetPeer("someone-else");
    expect((await stream(1, { local: renewed })).si.resumed).toBe(false);
    expect(respCache.stats.refused).toBe(before + 1);
    expect(initCache.size).toBe(1);
  });
});
