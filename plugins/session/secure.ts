/**
 * Attested sessions over an rpc Channel: runs the handshake of
 * sdk/session.ts in the clear, then sends and receives sealed CBOR messages.
 * `verifyRemote` is built by `federationVerifier`: the remote's certificate
 * chains to the federation CA, binds the peer id whose Ed25519 key signed the
 * transcript and that libp2p authenticated, and (optionally) the caller's
 * extra check (role, registry serial and attestation digest).
 *
 * With a SessionCache, one full handshake per peer serves many streams:
 * later streams resume it (sdk/session.ts: fresh nonces, fresh keys per
 * stream) until it expires, and the caller's `recheck` (registry: revoked,
 * current certificate, attestation digest) runs again on every resume; a
 * refused or failed check falls back to the full handshake on the same stream.
 */
import { peerIdFromString } from "@libp2p/peer-id";
import type { z } from "zod";
import type { Channel } from "../mesh-libp2p/rpc.ts";
import { decodeMessage, encodeMessage } from "../sdk/codec.ts";
import { UnauthorizedError } from "../sdk/errors.ts";
import { verifyFederationCert, type FederationIdentity } from "../sdk/identity.ts";
import {
  initiateSession, respondSession, resumeNonce, ZERO_DIGEST, type LocalParty, type Session, type SessionHello, type SessionOptions,
} from "../sdk/session.ts";
import {
  SealedMsg, SessionAcceptMsg, SessionFinishMsg, SessionHelloMsg, SessionOpenMsg, SessionResumeReply,
} from "../sdk/wire-tasks.ts";
import { RemoteError } from "../mesh-libp2p/rpc.ts";

/** Resumable sessions one cache holds. Full: the oldest is dropped (its peer's next stream does a full handshake). */
export const sessionCacheEntriesMax = 10_000;

export interface SecureChannel {
  session: Session;
  /** This stream resumed a cached session (no handshake). */
  resumed: boolean;
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

interface CachedSession {
  session: Session;
  remote: FederationIdentity;
  /** libp2p peer id of the other side. */
  peer: string;
  /** What we presented (a renewed certificate or a new attestation digest needs a new handshake). */
  cert: Uint8Array;
  attestation: Uint8Array;
  /** The digest we held for the remote side at the handshake (`seen`), for `recheck`. */
  seen: Uint8Array;
}

/**
 * Sessions that may be resumed: an initiator keys them by remote peer id, a
 * responder by session id. Bounded (`entriesMax`, oldest dropped); an entry
 * stops serving once its session is no longer resumable, our own certificate
 * or attestation changed, or the remote certificate expired.
 */
export class SessionCache {
  readonly #entries = new Map<string, CachedSession>();
  /** Peers that answered a resume with an error (an older version): full handshakes only. */
  readonly #noResume = new Set<string>();
  readonly stats = { full: 0, resumed: 0, refused: 0 };
  constructor(readonly clock: { now(): number }, readonly entriesMax = sessionCacheEntriesMax) {}

  get size(): number {
    return this.#entries.size;
  }

