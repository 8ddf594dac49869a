/**
 * Attested sessions: end-to-end encryption for cross-cluster payloads, on top
 * of (not instead of) libp2p's Noise channel. Pure: no I/O, no clock (injected).
 *
 * Handshake (SIGMA-style, three messages):
 *   1. initiator -> responder  hello  {eph, idKey, cert, attestation, seen}
 *   2. responder -> initiator  hello  {...} + sig_r
 *   3. initiator -> responder  finish {sig_i}
 * `eph` is a fresh X25519 key; `idKey` the sender's Ed25519 node identity
 * (its libp2p peer id); `cert` its federation certificate (serial and peer id
 * are checked by the caller's `verifyRemote`); `attestation` the sender's
 * attestation-result digest as it knows it; `seen` the digest the sender holds
 * for the other side (the hub's registry view; zeros when it holds none).
 * The transcript hash th = sha256(cbor([label, hello_i, hello_r])) binds both
 * peer ids, both certificates (so both serials) and all attestation digests;
 * each side signs `role || th` with its Ed25519 identity, so a man in the
 * middle holding any other identity key cannot finish.
 *
 * Keys: HKDF-SHA256(ikm = X25519(eph_i, eph_r), salt = th) -> one key per
 * direction. Frames are `epoch(4) || counter(8) || ChaCha20-Poly1305(...)`;
 * the 12-byte header is the nonce and additional data. Counters are strict per
 * direction (a lower one is a replay, a higher one a reorder/gap), both
 * rejected with SessionReplayError without moving state; a frame that fails
 * authentication is a SessionTamperError. Rotation: the sender ratchets its key
 * (HKDF with a "rekey" label, old key dropped) after `rotateAfterMessages`
 * frames or `rotateAfterMs`; the receiver follows the epoch in the header (at
 * most `rotateAheadMax` epochs ahead). Re-attestation changes the digests, so
 * the next handshake yields unrelated keys; callers open a new session.
 *
 * Resumption (one attested handshake per peer, not per stream): the handshake
 * also derives a resumption secret (HKDF, "resume" label, salt th). A later
 * stream resumes with a fresh 32-byte nonce from each side:
 * keys = HKDF(secret, salt = th || nonce_i || nonce_r), so every stream has
 * unrelated keys (a replayed resume meets a fresh responder nonce) and only
 * the two parties of the original handshake can derive them. A session is
 * resumable for `resumeLifetimeMsDefault` and `resumesPerSessionMax` streams;
 * then the caller runs a full handshake, which re-checks certificates and
 * attestation digests (callers also re-check those against their registry on
 * every resume, so a revocation or re-attestation ends resumption at once).
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { z } from "zod";
import { encodeCbor } from "./codec.ts";
import { GreyError, UnauthorizedError } from "./errors.ts";

export const SESSION_LABEL = "grey-session/1";
export const digestBytes = 32;
/** Frames per key before the sender rotates. */
export const rotateAfterMessagesDefault = 10_000;
/** Key age before the sender rotates (schedule). */
export const rotateAfterMsDefault = 10 * 60_000;
/** How long a handshake's resumption secret may start new streams. Older: full handshake. */
export const resumeLifetimeMsDefault = 5 * 60_000;
/** Streams one handshake may resume. More: full handshake. */
export const resumesPerSessionMax = 10_000;
export const resumeNonceBytes = 32;
/** Epochs a receiver ratchets forward to follow a sender. More: the frame is refused (reorder). */
export const rotateAheadMax = 4;
export const sessionHeaderBytes = 12;
export const ZERO_DIGEST = new Uint8Array(digestBytes);
/** ML-KEM-768 sizes (FIPS 203). */
export const kemPublicKeyBytes = 1184;
export const kemCiphertextBytes = 1088;

/** Post-quantum policy: X25519 only, hybrid when the peer takes it, or hybrid or nothing. */
export type PqPolicy = "off" | "offer" | "require";
export type KeyExchange = "x25519" | "x25519+ml-kem-768";
/** What nodes use when hub.json / agent.json says nothing. */
export const pqPolicyDefault: PqPolicy = "offer";
/** The `sessions` section of hub.json / agent.json. */
export const SessionsShape = z.strictObject({
  pq: z.enum(["off", "offer", "require"]).default(pqPolicyDefault),
}).default({ pq: pqPolicyDefault });

