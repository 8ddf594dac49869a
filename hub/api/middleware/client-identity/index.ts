/**
 * Requires a verified federation client certificate. The TLS server verifies
 * the peer certificate against the federation CA and passes the outcome in
 * `c.env.peer`; this sets `c.var.identity` or answers 401.
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "../../errors.ts";
import type { Env } from "../../types.ts";

export type ClientIdentityOptions = {
  /** Paths served without a client certificate (exact match). */
  publicPaths?: readonly string[];
};

export function clientIdentity(options: ClientIdentityOptions = {}): MiddlewareHandler<Env> {
  const publicPaths = new Set(options.publicPaths ?? []);
  for (const p of publicPaths) if (!p.startsWith("/")) throw new Error(`clientIdentity: public path ${p} must start with /`);

  return async function clientIdentity(c, next) {
    if (publicPaths.has(c.req.path)) return next();
    const peer = c.env?.peer;
    if (peer && "identity" in peer) {
      c.set("identity", peer.identity);
      return next();
    }
    const message = peer && "refused" in peer ? `client certificate refused: ${peer.refused}` : "client certificate required";
    return jsonError(c, 401, "ERR_UNAUTHORIZED", message);
  };
}
