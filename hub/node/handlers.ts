/**
 * The hub's side of the federation protocols: join, renew, heartbeat.
 * Every exchange is bounded (rpc.serve), every message validated, and every
 * refusal is a typed error sent back as an error reply and counted.
 */
import { timingSafeEqual } from "node:crypto";
import type { Connection } from "@libp2p/interface";
import type { Catalog } from "../../plugins/host/catalog.ts";
import type { Channel } from "../../plugins/mesh-libp2p/rpc.ts";
import type { AttestationResult, EvidenceBinding } from "../../plugins/sdk/attestor.ts";
import { AttestationError, MalformedInputError, TimeoutError, UnauthorizedError } from "../../plugins/sdk/errors.ts";
import { nonceTtlMs, peersPerHeartbeatMax } from "../../plugins/sdk/limits.ts";
import type { Logger } from "../../plugins/sdk/plugin.ts";
import { Heartbeat, JoinActivateResponse, JoinHello, JoinRequest, RenewHello, RenewRequest, type Evidence, type PeerInfo } from "../../plugins/sdk/wire.ts";
import { AK_ACTIVATED, AK_PENDING, boundaryOf, judge, type AttestPolicy } from "../attest-policy/index.ts";
import type { AuditLog } from "../audit/index.ts";
import * as fedlogWrites from "../fedlog/writes.ts";
import type { MembershipLog } from "../fedlog/writes.ts";
import type { Ca } from "../ca/ca.ts";
import { certTtlFor } from "./expiry.ts";
import type { AttestationRecord, Registry } from "../registry/index.ts";

export interface HubContext {
  ca: Ca;
  hubCertDer: Uint8Array;
  registry: Registry;
  catalog: Catalog;
  /** Evidence formats accepted when no attestation policy file is configured. */
  allowFormats: string[];
  /** Attestation policy per trust boundary (hub/attest-policy); when set it replaces allowFormats. */
  policy?: { policy: AttestPolicy; org: string; cluster?: string };
  /** Called once per verification (metrics: grey_attestations_total{format,result,reason}). */
  onAttestation?: (e: { format: string; ok: boolean; reason: string }) => void;
  memberCertTtlMs: number;
  clock: { now(): number };
  logger: Logger;
  audit: Pick<AuditLog, "append">;
  /** The federation log: when active, membership writes go through it (every hub applies them). */
  fedlog?: MembershipLog;
  /** Governance: may these two members learn about each other (heartbeat peer lists)? Default: yes. */
  peerVisible?: (a: { org: string; peerId: string }, b: { org: string; peerId: string }) => boolean;
  /** Desired state (hub/desired): what an agent of `cluster` holding everything up to `since` is missing; sent in the heartbeat ack. */
  desiredSince?: (cluster: string, since: number) => { entries: { key: string; value: string; at: number; source: "hub" | "local" }[]; version: number } | undefined;
}

function freshNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/**
 * Verify evidence for a node of `node.org`/`node.cluster`: freshness of the challenge, the format
 * allowed for its trust boundary, the verifier (catalog), then the boundary's policy. Returns the
 * result to record (with boundary and expiry); throws AttestationError naming the failed check.
 */
async function attest(ctx: HubContext, evidence: Evidence, binding: EvidenceBinding, issuedAt: number, node: { org: string; cluster: string }, renewalOf?: AttestationRecord): Promise<AttestationRecord> {
  const now = ctx.clock.now();
  const report = (ok: boolean, reason: string) => ctx.onAttestation?.({ format: evidence.format.slice(0, 32), ok, reason });
  if (now - issuedAt > nonceTtlMs) {
    report(false, "freshness");
    throw new AttestationError("freshness", `challenge answered after ${now - issuedAt} ms (limit ${nonceTtlMs} ms)`);
  }
  const policy = ctx.policy;
  const boundary = policy ? boundaryOf(policy, node) : undefined;
  const allowed = policy ? policy.policy.boundaries[boundary!]?.formats ?? [] : ctx.allowFormats;
  if (!(allowed as string[]).includes(evidence.format)) {
    report(false, "policy.format");
    throw new AttestationError("policy.format", `evidence format "${evidence.format}" is not accepted ${boundary ? `for ${boundary} nodes ` : ""}by this hub (allowed: ${allowed.join(", ") || "none"})`);
  }
  const at = new Date(now);
  let result = await ctx.catalog.verify(evidence, binding, at);
  let expiresAt: Date | undefined;
  if (policy) ({ result, expiresAt } = judge(policy.policy, boundary!, result, at, renewalOf));
  // a result pending credential activation is counted by activateAk, once the outcome is known
  if (result.claims["ak.trust"] !== AK_PENDING) report(result.ok, result.ok ? "ok" : (result.failed ?? "unknown"));
  if (!result.ok) {
    const failed = result.checks.find((c) => c.name === result.failed);
    throw new AttestationError(result.failed ?? "unknown", failed?.detail ?? "evidence refused");
  }
  return {
    ...result, verifiedAt: at.toISOString(),
    ...(boundary ? { boundary } : {}), ...(expiresAt ? { expiresAt: expiresAt.toISOString() } : {}),
  };
}

