/** JSON error bodies `{ error: { code, message } }` and the status for each typed error. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { GreyError } from "../../plugins/sdk/errors.ts";

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  ERR_MALFORMED_INPUT: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_MESSAGE_TOO_LARGE: 413,
};

export function jsonError(c: Context, status: ContentfulStatusCode, code: string, message: string) {
  return c.json({ error: { code, message } }, status);
}

/** Typed errors keep their code and message; anything else is a 500 that reveals nothing. */
export function errorResponse(c: Context, err: unknown) {
  if (err instanceof GreyError) return jsonError(c, STATUS_BY_CODE[err.code] ?? 500, err.code, err.message);
  return jsonError(c, 500, "ERR_INTERNAL", "internal error");
}
