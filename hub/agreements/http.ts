/**
 * JSON error bodies for the agreement, billing and audit routers:
 * `{ error: { code, message, problems? } }`. Same shape as hub/api/errors.ts,
 * plus the problem list of an invalid agreement.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { GreyError } from "../../plugins/sdk/errors.ts";
import { AgreementInvalidError } from "./errors.ts";

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  ERR_MALFORMED_INPUT: 400,
  ERR_AGREEMENT_INVALID: 400,
  ERR_INVOICE_PERIOD: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_USAGE_CONFLICT: 409,
  ERR_AGREEMENT_LIMIT: 409,
  ERR_MESSAGE_TOO_LARGE: 413,
  ERR_UNKNOWN_RATE_CARD: 422,
  ERR_RATE_LIMITED: 429,
};

export function errorResponse(c: Context, err: unknown) {
  if (err instanceof AgreementInvalidError) {
    return c.json({ error: { code: err.code, message: "the agreement has problems", problems: err.problems } }, 400);
  }
  if (err instanceof GreyError) return c.json({ error: { code: err.code, message: err.message } }, STATUS_BY_CODE[err.code] ?? 500);
  return c.json({ error: { code: "ERR_INTERNAL", message: "internal error" } }, 500);
}