  get(key: string, local: LocalParty): CachedSession | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.session.resumable && same(e.cert, local.cert) && same(e.attestation, local.attestation) && e.remote.notAfter.getTime() > this.clock.now()) return e;
    this.delete(key);
    return undefined;
  }

  put(key: string, e: CachedSession): void {
    this.delete(key);
    if (this.#entries.size >= this.entriesMax) this.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, e);
  }

  delete(key: string): void {
    this.#entries.get(key)?.session.forget();
    this.#entries.delete(key);
  }

  /** Forget every session with `peer` (e.g. it was revoked). */
  forgetPeer(peer: string): void {
    for (const [k, e] of this.#entries) if (e.peer === peer) this.delete(k);
  }

  markNoResume(peer: string): void {
    if (this.#noResume.size >= this.entriesMax) this.#noResume.clear();
    this.#noResume.add(peer);
  }

  resumes(peer: string): boolean {
    return !this.#noResume.has(peer);
  }
}

/** Resumption on one side of one stream: the cache, the connected peer, and the check to repeat on every resume. */
export interface ResumeOptions {
  cache: SessionCache;
  peer: string;
  /**
   * Repeated on every resume with the remote's identity and hello from the
   * handshake and the digest we then held for it (`seen`). Throw to refuse
   * resuming (then a full handshake decides).
   */
  recheck?: (remote: FederationIdentity, hello: SessionHello, seen: Uint8Array) => void;
}

function wrap(ch: Channel, session: Session, remote: FederationIdentity, resumed = false): SecureChannel {
  return {
    session,
    resumed,
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

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Resume the cached session with `r.peer`, if there is one it may use; undefined: do a full handshake. */
async function tryResume(ch: Channel, local: LocalParty, r: ResumeOptions): Promise<SecureChannel | undefined> {
  if (!r.cache.resumes(r.peer)) return undefined;
  const c = r.cache.get(r.peer, local);
  if (!c) return undefined;
  try {
    r.recheck?.(c.remote, c.session.remote, c.seen);
  } catch {
    r.cache.delete(r.peer);
    return undefined;
  }
  const nonce = resumeNonce();
  await ch.send({ type: "session-resume", id: c.session.id, nonce });
  let reply;
  try {
    reply = await ch.receive(SessionResumeReply);
  } catch (err) {
    // An older responder answers with an error: stop offering it resumption (this exchange fails; the caller retries).
    r.cache.delete(r.peer);
    if (err instanceof RemoteError) r.cache.markNoResume(r.peer);
    throw err;
  }
  if (reply.type === "session-resume-refused") {
    r.cache.delete(r.peer);
    r.cache.stats.refused++;
    return undefined;
  }
  r.cache.stats.resumed++;
  return wrap(ch, c.session.resume(nonce, reply.nonce), c.remote, true);
}

export async function secureInitiator(
  ch: Channel, local: LocalParty, verifier: ReturnType<typeof federationVerifier>, opts: SessionOptions & { seen?: Uint8Array; resume?: ResumeOptions },
): Promise<SecureChannel> {
  const { resume, ...sessionOpts } = opts;
  if (resume) {
    const resumed = await tryResume(ch, local, resume);
    if (resumed) return resumed;
  }
  const init = initiateSession(local, sessionOpts);
  await ch.send({ type: "session-hello", ...init.hello });
  const acc = await ch.receive(SessionAcceptMsg);
  const { sig, session } = await init.finish(helloOf(acc as never), acc.sig, verifier.verify);
  await ch.send({ type: "session-finish", sig });
  if (resume) {
    resume.cache.stats.full++;
    resume.cache.put(resume.peer, {
      session, remote: verifier.identity(), peer: resume.peer, cert: local.cert, attestation: local.attestation, seen: sessionOpts.seen ?? ZERO_DIGEST,
    });
  }
  return wrap(ch, session, verifier.identity());
}

export async function secureResponder(
  ch: Channel, local: LocalParty, verifier: ReturnType<typeof federationVerifier>,
  opts: SessionOptions & { seen?: (remote: FederationIdentity) => Uint8Array | undefined; resume?: ResumeOptions },
): Promise<SecureChannel> {
  const { resume, ...rest } = opts;
  let hello: z.infer<typeof SessionHelloMsg>;
  if (resume) {
    const first = await ch.receive(SessionOpenMsg);
    if (first.type === "session-resume") {
      const key = hex(first.id);
      const c = resume.cache.get(key, local);
      let why: string | undefined;
      if (!c) why = "unknown or expired session";
      else if (c.peer !== resume.peer) why = "session belongs to another peer";
      else {
        try {
          resume.recheck?.(c.remote, c.session.remote, c.seen);
        } catch (err) {
          why = (err as Error).message;
          resume.cache.delete(key);
        }
      }
      if (!why) {
        const nonce = resumeNonce();
        const session = c!.session.resume(first.nonce, nonce);
        await ch.send({ type: "session-resumed", nonce });
        resume.cache.stats.resumed++;
        return wrap(ch, session, c!.remote, true);
      }
      resume.cache.stats.refused++;
      await ch.send({ type: "session-resume-refused", reason: why.slice(0, 256) });
      hello = await ch.receive(SessionHelloMsg);
    } else hello = first;
  } else hello = await ch.receive(SessionHelloMsg);
  const { sc, seen } = await respondFull(ch, local, verifier, hello, rest);
  if (resume) {
    resume.cache.stats.full++;
    resume.cache.put(hex(sc.session.id), { session: sc.session, remote: sc.remote, peer: resume.peer, cert: local.cert, attestation: local.attestation, seen });
  }
  return sc;
}

async function respondFull(
  ch: Channel, local: LocalParty, verifier: ReturnType<typeof federationVerifier>, hello: z.infer<typeof SessionHelloMsg>,
  opts: SessionOptions & { seen?: (remote: FederationIdentity) => Uint8Array | undefined },
): Promise<{ sc: SecureChannel; seen: Uint8Array }> {
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
  return { sc: wrap(ch, resp.complete(fin.sig), verifier.identity()), seen: seen ?? ZERO_DIGEST };
}
