/**
 * The `dev` attestor: the node signs the hub's nonce, its peer id and the key
 * being certified with its Ed25519 identity key. It proves possession of the
 * node key and freshness, nothing about hardware; hubs accept it only where
 * their policy allows the `dev` format.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { peerIdFromString } from "@libp2p/peer-id";
import { z } from "zod";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import type { AttestationResult, Attestor, AttestorComponents, Check, EvidenceBinding } from "../sdk/attestor.ts";
import { AttestationError } from "../sdk/errors.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";

export const DEV_FORMAT = "dev";
const DOMAIN = new TextEncoder().encode("grey-attest-dev/v1\0");

const DevEvidence = z.object({
  publicKey: z.instanceof(Uint8Array).refine((b) => b.byteLength === 32, "publicKey must be 32 bytes"),
  signature: z.instanceof(Uint8Array).refine((b) => b.byteLength === 64, "signature must be 64 bytes"),
});

export function devSignedMessage(binding: EvidenceBinding): Uint8Array {
  const peer = new TextEncoder().encode(binding.peerId);
  const parts = [DOMAIN, u32(binding.nonce.byteLength), binding.nonce, u32(peer.byteLength), peer, binding.subjectPublicKey];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

export interface DevAttestorInit {}

export function devAttestor(_init: DevAttestorInit = {}) {
  return (components: AttestorComponents): Attestor => ({
    name: "attestor-dev",
    kind: "attestor",
    apiVersion: PLUGIN_API_VERSION,
    format: DEV_FORMAT,

    async collect(binding: EvidenceBinding): Promise<Evidence> {
      const identity = components.identity;
      if (!identity) throw new AttestationError("collect", "dev attestor needs the node identity");
      const signature = await identity.sign(devSignedMessage(binding));
      return { format: DEV_FORMAT, data: encodeCbor({ publicKey: identity.publicKey, signature }) };
    },

    async verify(evidence: Evidence, binding: EvidenceBinding): Promise<AttestationResult> {
      const checks: Check[] = [];
      const fail = (name: string, detail: string): AttestationResult => {
        checks.push({ name, ok: false, detail });
        return { format: DEV_FORMAT, ok: false, checks, failed: name, claims: {} };
      };
      if (evidence.format !== DEV_FORMAT) return fail("format", `expected ${DEV_FORMAT}, got ${evidence.format}`);
      let parsed: z.infer<typeof DevEvidence>;
      try {
        const r = DevEvidence.safeParse(decodeCbor(evidence.data));
        if (!r.success) return fail("structure", r.error.issues[0]?.message ?? "invalid");
        parsed = r.data;
      } catch (err) {
        return fail("structure", (err as Error).message);
      }
      checks.push({ name: "structure", ok: true });
      try {
        const bound = peerIdFromString(binding.peerId);
        const key = bound.publicKey?.raw;
        if (!key || !equal(key, parsed.publicKey)) return fail("peer-binding", "public key does not match the peer id");
      } catch {
        return fail("peer-binding", "invalid peer id");
      }
      checks.push({ name: "peer-binding", ok: true });
      let valid = false;
      try {
        valid = ed25519.verify(parsed.signature, devSignedMessage(binding), parsed.publicKey);
      } catch {
        valid = false;
      }
      if (!valid) return fail("signature", "Ed25519 signature over nonce, peer id and subject key is invalid");
      checks.push({ name: "signature", ok: true, detail: "binds nonce (freshness), peer id and certified key" });
      return { format: DEV_FORMAT, ok: true, checks, claims: { platform: "dev", hardware: false } };
    },
  });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let d = 0;
  for (let i = 0; i < a.byteLength; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