/**
 * Credential activation at join, when the policy trusts the node's TPM EK rather than its AK (judge
 * marked the result AK_PENDING): seal a fresh secret to the EK for the quoting AK's Name, send
 * join-activate, and compare the answer in constant time. Returns the result to record (ak.trust =
 * AK_ACTIVATED, check `ak.activation`); throws AttestationError("ak.activation") otherwise.
 * Any other result passes through untouched (no extra round trip: old agents keep working).
 */
async function activateAk(ctx: HubContext, ch: Channel, evidence: Evidence, result: AttestationRecord): Promise<AttestationRecord> {
  if (result.claims["ak.trust"] !== AK_PENDING) return result;
  const refuse = (detail: string, cause?: unknown): never => {
    ctx.onAttestation?.({ format: evidence.format.slice(0, 32), ok: false, reason: "ak.activation" });
    throw new AttestationError("ak.activation", detail, cause === undefined ? undefined : { cause });
  };
  const { challenge, secret } = await ctx.catalog.challenge(evidence).catch((err: unknown) => refuse((err as Error).message, err));
  await ch.send({ type: "join-activate", format: evidence.format, credentialBlob: challenge.credentialBlob, encryptedSecret: challenge.encryptedSecret });
  let answer: Uint8Array;
  try {
    answer = (await ch.receive(JoinActivateResponse)).secret;
  } catch (err) {
    if (err instanceof TimeoutError) throw err;
    return refuse(`the node did not activate the credential: ${(err as Error).message}`, err);
  }
  if (answer.byteLength !== secret.byteLength || !timingSafeEqual(answer, secret)) {
    return refuse(`the secret sealed to EK ${String(result.claims["ek.name"])} was not recovered: the quoting AK is not in that TPM`);
  }
  ctx.onAttestation?.({ format: evidence.format.slice(0, 32), ok: true, reason: "ok" });
  return {
    ...result,
    checks: [...result.checks, { name: "ak.activation", ok: true, detail: `AK ${String(result.claims["ak.name"])} activated against EK ${String(result.claims["ek.name"])}` }],
    claims: { ...result.claims, "ak.trust": AK_ACTIVATED },
  };
}

function csrKey(ctx: HubContext, csr: Uint8Array): Uint8Array {
  try {
    return ctx.ca.csrPublicKey(csr);
  } catch (err) {
    throw new MalformedInputError("CSR is not a valid PKCS#10 request", { cause: err });
  }
}

export function joinHandler(ctx: HubContext) {
  return async (ch: Channel, conn: Connection): Promise<void> => {
    const peerId = conn.remotePeer.toString();
    const hello = await ch.receive(JoinHello);
    const nonce = freshNonce();
    const issuedAt = ctx.clock.now();
    await ch.send({ type: "join-challenge", nonce, caCert: ctx.ca.certDer, hubCert: ctx.hubCertDer });
    const req = await ch.receive(JoinRequest);
    if (req.tokenId !== hello.tokenId) throw new MalformedInputError("token id changed during the join exchange");
    const token = ctx.registry.consumeToken(req.tokenId, req.secret, new Date(ctx.clock.now()));
    const binding = { nonce, peerId, subjectPublicKey: csrKey(ctx, req.csr) };
    const result = await activateAk(ctx, ch, req.evidence, await attest(ctx, req.evidence, binding, issuedAt, { org: token.org, cluster: token.cluster }));
    const now = new Date(ctx.clock.now());
    const issued = await ctx.ca.issueMemberCert({
      csrDer: req.csr, peerId, org: token.org, region: token.region, cluster: token.cluster, ttlMs: certTtlFor(ctx.memberCertTtlMs, result, now), now,
    });
    await fedlogWrites.recordJoin(ctx, {
      clusterId: token.cluster, org: token.org, region: token.region, peerId, multiaddrs: req.multiaddrs,
      certSerial: issued.serial, certNotAfter: issued.notAfter, attestation: result, now,
    });
    ctx.audit.append({
      kind: "join", actor: peerId, subject: `grey://${token.org}/${token.region}/${token.cluster}`,
      details: { certSerial: issued.serial, attestation: { format: result.format, ok: result.ok, claims: result.claims } },
    });
    ctx.logger.info("member joined", { cluster: token.cluster, org: token.org, region: token.region, peer: peerId, attestation: result.format });
    await ch.send({
      type: "join-result", cert: issued.certDer, caCert: ctx.ca.certDer,
      clusterId: token.cluster, org: token.org, region: token.region, notAfter: issued.notAfter.getTime(),
    });
  };
}

