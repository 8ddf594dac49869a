/**
 * One-time join tokens. Only sha256(secret) is stored; consuming is atomic
 * (BEGIN IMMEDIATE) so two hubs or processes cannot both accept one token.
 */
import type { Database } from "bun:sqlite";
import { randomBytes, timingSafeEqual } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { MalformedInputError, TokenError } from "../../plugins/sdk/errors.ts";
import { outstandingTokensMax, tokenTtlMsMax } from "../../plugins/sdk/limits.ts";
import { IdSchema } from "../../plugins/sdk/wire.ts";
import { TokenLimitError } from "./errors.ts";

export type TokenScope = { cluster: string; org: string; region: string };
export type CreateTokenInput = TokenScope & { ttlMs: number; now: Date };
export type CreatedToken = { tokenId: string; secret: Uint8Array; expiresAt: Date };

export const TOKEN_SECRET_BYTES = 32;
const TOKEN_ID_RE = /^[0-9a-f]{32}$/;

type TokenRow = {
  secret_hash: Uint8Array;
  cluster_id: string;
  org: string;
  region: string;
  expires_at: number;
  used_at: number | null;
};

export function checkIds(scope: TokenScope): void {
  const problems: string[] = [];
  for (const key of ["cluster", "org", "region"] as const) {
    if (!IdSchema.safeParse(scope[key]).success) problems.push(`${key} ${JSON.stringify(scope[key])}: lowercase letters, digits and '-', at most 63`);
  }
  if (problems.length) throw new MalformedInputError(problems.join("; "));
}

export function tokenStore(db: Database) {
  const countOutstanding = db.query<{ n: number }, [number]>("SELECT count(*) AS n FROM tokens WHERE used_at IS NULL AND expires_at > ?");
  const insert = db.query(
    "INSERT INTO tokens (token_id, secret_hash, cluster_id, org, region, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
  );
  const select = db.query<TokenRow, [string]>("SELECT secret_hash, cluster_id, org, region, expires_at, used_at FROM tokens WHERE token_id = ?");
  const markUsed = db.query("UPDATE tokens SET used_at = ? WHERE token_id = ? AND used_at IS NULL");
  const purge = db.query("DELETE FROM tokens WHERE expires_at < ?");

  const create = db.transaction((input: CreateTokenInput): CreatedToken => {
    const now = input.now.getTime();
    if ((countOutstanding.get(now)?.n ?? 0) >= outstandingTokensMax) throw new TokenLimitError(outstandingTokensMax);
    const tokenId = randomBytes(16).toString("hex");
    const secret = new Uint8Array(randomBytes(TOKEN_SECRET_BYTES));
    const expiresAt = now + input.ttlMs;
    insert.run(tokenId, sha256(secret), input.cluster, input.org, input.region, now, expiresAt);
    return { tokenId, secret, expiresAt: new Date(expiresAt) };
  });

  const consume = db.transaction((tokenId: string, secret: Uint8Array, now: number): TokenScope => {
    const row = TOKEN_ID_RE.test(tokenId) ? select.get(tokenId) : null;
    if (!row) throw new TokenError("unknown", "unknown join token");
    // The secret is checked first: without it, a caller learns nothing about the token's state.
    const presented = sha256(secret);
    if (secret.byteLength !== TOKEN_SECRET_BYTES || !timingSafeEqual(presented, row.secret_hash)) {
      throw new TokenError("forged", "join token secret does not match");
    }
    if (row.used_at !== null) throw new TokenError("used", "join token was already used");
    if (now >= row.expires_at) throw new TokenError("expired", `join token expired at ${new Date(row.expires_at).toISOString()}`);
    markUsed.run(now, tokenId);
    return { cluster: row.cluster_id, org: row.org, region: row.region };
  });

  return {
    /** New one-time token. MalformedInputError (ids, ttl), TokenLimitError (too many outstanding). */
    createToken(input: CreateTokenInput): CreatedToken {
      checkIds(input);
      if (!(Number.isInteger(input.ttlMs) && input.ttlMs > 0 && input.ttlMs <= tokenTtlMsMax)) {
        throw new MalformedInputError(`token ttl ${input.ttlMs} ms outside (0, ${tokenTtlMsMax}]`);
      }
      return create.immediate(input);
    },
    /** Use a token once. TokenError reason unknown | forged | used | expired. */
    consumeToken(tokenId: string, secret: Uint8Array, now: Date): TokenScope {
      return consume.immediate(tokenId, secret, now.getTime());
    },
    /** Drop tokens that expired before `before` (used or not). Returns how many. */
    purgeExpiredTokens(before: Date): number {
      return purge.run(before.getTime()).changes;
    },
  };
}

export type TokenStore = ReturnType<typeof tokenStore>;
