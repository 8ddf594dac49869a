/**
 * Agreement routes. Mount with `app.route("/v1/agreements", agreementRoutes(deps))`:
 *   POST /v1/agreements                  YAML or JSON body; admins only. 201 created, 200 updated/unchanged.
 *                                        400 { error: { code, message, problems: [{ path, line, message }] } }
 *   GET  /v1/agreements                  ?after=ID&limit=N  -> { items, next? }
 *   GET  /v1/agreements/:id
 *   GET  /v1/agreements/:id/invoice      ?from=ISO&to=ISO&format=json|csv
 * Every created or updated agreement is appended to the audit log as "agreement-change".
 */
import { Hono, type Context } from "hono";
import { ForbiddenError, MalformedInputError, NotFoundError } from "../../plugins/sdk/errors.ts";
import { adminUri, hubUri, memberUri, type FederationIdentity } from "../../plugins/sdk/identity.ts";
import { apiPageSizeDefault, apiPageSizeMax } from "../../plugins/sdk/limits.ts";
import { IdSchema } from "../../plugins/sdk/wire.ts";
import type { AuditLog } from "../audit/log.ts";
import { invoiceCsv, invoiceFor, type UsageMeter, type RateCards } from "../billing/index.ts";
import { errorResponse } from "./http.ts";
import type { AgreementStore, ApplyResult } from "./store.ts";

export type AgreementRoutesEnv = { Variables: { identity?: FederationIdentity } };

export type AgreementRoutesDeps = {
  store: Pick<AgreementStore, "getAgreement" | "listAgreements"> & {
    /** The store's own, or (consensus enabled) one that writes through the federation log. */
    applyAgreement(text: string, now: number): ApplyResult | Promise<ApplyResult>;
  };
  meter: UsageMeter;
  rateCards: RateCards;
  audit?: Pick<AuditLog, "append">;
  clock: { now(): number };
  /**
   * Who may POST: by default only callers whose verified identity has role
   * "admin" (set by the API's clientIdentity middleware). Refused: 403.
   */
  mayApply?: (identity: FederationIdentity | undefined) => boolean;
};

const AGREEMENT_ID_RE = /^agr-[0-9a-f]{16}$/;

export function identityUri(identity: FederationIdentity | undefined): string {
  if (!identity) return "anonymous";
  if (identity.role === "member" && identity.region && identity.cluster) return memberUri(identity.org, identity.region, identity.cluster);
  if (identity.role === "hub" && identity.name) return hubUri(identity.org, identity.name);
  if (identity.role === "admin" && identity.name) return adminUri(identity.org, identity.name);
  return `${identity.role}:${identity.org}:${identity.serial}`;
}

function agreementIdParam(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!AGREEMENT_ID_RE.test(id)) throw new NotFoundError(`no agreement ${JSON.stringify(id)}`);
  return id;
}

function dateParam(c: Context, name: string): Date {
  const v = c.req.query(name);
  const d = v === undefined ? null : new Date(v);
  if (!d || !/^\d{4}-\d{2}-\d{2}/.test(v!) || Number.isNaN(d.getTime())) throw new MalformedInputError(`${name} must be an ISO 8601 date or time`);
  return d;
}

export function agreementRoutes(deps: AgreementRoutesDeps): Hono<AgreementRoutesEnv> {
  const { store, audit } = deps;
  const mayApply = deps.mayApply ?? ((identity) => identity?.role === "admin");
  const app = new Hono<AgreementRoutesEnv>();

  app.post("/", async (c) => {
    const identity = c.get("identity");
    if (!mayApply(identity)) throw new ForbiddenError("only federation admins may apply agreements");
    const text = await c.req.text();
    const { agreement, change } = await store.applyAgreement(text, deps.clock.now());
    if (change !== "unchanged") {
      audit?.append({
        kind: "agreement-change",
        actor: identityUri(identity),
        subject: agreement.id,
        details: { change, version: agreement.version, provider: agreement.provider, consumer: agreement.consumer },
      });
    }
    return c.json({ agreement, change }, change === "created" ? 201 : 200);
  });

  app.get("/", (c) => {
    const after = c.req.query("after");
    const limitText = c.req.query("limit");
    if (after !== undefined && !AGREEMENT_ID_RE.test(after)) throw new MalformedInputError("after must be an agreement id");
    if (limitText !== undefined && (!/^\d{1,9}$/.test(limitText) || Number(limitText) < 1)) {
      throw new MalformedInputError(`limit must be an integer from 1 (at most ${apiPageSizeMax} are returned)`);
    }
    const limit = Math.min(limitText === undefined ? apiPageSizeDefault : Number(limitText), apiPageSizeMax);
    const all = store.listAgreements();
    const items = all.filter((a) => after === undefined || a.id > after).slice(0, limit);
    const body: { items: typeof items; next?: string } = { items };
    const last = items[items.length - 1];
    if (last && all[all.length - 1] !== last) body.next = last.id;
    return c.json(body);
  });

  app.get("/:id", (c) => {
    const id = agreementIdParam(c);
    const agreement = store.getAgreement(id);
    if (!agreement) throw new NotFoundError(`no agreement ${id}`);
    return c.json(agreement);
  });

  app.get("/:id/invoice", (c) => {
    const id = agreementIdParam(c);
    const agreement = store.getAgreement(id);
    if (!agreement) throw new NotFoundError(`no agreement ${id}`);
    const format = c.req.query("format") ?? "json";
    if (format !== "json" && format !== "csv") throw new MalformedInputError("format must be json or csv");
    const invoice = invoiceFor(agreement, deps, dateParam(c, "from"), dateParam(c, "to"));
    if (format === "json") return c.json(invoice);
    const filename = `invoice-${IdSchema.safeParse(id).success ? id : "agreement"}-${invoice.period.from.slice(0, 10)}.csv`;
    return c.body(invoiceCsv(invoice), 200, { "content-type": "text/csv; charset=utf-8", "content-disposition": `attachment; filename="${filename}"` });
  });

  app.onError((err, c) => errorResponse(c, err));
  return app;
}
