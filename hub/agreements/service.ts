/**
 * Agreements and billing as a hub service: the store and usage meter live
 * in DIR/agreements.db, rate cards are the built-in ones (embedded in the
 * binary) plus any in the configured directory, routes under /v1/agreements.
 */
import { join } from "node:path";
import { RateCards, loadRateCards, parseRateCard } from "../billing/rate-card.ts";
import { UsageMeter } from "../billing/meter.ts";
import type { HubService, HubServiceContext } from "../services.ts";
import { agreementRoutes } from "./routes.ts";
import { AgreementStore } from "./store.ts";
import standard2024 from "../billing/rate-cards/standard-2024.yaml" with { type: "text" };

export const AGREEMENTS_DB = "agreements.db";

export function builtinRateCards(extraDir?: string): RateCards {
  const builtin = [parseRateCard(standard2024, "builtin:standard-2024.yaml")];
  const extra = extraDir ? loadRateCards(extraDir).list() : [];
  return new RateCards([...builtin, ...extra]);
}

export function agreementsService(): HubService & { store?: AgreementStore; meter?: UsageMeter } {
  let store: AgreementStore | undefined;
  let meter: UsageMeter | undefined;
  return {
    name: "agreements",
    async start(ctx: HubServiceContext) {
      const rateCards = builtinRateCards(ctx.cfg.rateCardsDir);
      const path = join(ctx.cfg.dataDir, AGREEMENTS_DB);
      store = AgreementStore.open(path, { rateCardExists: (id) => rateCards.has(id) });
      meter = UsageMeter.open(path);
      ctx.app.route("/v1/agreements", agreementRoutes({ store, meter, rateCards, audit: ctx.audit, clock: ctx.clock }) as never);
      this.store = store;
      this.meter = meter;
    },
    async stop() {
      store?.close?.();
      meter?.close?.();
    },
  };
}
