/**
 * Invoices: one line per metered resource, amounts in integer minor units.
 *
 * Rounding: each line's exact amount is
 *   quantity (base units) * minor_units / (per * base units per price unit)
 * computed as a rational in bigint and rounded ONCE, half to even, to an
 * integer number of minor units. The total is the sum of the rounded lines.
 * The same usage, agreement and rate card version always give the same bytes.
 */
import { invoicePeriodMsMax } from "./constants.ts";
import { InvoiceOverflowError, InvoicePeriodError } from "./errors.ts";
import type { UsageTotals } from "./meter.ts";
import { divRoundHalfEven } from "./money.ts";
import { BASE_UNIT, USAGE_RESOURCES, type RateCard, type UsageResource } from "./rate-card.ts";

export type InvoiceLine = {
  resource: UsageResource;
  /** Metered quantity in `quantityUnit`, as a decimal integer string (may exceed 2^53). */
  quantity: string;
  quantityUnit: string;
  price: { minorUnits: number; per: number; unit: string };
  amountMinor: number;
};

export type Invoice = {
  agreementId: string;
  agreementVersion: number;
  provider: string;
  consumer: string;
  period: { from: string; to: string };
  rateCard: { id: string; version: number };
  currency: string;
  minorUnitDigits: number;
  rounding: "half-even, once per line";
  records: number;
  lines: InvoiceLine[];
  totalMinor: number;
};

export type InvoiceAgreement = { id: string; version: number; provider: string; consumer: string };

/** Checks a period: from < to, at most `invoicePeriodMsMax` long. */
export function checkPeriod(from: Date, to: Date): void {
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new InvoicePeriodError("from and to must be dates");
  if (from >= to) throw new InvoicePeriodError("from must be before to");
  if (to.getTime() - from.getTime() > invoicePeriodMsMax) throw new InvoicePeriodError(`a period may span at most ${invoicePeriodMsMax / 86_400_000} days`);
}

function safe(amount: bigint): number {
  if (amount > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvoiceOverflowError(amount);
  return Number(amount);
}

export function computeInvoice(agreement: InvoiceAgreement, card: RateCard, totals: UsageTotals, from: Date, to: Date): Invoice {
  checkPeriod(from, to);
  let total = 0n;
  const lines = USAGE_RESOURCES.map((resource): InvoiceLine => {
    const p = card.prices[resource];
    const amount = divRoundHalfEven(totals[resource] * BigInt(p.minorUnits), BigInt(p.per) * p.baseUnitsPerUnit);
    total += amount;
    return {
      resource,
      quantity: totals[resource].toString(),
      quantityUnit: BASE_UNIT[resource],
      price: { minorUnits: p.minorUnits, per: p.per, unit: p.unit },
      amountMinor: safe(amount),
    };
  });
  return {
    agreementId: agreement.id,
    agreementVersion: agreement.version,
    provider: agreement.provider,
    consumer: agreement.consumer,
    period: { from: from.toISOString(), to: to.toISOString() },
    rateCard: { id: card.id, version: card.version },
    currency: card.currency,
    minorUnitDigits: card.minorUnitDigits,
    rounding: "half-even, once per line",
    records: totals.records,
    lines,
    totalMinor: safe(total),
  };
}

const CSV_HEADER = [
  "agreement_id", "agreement_version", "provider", "consumer", "period_from", "period_to", "rate_card", "rate_card_version",
  "currency", "resource", "quantity", "quantity_unit", "price_minor_units", "price_per", "price_unit", "amount_minor",
];

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** RFC 4180 CSV (LF line ends), one row per line, then a "total" row. */
export function invoiceCsv(inv: Invoice): string {
  const prefix = [inv.agreementId, inv.agreementVersion, inv.provider, inv.consumer, inv.period.from, inv.period.to, inv.rateCard.id, inv.rateCard.version, inv.currency];
  const rows = inv.lines.map((l) => [...prefix, l.resource, l.quantity, l.quantityUnit, l.price.minorUnits, l.price.per, l.price.unit, l.amountMinor]);
  rows.push([...prefix, "total", "", "", "", "", "", inv.totalMinor]);
  return [CSV_HEADER, ...rows].map((r) => r.map(csvField).join(",")).join("\n") + "\n";
}
