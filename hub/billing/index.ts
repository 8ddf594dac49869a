/** Metering and billing: usage records, versioned rate cards, invoices in integer minor units. */
import { computeInvoice, type Invoice, type InvoiceAgreement } from "./invoice.ts";
import type { UsageMeter } from "./meter.ts";
import type { RateCards } from "./rate-card.ts";

export * from "./constants.ts";
export * from "./errors.ts";
export { checkPeriod, computeInvoice, invoiceCsv, type Invoice, type InvoiceAgreement, type InvoiceLine } from "./invoice.ts";
export { UsageMeter, type UsageRecord, type UsageTotals } from "./meter.ts";
export { divRoundHalfEven } from "./money.ts";
export { BASE_UNIT, loadRateCards, parseRateCard, PRICE_UNITS, RateCards, USAGE_RESOURCES, type Price, type RateCard, type UsageResource } from "./rate-card.ts";

/** The invoice for one agreement over [from, to), priced by the rate card version effective at `from`. */
export function invoiceFor(
  agreement: InvoiceAgreement & { billing: { rateCard: string } },
  deps: { meter: UsageMeter; rateCards: RateCards },
  from: Date,
  to: Date,
): Invoice {
  const card = deps.rateCards.effective(agreement.billing.rateCard, from);
  return computeInvoice(agreement, card, deps.meter.totals(agreement.id, from, to), from, to);
}
