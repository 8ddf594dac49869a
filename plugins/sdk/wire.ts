/**
 * Wire messages of the federation protocols (libp2p streams, CBOR, versioned).
 * Each protocol is request/response over one stream; every message carries
 * `v` (see codec.ts) and a `type` discriminator.
 */
import { z } from "zod";
import { evidenceBytesMax, multiaddrsPerPeerMax, peersPerHeartbeatMax } from "./limits.ts";

/** Credential blob / encrypted seed of a join-activate (an RSA-4096 EK seed is 512 B). Larger: message refused. */
export const activationBlobBytesMax = 1024;
/** Secret answered in join-activate-response (TPM2B_DIGEST: at most a SHA-512 digest). */
export const activationSecretBytesMax = 64;

export const PROTOCOL_JOIN = "/grey/join/1.0.0";
export const PROTOCOL_RENEW = "/grey/renew/1.0.0";
export const PROTOCOL_HEARTBEAT = "/grey/heartbeat/1.0.0";
export const PROTOCOL_PEER = "/grey/peer/1.0.0";
/** Private Kademlia protocol: the federation's DHT never mixes with the public one. */
export const PROTOCOL_KAD = "/grey/kad/1.0.0";

const bytes = (max: number) =>
  z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= max, { message: `must be bytes, at most ${max}` });
const version = z.literal(1);
const id = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be lowercase letters, digits and '-', at most 63");
const multiaddrs = z.array(z.string().max(256)).max(multiaddrsPerPeerMax);

export const Evidence = z.object({
  format: z.string().min(1).max(64),
  data: bytes(evidenceBytesMax),
});
export type Evidence = z.infer<typeof Evidence>;

export const ErrorReply = z.object({
  v: version,
  type: z.literal("error"),
  code: z.string().max(64),
  message: z.string().max(1024),
});
export type ErrorReply = z.infer<typeof ErrorReply>;

// --- join: hello -> challenge -> request -> result -------------------------
export const JoinHello = z.object({ v: version, type: z.literal("join-hello"), tokenId: z.string().max(64) });
export const JoinChallenge = z.object({
  v: version,
  type: z.literal("join-challenge"),
  nonce: bytes(64),
  caCert: bytes(8192),
  hubCert: bytes(8192),
});
export const JoinRequest = z.object({
  v: version,
  type: z.literal("join-request"),
  tokenId: z.string().max(64),
  secret: bytes(64),
  csr: bytes(8192),
  evidence: Evidence,
  multiaddrs,
});
export const JoinResult = z.object({
  v: version,
  type: z.literal("join-result"),
  cert: bytes(8192),
  caCert: bytes(8192),
  clusterId: id,
  org: id,
  region: id,
  notAfter: z.number().int(),
});
export type JoinResult = z.infer<typeof JoinResult>;
/**
 * Optional round trip between join-request and join-result, when the hub's policy trusts a TPM's EK
 * rather than its AK: the hub seals a fresh secret to the EK for the quoting AK's Name
 * (TPM2_MakeCredential), the agent recovers it with TPM2_ActivateCredential and sends it back.
 * Hubs send it only for tpm2-quote evidence under such a policy, so agents that never see it
 * (dev evidence, pinned AKs) are unaffected.
 */
export const JoinActivate = z.object({
  v: version,
  type: z.literal("join-activate"),
  format: z.string().min(1).max(64),
  credentialBlob: bytes(activationBlobBytesMax),
  encryptedSecret: bytes(activationBlobBytesMax),
});
export type JoinActivate = z.infer<typeof JoinActivate>;
export const JoinActivateResponse = z.object({ v: version, type: z.literal("join-activate-response"), secret: bytes(activationSecretBytesMax) });
export const JoinReply = z.discriminatedUnion("type", [JoinChallenge, JoinActivate, JoinResult, ErrorReply]);

// --- renew: hello -> challenge -> request -> result -------------------------
export const RenewHello = z.object({ v: version, type: z.literal("renew-hello") });
export const RenewChallenge = z.object({ v: version, type: z.literal("renew-challenge"), nonce: bytes(64) });
export const RenewRequest = z.object({ v: version, type: z.literal("renew-request"), csr: bytes(8192), evidence: Evidence });
export const RenewResult = z.object({ v: version, type: z.literal("renew-result"), cert: bytes(8192), notAfter: z.number().int() });
export const RenewReply = z.discriminatedUnion("type", [RenewChallenge, RenewResult, ErrorReply]);

// --- heartbeat ---------------------------------------------------------------
export const Heartbeat = z.object({
  v: version,
  type: z.literal("heartbeat"),
  seq: z.number().int().nonnegative(),
  multiaddrs,
  /** Desired-state version of this hub the agent holds everything up to (absent: an agent that does not sync desired state). */
  desiredSince: z.number().int().nonnegative().optional(),
});
export const PeerInfo = z.object({
  clusterId: id,
  org: id,
  region: id,
  peerId: z.string().max(128),
  multiaddrs,
});
export type PeerInfo = z.infer<typeof PeerInfo>;
export const DesiredWireEntry = z.object({
  key: z.string().max(256),
  value: z.string().max(4096),
  at: z.number().int().nonnegative(),
  source: z.enum(["hub", "local"]),
});
export type DesiredWireEntry = z.infer<typeof DesiredWireEntry>;
export const HeartbeatAck = z.object({
  v: version,
  type: z.literal("heartbeat-ack"),
  seq: z.number().int().nonnegative(),
  peers: z.array(PeerInfo).max(peersPerHeartbeatMax),
  /** Desired-state entries of the agent's cluster changed after `desiredSince` (hub/desired/rule.ts), oldest change first; only when asked. */
  desired: z.array(DesiredWireEntry).max(256).optional(),
  /** The version the agent now holds everything up to (send it back as `desiredSince`). */
  desiredVersion: z.number().int().nonnegative().optional(),
});
export const HeartbeatReply = z.discriminatedUnion("type", [HeartbeatAck, ErrorReply]);

// --- direct peer session: each side presents its federation certificate -----
export const PeerHello = z.object({ v: version, type: z.literal("peer-hello"), cert: bytes(8192) });
export const PeerReply = z.discriminatedUnion("type", [PeerHello, ErrorReply]);

export { id as IdSchema };
