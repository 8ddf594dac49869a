/**
 * `sessions.pq` from agent.json reaches the attested-session layer the task services use
 * (plugins/session/secure.ts): two agents configured "require" agree on the hybrid X25519 +
 * ML-KEM-768 exchange; "off" facing "require" fails on both ends with SessionDowngradeError.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAgentSettings } from "../catalog.ts";
import type { Channel } from "../../plugins/mesh-libp2p/rpc.ts";
import { secureInitiator, secureResponder } from "../../plugins/session/secure.ts";
import type { PqPolicy } from "../../plugins/sdk/session.ts";
import type { FederationIdentity } from "../../plugins/sdk/identity.ts";
import { channelPair, party } from "../../plugins/session/testing.ts";

const anyone = { verify: async () => {}, identity: () => ({ role: "member", org: "acme" }) as unknown as FederationIdentity };

function agentPq(pq: PqPolicy): PqPolicy {
  const dir = mkdtempSync(join(tmpdir(), "grey-pq-"));
  try {
    writeFileSync(join(dir, "agent.json"), JSON.stringify({ sessions: { pq } }));
    return loadAgentSettings(dir).pq;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function connect(a: PqPolicy, b: PqPolicy) {
  const [ca, cb] = channelPair();
  const clock = { now: () => Date.now() };
  // a refusing side ends the exchange (the rpc layer sends an error reply), so the other side stops waiting
  const refuse = (ch: Channel) => async (err: Error) => {
    await ch.send({ type: "error", code: "ERR_SESSION_DOWNGRADE", message: err.message });
    throw err;
  };
  return Promise.allSettled([
    secureInitiator(ca, party("a"), anyone, { clock, pq: agentPq(a) }).catch(refuse(ca)),
    secureResponder(cb, party("b"), anyone, { clock, pq: agentPq(b) }).catch(refuse(cb)),
  ]);
}

describe("sessions.pq from agent.json", () => {
  test("default is offer; two agents configured require use the hybrid exchange", async () => {
    expect(agentPq("offer")).toBe("offer");
    const [a, b] = await connect("require", "require");
    expect(a.status === "fulfilled" && a.value.session.keyExchange).toBe("x25519+ml-kem-768");
    expect(b.status === "fulfilled" && b.value.session.keyExchange).toBe("x25519+ml-kem-768");
  });

  test("off facing require: refused with a clear reason", async () => {
    const [, responder] = await connect("off", "require");
    expect(responder.status).toBe("rejected");
    expect((responder as PromiseRejectedResult).reason).toMatchObject({ name: "SessionDowngradeError", message: expect.stringContaining("did not offer the hybrid (ML-KEM-768) key exchange this side requires") });
    const [initiator] = await connect("require", "off");
    expect(initiator.status).toBe("rejected");
    expect((initiator as PromiseRejectedResult).reason).toMatchObject({ name: "SessionDowngradeError", message: expect.stringContaining("did not take the hybrid") });
  });
});
