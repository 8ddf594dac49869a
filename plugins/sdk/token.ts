/**
 * Join tokens: `grey1_` + base64url(CBOR). They carry where to find the hub
 * (bootstrap multiaddrs and the hub's peer id), the federation CA fingerprint
 * the agent pins, and a one-time secret. The hub stores only a hash of it.
 */
import { z } from "zod";
import { decodeCbor, encodeCbor } from "./codec.ts";
import { TokenError } from "./errors.ts";

export const TOKEN_PREFIX = "grey1_";
const TOKEN_CHARS_MAX = 8192;

const TokenBody = z.object({
  v: z.literal(1),
  id: z.string().min(1).max(64),
  s: z.instanceof(Uint8Array).refine((b) => b.byteLength === 32, "secret must be 32 bytes"),
  ca: z.string().regex(/^[0-9a-f]{64}$/, "CA fingerprint must be sha256 hex"),
  hub: z.string().min(1).max(128),
  addrs: z.array(z.string().max(256)).min(1).max(16),
});

export interface JoinToken {
  tokenId: string;
  secret: Uint8Array;
  caFingerprint: string;
  hubPeerId: string;
  bootstrap: string[];
}

export function encodeJoinToken(t: JoinToken): string {
  const body = encodeCbor({ v: 1, id: t.tokenId, s: t.secret, ca: t.caFingerprint, hub: t.hubPeerId, addrs: t.bootstrap });
  return TOKEN_PREFIX + Buffer.from(body).toString("base64url");
}

export function decodeJoinToken(text: string): JoinToken {
  const s = text.trim();
  if (!s.startsWith(TOKEN_PREFIX) || s.length > TOKEN_CHARS_MAX || !/^[A-Za-z0-9_-]+$/.test(s.slice(TOKEN_PREFIX.length))) {
    throw new TokenError("malformed", "not a Grey join token (expected grey1_...)");
  }
  let raw: unknown;
  try {
    raw = decodeCbor(new Uint8Array(Buffer.from(s.slice(TOKEN_PREFIX.length), "base64url")));
  } catch {
    throw new TokenError("malformed", "join token is truncated or corrupt");
  }
  const r = TokenBody.safeParse(raw);
  if (!r.success) throw new TokenError("malformed", `join token is invalid: ${r.error.issues[0]?.path.join(".")} ${r.error.issues[0]?.message}`);
  return { tokenId: r.data.id, secret: r.data.s, caFingerprint: r.data.ca, hubPeerId: r.data.hub, bootstrap: r.data.addrs };
}
