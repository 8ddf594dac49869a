import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import {
  divRoundHalfEven,
  invoiceCsv,
  invoiceFor,
  InvoicePeriodError,
  loadRateCards,
  parseRateCard,
  RateCardError,
  UnknownRateCardError,
  UsageConflictError,
  UsageMeter,
  type UsageRecord,
} from "./index.ts";

const RATE_CARDS_DIR = join(import.meta.dir, "rate-cards");
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "grey-billing-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const AGREEMENT = { id: "agr-1", version: 3, provider: "org-a", consumer: "org-b", billing: { rateCard: "standard-2024" } };
const FROM = new Date("2024-03-01T00:00:00Z");
const TO = new Date("2024-04-01T00:00:00Z");
const HOUR_S = 3600;
const GB = 10 ** 9;

function usage(id: string, over: Partial<UsageRecord> = {}): UsageRecord {
  return { id, agreementId: "agr-1", subtaskId: "task-1/0", at: Date.parse("2024-03-10T12:00:00Z"), cpuMilliCoreSeconds: 0, memoryByteSeconds: 0, transferBytes: 0, ...over };
}

describe("money", () => {
  test("round half to even", () => {
    expect([5n, 15n, 25n, -5n, -15n, 14n, 16n].map((n) => divRoundHalfEven(n, 10n))).toEqual([0n, 2n, 2n, 0n, -2n, 1n, 2n]);
    expect(divRoundHalfEven(7n, 3n)).toBe(2n);
    expect(() => divRoundHalfEven(1n, 0n)).toThrow();
  });
  test("never off by more than half a unit", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 80n }), fc.bigInt({ min: 1n, max: 2n ** 40n }), (n, d) => {
        const q = divRoundHalfEven(n, d);
        const diff2 = (q * d - n) * 2n;
        expect(diff2 <= d && diff2 >= -d).toBe(true);
      }),
    );
  });
});

describe("rate cards", () => {
  test("the shipped standard-2024 card loads", () => {
    const cards = loadRateCards(RATE_CARDS_DIR);
    const card = cards.effective("standard-2024", FROM);
    expect(card).toMatchObject({ id: "standard-2024", version: 1, currency: "EUR", minorUnitDigits: 2 });
    expect(card.prices.cpu).toEqual({ minorUnits: 4, per: 1, unit: "core-hour", baseUnitsPerUnit: 3_600_000n });
    expect(() => cards.effective("standard-2024", new Date("2023-12-31T23:59:59Z"))).toThrow(UnknownRateCardError);
    expect(() => cards.effective("gold", FROM)).toThrow(UnknownRateCardError);
  });

  test("later versions take effect at their date", () => {
    const dir = tempDir();
    const text = readFileSync(join(RATE_CARDS_DIR, "standard-2024.yaml"), "utf8");
    writeFileSync(join(dir, "a.yaml"), text);
    writeFileSync(join(dir, "b.yaml"), text.replace("version: 1", "version: 2").replace("2024-01-01", "2024-06-01").replace("minor_units: 4,", "minor_units: 5,"));
    const cards = loadRateCards(dir);
    expect(cards.effective("standard-2024", FROM).version).toBe(1);
    expect(cards.effective("standard-2024", new Date("2024-06-01T00:00:00Z")).prices.cpu.minorUnits).toBe(5);
  });

  test("a bad card lists every problem", () => {
    const bad = `rate_card:\n  id: Std\n  version: 0\n  effective_from: yesterday\n  currency: euro\n  minor_unit_digits: 2\n  prices:\n    cpu: { minor_units: 1.5, per: 1, unit: core-hour }\n    memory: { minor_units: 1, per: 1, unit: GB-hour }\n    transfer: { minor_units: 1, per: 1, unit: GB }\n`;
    try {
      parseRateCard(bad, "bad.yaml");
      throw new Error("expected RateCardError");
    } catch (e) {
      expect(e).toBeInstanceOf(RateCardError);
      const paths = (e as RateCardError).problems.map((p) => p.split(":")[0]);
      expect(paths).toEqual(["rate_card.id", "rate_card.version", "rate_card.effective_from", "rate_card.currency", "rate_card.prices.cpu.minor_units"]);
    }
    expect(() => parseRateCard(bad.replace("Std", "std").replace("version: 0", "version: 1").replace("yesterday", '"2024-01-01T00:00:00Z"').replace("euro", "EUR").replace("1.5", "1").replace("unit: GB }", "unit: parsec }"), "x")).toThrow(
      "rate_card.prices.transfer.unit",
    );
  });
});