/** The peer does not do the hybrid key exchange this side requires. */
export class SessionDowngradeError extends GreyError {
  constructor(message: string) {
    super("ERR_SESSION_DOWNGRADE", message);
  }
}

/** A frame that does not authenticate (modified, truncated, wrong key). */
export class SessionTamperError extends GreyError {
  constructor(message: string) {
    super("ERR_SESSION_TAMPERED", message);
  }
}

/** A frame out of sequence: `replay` (already seen or older epoch) or `reorder` (a gap / too far ahead). */
export class SessionReplayError extends GreyError {
  constructor(readonly reason: "replay" | "reorder", message: string) {
    super("ERR_SESSION_REPLAY", message);
  }
}

export interface SessionHello {
  eph: Uint8Array;
  idKey: Uint8Array;
  cert: Uint8Array;
  attestation: Uint8Array;
  seen: Uint8Array;
  /** Initiator, hybrid: ML-KEM-768 encapsulation key. */
  kemPub?: Uint8Array;
  /** Responder, hybrid: ML-KEM-768 ciphertext to the initiator's kemPub. */
  kemCt?: Uint8Array;
}

export interface LocalParty {
  /** Ed25519 raw public key (the libp2p peer id's key). */
  idKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
  cert: Uint8Array;
  /** Our own attestation digest as we know it (ZERO_DIGEST: unknown). */
  attestation: Uint8Array;
}

export interface SessionOptions {
  clock: { now(): number };
  rotateAfterMessages?: number;
  rotateAfterMs?: number;
  /** Hybrid post-quantum key exchange (see above). Default "off". */
  pq?: PqPolicy;
  /** Called for every rejected frame (metrics). */
  onReject?: (reason: "tamper" | "replay" | "reorder") => void;
  /** Resumption window (see above); defaults resumeLifetimeMsDefault / resumesPerSessionMax. */
  resumeLifetimeMs?: number;
  resumesMax?: number;
}

/**
 * Checks the remote side's hello (certificate valid, binds the peer id of
 * `idKey`, attestation digest acceptable). Throws UnauthorizedError to refuse.
 */
export type VerifyRemote = (hello: SessionHello) => Promise<void> | void;

