/**
 * Refuses request bodies larger than `maxBytes` with 413, whether announced
 * by Content-Length or streamed chunked (counted as it is read).
 */
import type { MiddlewareHandler } from "hono";
import { jsonError } from "../../errors.ts";

export type BodyLimitOptions = { maxBytes: number };

export function bodyLimit(options: BodyLimitOptions): MiddlewareHandler {
  const { maxBytes } = options;
  if (!(Number.isInteger(maxBytes) && maxBytes >= 0)) throw new Error(`bodyLimit: maxBytes must be a non-negative integer, got ${maxBytes}`);
  const tooLarge = `request body exceeds ${maxBytes} bytes`;

  return async function bodyLimit(c, next) {
    if (!c.req.raw.body) return next();
    const declared = c.req.header("content-length");
    if (declared !== undefined && !/^\d+$/.test(declared)) return jsonError(c, 400, "ERR_MALFORMED_INPUT", "invalid Content-Length");
    if (declared !== undefined && Number(declared) > maxBytes) return jsonError(c, 413, "ERR_MESSAGE_TOO_LARGE", tooLarge);

    // Read the body up to the limit so a chunked upload cannot exceed it either.
    const reader = c.req.raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => {});
        return jsonError(c, 413, "ERR_MESSAGE_TOO_LARGE", tooLarge);
      }
      chunks.push(value);
    }
    const body = Buffer.concat(chunks);
    // Copy url, method and headers explicitly: the server's request object (@hono/node-server with
    // overrideGlobalObjects: false) is not a native Request, and `new Request(it, init)` would
    // turn it into a GET for every later middleware (c.req.method).
    const raw = c.req.raw;
    c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body, signal: raw.signal });
    return next();
  };
}