describe("metering and invoices", () => {
  test("known usage gives the hand-computed invoice, JSON and CSV", () => {
    const meter = UsageMeter.open(join(tempDir(), "hub.db"));
    const rateCards = loadRateCards(RATE_CARDS_DIR);
    // 10 core-hours of cpu at 4 cents per core-hour = 40 cents.
    meter.record(usage("u1", { cpuMilliCoreSeconds: 6 * HOUR_S * 1000 }));
    meter.record(usage("u2", { subtaskId: "task-1/1", cpuMilliCoreSeconds: 4 * HOUR_S * 1000 }));
    // 100 GB held for 3 hours = 300 GB-hours at 5 cents per 10 GB-hours = 150 cents.
    meter.record(usage("u3", { memoryByteSeconds: BigInt(100 * GB) * BigInt(3 * HOUR_S) }));
    // 12.5 GB transferred at 2 cents per GB = 25 cents.
    meter.record(usage("u4", { transferBytes: 12.5 * GB }));
    // Outside the period: not billed.
    meter.record(usage("u5", { at: TO.getTime(), cpuMilliCoreSeconds: 999_999_999 }));
    meter.record(usage("u6", { agreementId: "agr-2", cpuMilliCoreSeconds: 999_999_999 }));

    const inv = invoiceFor(AGREEMENT, { meter, rateCards }, FROM, TO);
    expect(inv.lines.map((l) => [l.resource, l.quantity, l.amountMinor])).toEqual([
      ["cpu", "36000000", 40],
      ["memory", "1080000000000000", 150],
      ["transfer", "12500000000", 25],
    ]);
    expect(inv).toMatchObject({ totalMinor: 215, currency: "EUR", records: 4, rateCard: { id: "standard-2024", version: 1 }, rounding: "half-even, once per line" });
    expect(invoiceCsv(inv)).toBe(
      [
        "agreement_id,agreement_version,provider,consumer,period_from,period_to,rate_card,rate_card_version,currency,resource,quantity,quantity_unit,price_minor_units,price_per,price_unit,amount_minor",
        "agr-1,3,org-a,org-b,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,standard-2024,1,EUR,cpu,36000000,millicore-second,4,1,core-hour,40",
        "agr-1,3,org-a,org-b,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,standard-2024,1,EUR,memory,1080000000000000,byte-second,5,10,GB-hour,150",
        "agr-1,3,org-a,org-b,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,standard-2024,1,EUR,transfer,12500000000,byte,2,1,GB,25",
        "agr-1,3,org-a,org-b,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,standard-2024,1,EUR,total,,,,,,215",
        "",
      ].join("\n"),
    );
    // Reproducible: the same inputs give the same bytes.
    expect(JSON.stringify(invoiceFor(AGREEMENT, { meter, rateCards }, FROM, TO))).toBe(JSON.stringify(inv));
    meter.close();
  });

  test("rounding happens once per line, half to even", () => {
    const meter = UsageMeter.open(join(tempDir(), "hub.db"));
    const rateCards = loadRateCards(RATE_CARDS_DIR);
    // 2 * 0.0625 core-hour = 0.125 core-hour * 4 cents = 0.5 cent -> 0 (even). The two records are one line, rounded once.
    meter.record(usage("a", { cpuMilliCoreSeconds: 225_000 }));
    meter.record(usage("b", { cpuMilliCoreSeconds: 225_000 }));
    // 0.75 GB * 2 cents = 1.5 cents -> 2 (even).
    meter.record(usage("c", { transferBytes: 0.75 * GB }));
    const inv = invoiceFor(AGREEMENT, { meter, rateCards }, FROM, TO);
    expect(inv.lines.map((l) => l.amountMinor)).toEqual([0, 0, 2]);
    expect(inv.totalMinor).toBe(2);
    meter.close();
  });

  test("a record applied twice counts once; same id, other content is a conflict", () => {
    const meter = UsageMeter.open(join(tempDir(), "hub.db"));
    const r = usage("u1", { cpuMilliCoreSeconds: HOUR_S * 1000 });
    expect(meter.record(r)).toBe("recorded");
    expect(meter.record({ ...r })).toBe("duplicate");
    expect(meter.record({ ...r, cpuMilliCoreSeconds: BigInt(HOUR_S * 1000) })).toBe("duplicate");
    expect(() => meter.record({ ...r, cpuMilliCoreSeconds: 1 })).toThrow(UsageConflictError);
    expect(meter.totals("agr-1", FROM, TO)).toEqual({ cpu: 3_600_000n, memory: 0n, transfer: 0n, records: 1 });
    expect(() => meter.record(usage("neg", { transferBytes: -1 }))).toThrow(MalformedInputError);
    expect(() => meter.record(usage("frac", { transferBytes: 1.5 }))).toThrow(MalformedInputError);
    meter.close();
  });

  test("period must be ordered and bounded", () => {
    const meter = UsageMeter.open(join(tempDir(), "hub.db"));
    const deps = { meter, rateCards: loadRateCards(RATE_CARDS_DIR) };
    expect(() => invoiceFor(AGREEMENT, deps, TO, FROM)).toThrow(InvoicePeriodError);
    expect(() => invoiceFor(AGREEMENT, deps, FROM, new Date("2026-01-01T00:00:00Z"))).toThrow(InvoicePeriodError);
    meter.close();
  });
});