/** Digest of an attestation result, as both sides compute it (sha256 over sorted-key JSON). */
export function attestationDigest(result: unknown): Uint8Array {
  const canonical = JSON.stringify(result, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
  return sha256(new TextEncoder().encode(canonical));
}

function transcript(i: SessionHello, r: SessionHello): Uint8Array {
  // The kem fields are appended only when present, so an X25519-only transcript is unchanged.
  const h = (x: SessionHello) => [x.eph, x.idKey, x.cert, x.attestation, x.seen, ...(x.kemPub || x.kemCt ? [x.kemPub ?? new Uint8Array(0), x.kemCt ?? new Uint8Array(0)] : [])];
  return sha256(encodeCbor([SESSION_LABEL, h(i), h(r)]));
}

const enc = (s: string) => new TextEncoder().encode(s);
const sigInput = (role: "i" | "r", th: Uint8Array) => Uint8Array.from([...enc(`${SESSION_LABEL} sig ${role}`), ...th]);

function checkHello(h: SessionHello): void {
  const ok = h.eph?.byteLength === 32 && h.idKey?.byteLength === 32 && h.attestation?.byteLength === digestBytes && h.seen?.byteLength === digestBytes;
  if (!ok) throw new UnauthorizedError("session hello has malformed keys or digests");
  if (h.kemPub !== undefined && h.kemPub.byteLength !== kemPublicKeyBytes) throw new UnauthorizedError("session hello has a malformed ML-KEM key");
  if (h.kemCt !== undefined && h.kemCt.byteLength !== kemCiphertextBytes) throw new UnauthorizedError("session hello has a malformed ML-KEM ciphertext");
}

function verifySig(sig: Uint8Array, role: "i" | "r", th: Uint8Array, idKey: Uint8Array): void {
  let ok = false;
  try {
    ok = sig.byteLength === 64 && ed25519.verify(sig, sigInput(role, th), idKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new UnauthorizedError("session transcript signature does not verify against the peer's identity");
}

function derive(shared: Uint8Array, th: Uint8Array): { i2r: Uint8Array; r2i: Uint8Array; resume: Uint8Array } {
  return {
    i2r: hkdf(sha256, shared, th, enc(`${SESSION_LABEL} i2r`), 32),
    r2i: hkdf(sha256, shared, th, enc(`${SESSION_LABEL} r2i`), 32),
    resume: hkdf(sha256, shared, th, enc(`${SESSION_LABEL} resume`), 32),
  };
}

function ratchet(key: Uint8Array, epoch: number): Uint8Array {
  return hkdf(sha256, key, undefined, enc(`${SESSION_LABEL} rekey ${epoch}`), 32);
}

/** One direction's key state. */
class Direction {
  epoch = 0;
  counter = 0n;
  keyBornAt: number;
  constructor(public key: Uint8Array, now: number) {
    this.keyBornAt = now;
  }
  advance(now: number): void {
    this.epoch++;
    const next = ratchet(this.key, this.epoch);
    this.key.fill(0);
    this.key = next;
    this.counter = 0n;
    this.keyBornAt = now;
  }
}

export class Session {
  readonly #send: Direction;
  readonly #recv: Direction;
  readonly #opts: Required<Omit<SessionOptions, "onReject">> & Pick<SessionOptions, "onReject">;
  readonly #role: "i" | "r";
  /** Resumption secret (absent on resumed sessions: they do not resume further). */
  #resume: Uint8Array | undefined;
  readonly #bornAt: number;
  #resumes = 0;
  /** The remote side's verified hello (peer id key, cert, digests). */
  readonly remote: SessionHello;
  /** Transcript hash: identifies the session on both sides. */
  readonly id: Uint8Array;
  readonly stats = { sealed: 0, opened: 0, rejected: 0, rotations: 0 };
  readonly keyExchange: KeyExchange;

  constructor(
    keys: { send: Uint8Array; recv: Uint8Array; resume?: Uint8Array; role?: "i" | "r" }, remote: SessionHello, th: Uint8Array, opts: SessionOptions,
    keyExchange: KeyExchange = "x25519",
  ) {
    this.keyExchange = keyExchange;
    const now = opts.clock.now();
    this.#role = keys.role ?? "i";
    this.#resume = keys.resume;
    this.#bornAt = now;
    // Each direction ratchets from its own chain; the shared derivation ends here.
    this.#send = new Direction(keys.send, now);
    this.#recv = new Direction(keys.recv, now);
    this.#opts = {
      clock: opts.clock,
      rotateAfterMessages: opts.rotateAfterMessages ?? rotateAfterMessagesDefault,
      rotateAfterMs: opts.rotateAfterMs ?? rotateAfterMsDefault,
      pq: opts.pq ?? "off",
      onReject: opts.onReject,
      resumeLifetimeMs: opts.resumeLifetimeMs ?? resumeLifetimeMsDefault,
      resumesMax: opts.resumesMax ?? resumesPerSessionMax,
    };
    this.remote = remote;
    this.id = th;
  }

  /** May a new stream resume this session now? */
  get resumable(): boolean {
    return this.#resume !== undefined && this.#resumes < this.#opts.resumesMax && this.#opts.clock.now() - this.#bornAt < this.#opts.resumeLifetimeMs;
  }

  /** Streams resumed from this session so far. */
  get resumes(): number {
    return this.#resumes;
  }

  /**
   * A new session for one more stream, keyed from the resumption secret and
   * both sides' fresh nonces (same roles as the handshake). Throws when the
   * session is no longer resumable.
   */
  resume(nonceI: Uint8Array, nonceR: Uint8Array): Session {
    if (!this.resumable) throw new UnauthorizedError("session is no longer resumable: run a full handshake");
    if (nonceI.byteLength !== resumeNonceBytes || nonceR.byteLength !== resumeNonceBytes) throw new UnauthorizedError("session resume nonces are malformed");
    this.#resumes++;
    const salt = new Uint8Array(this.id.byteLength + 2 * resumeNonceBytes);
    salt.set(this.id);
    salt.set(nonceI, this.id.byteLength);
    salt.set(nonceR, this.id.byteLength + resumeNonceBytes);
    const i2r = hkdf(sha256, this.#resume!, salt, enc(`${SESSION_LABEL} resumed i2r`), 32);
    const r2i = hkdf(sha256, this.#resume!, salt, enc(`${SESSION_LABEL} resumed r2i`), 32);
    const keys = this.#role === "i" ? { send: i2r, recv: r2i } : { send: r2i, recv: i2r };
    return new Session({ ...keys, role: this.#role }, this.remote, sha256(salt), this.#opts, this.keyExchange);
  }

  /** Forget the resumption secret (the caller saw the peer change: revoked, renewed, re-attested). */
  forget(): void {
    this.#resume?.fill(0);
    this.#resume = undefined;
  }

  get sendEpoch(): number {
    return this.#send.epoch;
  }

  /** Rotate the sending key now (e.g. on a schedule the caller runs). */
  rotate(): void {
    this.#send.advance(this.#opts.clock.now());
    this.stats.rotations++;
  }

  seal(plaintext: Uint8Array): Uint8Array {
    const now = this.#opts.clock.now();
    const d = this.#send;
    if (d.counter >= BigInt(this.#opts.rotateAfterMessages) || now - d.keyBornAt >= this.#opts.rotateAfterMs) this.rotate();
    const header = new Uint8Array(sessionHeaderBytes);
    const view = new DataView(header.buffer);
    view.setUint32(0, d.epoch);
    view.setBigUint64(4, d.counter);
    d.counter++;
    const box = chacha20poly1305(d.key, header, header).encrypt(plaintext);
    const frame = new Uint8Array(sessionHeaderBytes + box.byteLength);
    frame.set(header);
    frame.set(box, sessionHeaderBytes);
    this.stats.sealed++;
    return frame;
  }

  open(frame: Uint8Array): Uint8Array {
    const reject = (reason: "tamper" | "replay" | "reorder", err: Error): never => {
      this.stats.rejected++;
      this.#opts.onReject?.(reason);
      throw err;
    };
    if (frame.byteLength < sessionHeaderBytes + 16) return reject("tamper", new SessionTamperError("session frame too short"));
    const header = frame.subarray(0, sessionHeaderBytes);
    const view = new DataView(header.buffer, header.byteOffset, sessionHeaderBytes);
    const epoch = view.getUint32(0);
    const counter = view.getBigUint64(4);
    const d = this.#recv;
    if (epoch < d.epoch) return reject("replay", new SessionReplayError("replay", `frame from retired key epoch ${epoch} (current ${d.epoch})`));
    if (epoch > d.epoch + rotateAheadMax) return reject("reorder", new SessionReplayError("reorder", `frame from epoch ${epoch}, too far ahead of ${d.epoch}`));
    // Derive the key for a later epoch without committing until the frame authenticates.
    let key = d.key;
    for (let e = d.epoch + 1; e <= epoch; e++) key = ratchet(key, e);
    const expected = epoch === d.epoch ? d.counter : 0n;
    if (counter < expected) return reject("replay", new SessionReplayError("replay", `frame ${counter} already received (next is ${expected})`));
    if (counter > expected) return reject("reorder", new SessionReplayError("reorder", `frame ${counter} arrived before ${expected}`));
    let plain: Uint8Array;
    try {
      plain = chacha20poly1305(key, header, header).decrypt(frame.subarray(sessionHeaderBytes));
    } catch {
      return reject("tamper", new SessionTamperError("session frame failed authentication"));
    }
    if (epoch !== d.epoch) {
      d.key.fill(0);
      d.key = key;
      d.epoch = epoch;
      d.keyBornAt = this.#opts.clock.now();
    }
    d.counter = counter + 1n;
    this.stats.opened++;
    return plain;
  }
}

/** A fresh resume nonce. */
export function resumeNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(resumeNonceBytes));
}

function freshHello(local: LocalParty, seen: Uint8Array): { hello: SessionHello; ephPriv: Uint8Array } {
  const ephPriv = x25519.utils.randomSecretKey();
  return { ephPriv, hello: { eph: x25519.getPublicKey(ephPriv), idKey: local.idKey, cert: local.cert, attestation: local.attestation, seen } };
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
};

/** Initiator side: `start()` gives hello_i; `finish(hello_r, sig_r)` checks the responder and gives {sig_i, session}. */
export function initiateSession(local: LocalParty, opts: SessionOptions & { seen?: Uint8Array }) {
  const { hello, ephPriv } = freshHello(local, opts.seen ?? ZERO_DIGEST);
  const pq = opts.pq ?? "off";
  const kem = pq === "off" ? undefined : ml_kem768.keygen();
  if (kem) hello.kemPub = kem.publicKey;
  return {
    hello,
    async finish(remote: SessionHello, sigR: Uint8Array, verifyRemote: VerifyRemote): Promise<{ sig: Uint8Array; session: Session }> {
      checkHello(remote);
      if (remote.kemPub) throw new UnauthorizedError("session accept carries an ML-KEM key (responder role)");
      if (pq === "require" && !remote.kemCt) throw new SessionDowngradeError("the responder did not take the hybrid (ML-KEM-768) key exchange this side requires");
      if (!kem && remote.kemCt) throw new UnauthorizedError("session accept carries an ML-KEM ciphertext that was not asked for");
      const th = transcript(hello, remote);
      verifySig(sigR, "r", th, remote.idKey);
      await verifyRemote(remote);
      let shared = x25519.getSharedSecret(ephPriv, remote.eph);
      ephPriv.fill(0);
      if (kem && remote.kemCt) shared = concat(shared, ml_kem768.decapsulate(remote.kemCt, kem.secretKey));
      kem?.secretKey.fill(0);
      const k = derive(shared, th);
      shared.fill(0);
      const sig = await local.sign(sigInput("i", th));
      return { sig, session: new Session({ send: k.i2r, recv: k.r2i, resume: k.resume, role: "i" }, remote, th, opts, remote.kemCt ? "x25519+ml-kem-768" : "x25519") };
    },
  };
}

/** Responder side: `respond(hello_i)` checks the initiator's hello and gives {hello_r, sig_r, complete(sig_i)}. */
export async function respondSession(local: LocalParty, remote: SessionHello, verifyRemote: VerifyRemote, opts: SessionOptions & { seen?: Uint8Array }) {
  checkHello(remote);
  if (remote.kemCt) throw new UnauthorizedError("session hello carries an ML-KEM ciphertext (initiator role)");
  const pq = opts.pq ?? "off";
  if (pq === "require" && !remote.kemPub) throw new SessionDowngradeError("the initiator did not offer the hybrid (ML-KEM-768) key exchange this side requires");
  await verifyRemote(remote);
  const { hello, ephPriv } = freshHello(local, opts.seen ?? ZERO_DIGEST);
  let kemShared: Uint8Array | undefined;
  if (pq !== "off" && remote.kemPub) {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(remote.kemPub);
    hello.kemCt = cipherText;
    kemShared = sharedSecret;
  }
  const th = transcript(remote, hello);
  const sig = await local.sign(sigInput("r", th));
  let shared = x25519.getSharedSecret(ephPriv, remote.eph);
  ephPriv.fill(0);
  if (kemShared) {
    shared = concat(shared, kemShared);
    kemShared.fill(0);
  }
  const k = derive(shared, th);
  shared.fill(0);
  const keyExchange: KeyExchange = hello.kemCt ? "x25519+ml-kem-768" : "x25519";
  return {
    hello,
    sig,
    /** Check the initiator's signature; only then is the session usable. */
    complete(sigI: Uint8Array): Session {
      verifySig(sigI, "i", th, remote.idKey);
      return new Session({ send: k.r2i, recv: k.i2r, resume: k.resume, role: "r" }, remote, th, opts, keyExchange);
    },
  };
}
