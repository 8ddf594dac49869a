/**
 * Agreements and billing as a hub service: the store and usage meter live
 * in DIR/agreements.db, rate cards are the built-in ones (embedded in the
 * binary) plus any in the configured directory, routes under /v1/agreements.
 */
import { join } from "node:path";
import { RateCards, loadRateCards, parseRateCard } from "../billing/rate-card.ts";
import { UsageMeter } from "../billing/meter.ts";
import type { HubService, HubServiceContext } from "../services.ts";
import type { FedlogWrites } from "../fedlog/service.ts";
import { parseAgreement, type ParseOptions } from "./parse.ts";
import { agreementRoutes, type AgreementRoutesDeps } from "./routes.ts";
import { AgreementStore, agreementId, type ApplyResult } from "./store.ts";
import standard2024 from "../billing/rate-cards/standard-2024.yaml" with { type: "text" };

export const AGREEMENTS_DB = "agreements.db";

export function builtinRateCards(extraDir?: string): RateCards {
  const builtin = [parseRateCard(standard2024, "builtin:standard-2024.yaml")];
  const extra = extraDir ? loadRateCards(extraDir).list() : [];
  return new RateCards([...builtin, ...extra]);
}

/**
 * Consensus enabled: an agreement is applied through the federation log and
 * every hub applies it into its own agreements.db (same terms, same version),
 * so any hub serves it, also after the one that took the request is gone.
 */
function applyThroughLog(fedlog: FedlogWrites, store: AgreementStore, parse: ParseOptions) {
  return async (text: string, now: number): Promise<ApplyResult> => {
    const terms = parseAgreement(text, parse); // problems answer 400 here, before the log
    const id = agreementId(terms.provider, terms.consumer);
    const before = store.getAgreement(id);
    await fedlog.write({ type: "agreement-applied", agreementId: id, body: { source: text }, at: now });
    const agreement = store.requireAgreement(id);
    return { agreement, change: !before ? "created" : before.version !== agreement.version ? "updated" : "unchanged" };
  };
}

export function agreementsService(fedlog?: FedlogWrites): HubService & { store?: AgreementStore; meter?: UsageMeter } {
  let store: AgreementStore | undefined;
  let meter: UsageMeter | undefined;
  return {
    name: "agreements",
    async start(ctx: HubServiceContext) {
      const rateCards = builtinRateCards(ctx.cfg.rateCardsDir);
      const path = join(ctx.cfg.dataDir, AGREEMENTS_DB);
      const parse: ParseOptions = { rateCardExists: (id) => rateCards.has(id) };
      const local = (store = AgreementStore.open(path, parse));
      meter = UsageMeter.open(path);
      let routeStore: AgreementRoutesDeps["store"] = local;
      if (fedlog?.active()) {
        fedlog.onApply("agreement-applied", (c) => void local.applyAgreement(String(c.body.source ?? ""), c.at));
        fedlog.onSnapshot("agreements", { owner: "agreement-applied", export: () => local.exportSnapshot(), import: (image) => local.importSnapshot(image) });
        routeStore = { getAgreement: (id) => local.getAgreement(id), listAgreements: () => local.listAgreements(), applyAgreement: applyThroughLog(fedlog, local, parse) };
      }
      ctx.app.route("/v1/agreements", agreementRoutes({ store: routeStore, meter, rateCards, audit: ctx.audit, clock: ctx.clock }) as never);
      this.store = store;
      this.meter = meter;
    },
    async stop() {
      store?.close?.();
      meter?.close?.();
    },
  };
}