function memberOf(ctx: HubContext, peerId: string) {
  const m = ctx.registry.getByPeer(peerId);
  if (!m) throw new UnauthorizedError("not a member of this federation: join first");
  if (m.revoked) throw new UnauthorizedError(`membership revoked at ${m.revoked.at.toISOString()} (${m.revoked.reason}): join again with a new token`);
  return m;
}

export function renewHandler(ctx: HubContext) {
  return async (ch: Channel, conn: Connection): Promise<void> => {
    const peerId = conn.remotePeer.toString();
    await ch.receive(RenewHello);
    const member = memberOf(ctx, peerId);
    const nonce = freshNonce();
    const issuedAt = ctx.clock.now();
    await ch.send({ type: "renew-challenge", nonce });
    const req = await ch.receive(RenewRequest);
    const binding = { nonce, peerId, subjectPublicKey: csrKey(ctx, req.csr) };
    let result: AttestationRecord;
    try {
      result = await attest(ctx, req.evidence, binding, issuedAt, { org: member.org, cluster: member.clusterId }, member.attestation);
    } catch (err) {
      // Failed re-attestation ends the membership (a slow answer is not a failed attestation).
      if (err instanceof AttestationError && err.check !== "freshness") {
        await fedlogWrites.revoke(ctx, peerId, `re-attestation failed: ${err.message}`, new Date(ctx.clock.now()));
        ctx.audit.append({
          kind: "attestation", actor: peerId, subject: `grey://${member.org}/${member.region}/${member.clusterId}`,
          details: { event: "revoked", reason: err.message, check: err.check },
        });
        ctx.logger.warn("member revoked", { cluster: member.clusterId, peer: peerId, reason: err.message });
      }
      throw err;
    }
    const now = new Date(ctx.clock.now());
    const issued = await ctx.ca.issueMemberCert({
      csrDer: req.csr, peerId, org: member.org, region: member.region, cluster: member.clusterId, ttlMs: certTtlFor(ctx.memberCertTtlMs, result, now), now,
    });
    await fedlogWrites.recordRenewal(ctx, peerId, issued.serial, issued.notAfter, result, now);
    ctx.audit.append({
      kind: "attestation", actor: peerId, subject: `grey://${member.org}/${member.region}/${member.clusterId}`,
      details: { event: "renewal", certSerial: issued.serial, attestation: { format: result.format, ok: result.ok, claims: result.claims } },
    });
    ctx.logger.info("certificate renewed", { cluster: member.clusterId, notAfter: issued.notAfter.toISOString() });
    await ch.send({ type: "renew-result", cert: issued.certDer, notAfter: issued.notAfter.getTime() });
  };
}

export function heartbeatHandler(ctx: HubContext) {
  return async (ch: Channel, conn: Connection): Promise<void> => {
    const peerId = conn.remotePeer.toString();
    const hb = await ch.receive(Heartbeat);
    const member = memberOf(ctx, peerId);
    const now = new Date(ctx.clock.now());
    if (member.certNotAfter.getTime() <= now.getTime()) {
      throw new UnauthorizedError("membership certificate expired: renew or join again");
    }
    ctx.registry.recordHeartbeat(peerId, hb.multiaddrs, now);
    const peers: PeerInfo[] = ctx.registry
      .list({ limit: peersPerHeartbeatMax + 1 })
      .items.filter((m) => m.peerId !== peerId && ctx.registry.stateOf(m, now) !== "offline" && m.multiaddrs.length > 0)
      .filter((m) => !m.revoked && (ctx.peerVisible?.(member, m) ?? true))
      .slice(0, peersPerHeartbeatMax)
      .map((m) => ({ clusterId: m.clusterId, org: m.org, region: m.region, peerId: m.peerId, multiaddrs: m.multiaddrs }));
    // desired state only for agents that ask (hb.desiredSince): older agents get the ack they know
    const desired = hb.desiredSince !== undefined && ctx.desiredSince ? ctx.desiredSince(member.clusterId, hb.desiredSince) : undefined;
    await ch.send({ type: "heartbeat-ack", seq: hb.seq, peers, ...(desired ? { desired: desired.entries, desiredVersion: desired.version } : {}) });
  };
}
