/**
 * Attested sessions over an rpc Channel: runs the handshake of
 * sdk/session.ts in the clear, then sends and receives sealed CBOR messages.
 * `verifyRemote` is built by `federationVerifier`: the remote's certificate
 * chains to the federation CA, binds the peer id whose Ed25519 key signed the
 * transcript and that libp2p authenticated, and (optionally) the caller's
 * extra check (role, registry serial and attestation digest).
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { z } from "zod";
import type { Channel } from "../mesh-libp2p/rpc.ts";
import { decodeMessage, encodeMessage } from "../sdk/codec.ts";
import { UnauthorizedError } from "../sdk/errors.ts";
import { verifyFederationCert, type FederationIdentity } from "../sdk/identity.ts";
import {
  initiateSession, respondSession, type LocalParty, type Session, type SessionHello, type SessionOptions,
} from "../sdk/session.ts";
import { SealedMsg, SessionAcceptMsg, SessionFinishMsg, SessionHelloMsg } from "../sdk/wire-tasks.ts";

export interface SecureChannel {
  session: Session;
  /** The remote's verified federation identity. */
  remote: FederationIdentity;
  send(msg: { type: string; [k: string]: unknown }): Promise<void>;
  receive<S extends z.ZodType>(schema: S): Promise<z.infer<S>>;
}

const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);

/** Verify a session hello against the federation CA and the libp2p-authenticated peer id. */
export function federationVerifier(
  caCertDer: Uint8Array,
  expectedPeerId: string,
  extra?: (id: FederationIdentity, hello: SessionHello) => void | Promise<void>,
) {
  let identity: FederationIdentity | undefined;
  const verify = async (hello: SessionHello) => {
    const pid = peerIdFromString(expectedPeerId);
    if (!pid.publicKey || !same(pid.publicKey.raw, hello.idKey)) throw new UnauthorizedError("session identity key is not the connected peer's");
    const id = await verifyFederationCert(hello.cert, caCertDer, new Date());
    if (id.peerId !== expectedPeerId) throw new UnauthorizedError("session certificate does not bind the connected peer id");
    await extra?.(id, hello);
    identity = id;
  };
  return { verify, identity: () => identity! };
}

function wrap(ch: Channel, session: Session, remote: FederationIdentity): SecureChannel {
  return {
    session,
    remote,
    async send(msg) {
      await ch.send({ type: "sealed", box: session.seal(encodeMessage(msg)) });
    },
    async receive(schema) {
      const m = await ch.receive(SealedMsg);
      return decodeMessage(session.open(m.box), schema);
    },
  };
}

const helloOf = (m: z.infer<typeof SessionHelloMsg>): SessionHello => ({
  eph: m.eph, idKey: m.idKey, cert: m.cert, attestation: m.attestation, seen: m.seen,
  ...(m.kemPub ? { kemPub: m.kemPub } : {}), ...(m.kemCt ? { kemCt: m.kemCt } : {}),
});

export async function secureInitiator(
  ch: Channel, local: LocalParty, verifier: ReturnType<typeof federationVerifier>, opts: SessionOptions & { seen?: Uint8Array },
): Promise<SecureChannel> {
  const init = initiateSession(local, opts);
  await ch.send({ type: "session-hello", ...init.hello });
  const acc = await ch.receive(SessionAcceptMsg);
  const { sig, session } = await init.finish(helloOf(acc as never), acc.sig, verifier.verify);
  await ch.send({ type: "session-finish", sig });
  return wrap(ch, session, verifier.identity());
}

export async function secureResponder(
  ch: Channel, local: LocalParty, verifier: ReturnType<typeof federationVerifier>, opts: SessionOptions & { seen?: (remote: FederationIdentity) => Uint8Array | undefined },
): Promise<SecureChannel> {
  const hello = await ch.receive(SessionHelloMsg);
  let seen: Uint8Array | undefined;
  const verify = async (h: SessionHello) => {
    await verifier.verify(h);
    seen = opts.seen?.(verifier.identity());
  };
  // `seen` must be known before our hello is built: verify first, then respond.
  await verify(helloOf(hello));
  const { seen: _fn, ...sessionOpts } = opts;
  const resp = await respondSession(local, helloOf(hello), () => {}, { ...sessionOpts, ...(seen ? { seen } : {}) });
  await ch.send({ type: "session-accept", ...resp.hello, sig: resp.sig });
  const fin = await ch.receive(SessionFinishMsg);
  return wrap(ch, resp.complete(fin.sig), verifier.identity());
}
