/**
 * GET /v1/audit?after=SEQ&limit=N  -> { items: AuditRecord[], next?: SEQ }
 * GET /v1/audit/export              -> application/x-ndjson, every record (or after=SEQ)
 * Mount with `app.route("/v1/audit", auditRoutes({ log }))`.
 */
import { Hono, type Context } from "hono";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { errorResponse } from "../agreements/http.ts";
import { auditPageSizeDefault, auditPageSizeMax } from "./constants.ts";
import type { AuditLog } from "./log.ts";

export type AuditRoutesDeps = { log: Pick<AuditLog, "page" | "jsonLines"> };

function intParam(c: Context, name: string, min: number): number | undefined {
  const v = c.req.query(name);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) throw new MalformedInputError(`${name} must be an integer from ${min}`);
  return Number(v);
}

export function auditRoutes(deps: AuditRoutesDeps): Hono {
  const app = new Hono();
  app.get("/", (c) => {
    const after = intParam(c, "after", 0) ?? 0;
    const limit = Math.min(intParam(c, "limit", 1) ?? auditPageSizeDefault, auditPageSizeMax);
    const items = deps.log.page(after, limit);
    const body: { items: typeof items; next?: number } = { items };
    if (items.length === limit) body.next = items[items.length - 1]!.seq;
    return c.json(body);
  });
  app.get("/export", (c) => {
    const after = intParam(c, "after", 0) ?? 0;
    const lines = deps.log.jsonLines(after);
    const encoder = new TextEncoder();
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = lines.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      },
    });
    return c.body(stream, 200, { "content-type": "application/x-ndjson" });
  });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}
