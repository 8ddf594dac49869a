/**
 * Rate cards: versioned YAML files of per-unit prices in integer minor units.
 *
 *   rate_card:
 *     id: standard-2024
 *     version: 1
 *     effective_from: "2024-01-01T00:00:00Z"
 *     currency: EUR
 *     minor_unit_digits: 2
 *     prices:
 *       cpu:      { minor_units: 4, per: 1,  unit: core-hour }
 *       memory:   { minor_units: 5, per: 10, unit: GB-hour }
 *       transfer: { minor_units: 2, per: 1,  unit: GB }
 *
 * An invoice uses the highest version of the agreement's rate card whose
 * effective_from is at or before the period's start.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { IdSchema } from "../../plugins/sdk/wire.ts";
import { priceMinorUnitsMax, rateCardBytesMax, rateCardFilesMax } from "./constants.ts";
import { RateCardError, UnknownRateCardError } from "./errors.ts";

export const USAGE_RESOURCES = ["cpu", "memory", "transfer"] as const;
export type UsageResource = (typeof USAGE_RESOURCES)[number];

/** The integer base unit each usage quantity is metered in. */
export const BASE_UNIT: Record<UsageResource, string> = { cpu: "millicore-second", memory: "byte-second", transfer: "byte" };

/** Price units a rate card may use, as multiples of the base unit. */
export const PRICE_UNITS: Record<UsageResource, Record<string, bigint>> = {
  cpu: { "core-second": 1000n, "core-hour": 3_600_000n },
  memory: { "GB-second": 10n ** 9n, "GB-hour": 3600n * 10n ** 9n, "GiB-second": 2n ** 30n, "GiB-hour": 3600n * 2n ** 30n },
  transfer: { byte: 1n, GB: 10n ** 9n, GiB: 2n ** 30n, TB: 10n ** 12n },
};

export type Price = { minorUnits: number; per: number; unit: string; baseUnitsPerUnit: bigint };

export type RateCard = {
  id: string;
  version: number;
  effectiveFrom: Date;
  currency: string;
  minorUnitDigits: number;
  prices: Record<UsageResource, Price>;
};

const priceSchema = z.strictObject({
  minor_units: z.number().int().min(0).max(priceMinorUnitsMax),
  per: z.number().int().min(1).max(1_000_000_000),
  unit: z.string(),
});

const cardSchema = z.strictObject({
  rate_card: z.strictObject({
    id: IdSchema,
    version: z.number().int().min(1).max(1_000_000),
    effective_from: z.iso.datetime({ offset: true }),
    currency: z.string().regex(/^[A-Z]{3}$/, "must be an ISO 4217 code such as EUR"),
    minor_unit_digits: z.number().int().min(0).max(4),
    prices: z.strictObject({ cpu: priceSchema, memory: priceSchema, transfer: priceSchema }),
  }),
});

/** Parse one rate card file; throws `RateCardError` listing every problem with its path. */
export function parseRateCard(text: string, source: string): RateCard {
  if (Buffer.byteLength(text, "utf8") > rateCardBytesMax) throw new RateCardError(source, [`larger than ${rateCardBytesMax} bytes`]);
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new RateCardError(source, [`not YAML: ${(e as Error).message.split("\n")[0]}`]);
  }
  const parsed = cardSchema.safeParse(raw);
  if (!parsed.success) throw new RateCardError(source, parsed.error.issues.map((i) => `${i.path.join(".") || "(document)"}: ${i.message}`));
  const c = parsed.data.rate_card;
  const problems: string[] = [];
  const prices = {} as Record<UsageResource, Price>;
  for (const r of USAGE_RESOURCES) {
    const p = c.prices[r];
    const base = PRICE_UNITS[r][p.unit];
    if (base === undefined) problems.push(`rate_card.prices.${r}.unit: must be one of ${Object.keys(PRICE_UNITS[r]).join(", ")}`);
    else prices[r] = { minorUnits: p.minor_units, per: p.per, unit: p.unit, baseUnitsPerUnit: base };
  }
  if (problems.length > 0) throw new RateCardError(source, problems);
  return { id: c.id, version: c.version, effectiveFrom: new Date(c.effective_from), currency: c.currency, minorUnitDigits: c.minor_unit_digits, prices };
}

/** A set of rate cards, all versions of each id. */
export class RateCards {
  private readonly byId = new Map<string, RateCard[]>();

  constructor(cards: readonly RateCard[]) {
    for (const card of cards) {
      const versions = this.byId.get(card.id) ?? [];
      if (versions.some((v) => v.version === card.version)) throw new RateCardError(card.id, [`version ${card.version} is defined twice`]);
      versions.push(card);
      versions.sort((a, b) => a.version - b.version);
      this.byId.set(card.id, versions);
    }
    for (const [id, versions] of this.byId) {
      for (let i = 1; i < versions.length; i++) {
        if (versions[i]!.effectiveFrom <= versions[i - 1]!.effectiveFrom) {
          throw new RateCardError(id, [`version ${versions[i]!.version} must take effect after version ${versions[i - 1]!.version}`]);
        }
      }
    }
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The version of `id` effective at `at`; `UnknownRateCardError` if none. */
  effective(id: string, at: Date): RateCard {
    const versions = this.byId.get(id) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) if (versions[i]!.effectiveFrom <= at) return versions[i]!;
    throw new UnknownRateCardError(id, at);
  }

  list(): RateCard[] {
    return [...this.byId.values()].flat();
  }
}

/** Read every `*.yaml` / `*.yml` file in `dir` (the hub does this at start, from a configured path). */
export function loadRateCards(dir: string): RateCards {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length > rateCardFilesMax) throw new RateCardError(dir, [`more than ${rateCardFilesMax} rate card files`]);
  const cards: RateCard[] = [];
  for (const f of files) {
    const path = join(dir, f);
    if (statSync(path).size > rateCardBytesMax) throw new RateCardError(path, [`larger than ${rateCardBytesMax} bytes`]);
    cards.push(parseRateCard(readFileSync(path, "utf8"), path));
  }
  return new RateCards(cards);
}
