/**
 * Quantities as people write them, parsed exactly (decimal fractions are kept
 * as rationals, never floats) into integer base units:
 *   cpu     -> milli-cores   ("1000 cores", "2", "0.5 cores", "500m", "250 millicores")
 *   memory  -> bytes         ("4 TB" = 4*10^12, "512 GiB" = 512*2^30, "512Gi", "100 MB")
 *   burst   -> permille      ("1.5x" = 1500, "150%" = 1500, 1.5 = 1500)
 * Each parser returns the value or a message saying what is wrong.
 */

export type Parsed = { ok: true; value: number } | { ok: false; message: string };

const NUMBER_WITH_UNIT_RE = /^\s*(\d{1,30})(?:\.(\d{1,30}))?\s*([A-Za-z%]*)\s*$/;

const CPU_UNITS: Record<string, bigint> = { "": 1000n, core: 1000n, cores: 1000n, m: 1n, millicore: 1n, millicores: 1n };

const MEMORY_UNITS: Record<string, bigint> = {
  b: 1n, byte: 1n, bytes: 1n,
  kb: 10n ** 3n, mb: 10n ** 6n, gb: 10n ** 9n, tb: 10n ** 12n, pb: 10n ** 15n,
  kib: 2n ** 10n, mib: 2n ** 20n, gib: 2n ** 30n, tib: 2n ** 40n, pib: 2n ** 50n,
  ki: 2n ** 10n, mi: 2n ** 20n, gi: 2n ** 30n, ti: 2n ** 40n, pi: 2n ** 50n,
};
const MEMORY_UNIT_NAMES = "B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB";

/** `text` times `unit`, exactly; null when the result is not a whole number of base units. */
function scaled(whole: string, fraction: string, unit: bigint): bigint | null {
  const denominator = 10n ** BigInt(fraction.length);
  const numerator = BigInt(whole + fraction) * unit;
  return numerator % denominator === 0n ? numerator / denominator : null;
}

function split(input: string | number): { whole: string; fraction: string; unit: string } | null {
  const text = typeof input === "number" ? numberText(input) : input;
  if (text === null) return null;
  const m = NUMBER_WITH_UNIT_RE.exec(text);
  if (!m) return null;
  return { whole: m[1]!, fraction: m[2] ?? "", unit: m[3]! };
}

/** Finite non-negative numbers as plain decimal text (YAML `limit: 4` arrives as a number). */
function numberText(n: number): string | null {
  if (!Number.isFinite(n) || n < 0) return null;
  const text = String(n);
  return /e/i.test(text) ? null : text;
}

function bounded(value: bigint, max: number, what: string): Parsed {
  if (value <= 0n) return { ok: false, message: `${what} must be greater than zero` };
  if (value > BigInt(max)) return { ok: false, message: `${what} exceeds the largest accepted value` };
  return { ok: true, value: Number(value) };
}

export function parseCpu(input: string | number, maxMilliCores: number): Parsed {
  const parts = split(input);
  if (!parts) return { ok: false, message: `cannot read cpu quantity ${JSON.stringify(input)} (write e.g. "1000 cores", "0.5 cores" or "500m")` };
  const unit = CPU_UNITS[parts.unit.toLowerCase()];
  if (unit === undefined) return { ok: false, message: `unknown cpu unit "${parts.unit}" (use cores or m for millicores)` };
  const milli = scaled(parts.whole, parts.fraction, unit);
  if (milli === null) return { ok: false, message: `cpu quantity ${JSON.stringify(input)} is finer than one millicore` };
  return bounded(milli, maxMilliCores, "cpu quantity");
}

export function parseBytes(input: string | number, maxBytes: number): Parsed {
  const parts = split(input);
  if (!parts) return { ok: false, message: `cannot read memory quantity ${JSON.stringify(input)} (write e.g. "4 TB" or "512 GiB")` };
  if (parts.unit === "") return { ok: false, message: `memory quantity ${JSON.stringify(input)} needs a unit (${MEMORY_UNIT_NAMES})` };
  const unit = MEMORY_UNITS[parts.unit.toLowerCase()];
  if (unit === undefined) return { ok: false, message: `unknown memory unit "${parts.unit}" (use ${MEMORY_UNIT_NAMES})` };
  const bytes = scaled(parts.whole, parts.fraction, unit);
  if (bytes === null) return { ok: false, message: `memory quantity ${JSON.stringify(input)} is not a whole number of bytes` };
  return bounded(bytes, maxBytes, "memory quantity");
}

/** "1.5x", "150%" or a bare 1.5, as permille of the limit (1500). */
export function parseBurst(input: string | number, minPermille: number, maxPermille: number): Parsed {
  const parts = split(input);
  const unit = parts === null ? undefined : ({ "": 1000n, x: 1000n, "%": 10n } as Record<string, bigint>)[parts.unit.toLowerCase()];
  if (!parts || unit === undefined) return { ok: false, message: `cannot read burst ${JSON.stringify(input)} (write e.g. "1.5x" or "150%")` };
  const permille = scaled(parts.whole, parts.fraction, unit);
  if (permille === null) return { ok: false, message: `burst ${JSON.stringify(input)} is finer than 0.001x` };
  if (permille < BigInt(minPermille) || permille > BigInt(maxPermille)) {
    return { ok: false, message: `burst must be from ${formatPermille(minPermille)} to ${formatPermille(maxPermille)}` };
  }
  return { ok: true, value: Number(permille) };
}

/** Exact decimal text of `value / 10^digits`, trailing zeros trimmed. */
export function decimal(value: bigint | number, digits: number): string {
  const v = BigInt(value);
  const sign = v < 0n ? "-" : "";
  const abs = v < 0n ? -v : v;
  const scale = 10n ** BigInt(digits);
  const fraction = (abs % scale).toString().padStart(digits, "0").replace(/0+$/, "");
  return `${sign}${abs / scale}${fraction ? `.${fraction}` : ""}`;
}

export function formatMilliCores(milli: number): string {
  return `${decimal(milli, 3)} ${milli === 1000 ? "core" : "cores"}`;
}

/** Readable and exact: the largest unit that divides evenly (decimal to 0.001, binary whole), else bytes. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [["TB", 1e12], ["GB", 1e9], ["MB", 1e6]] as const) {
    if (bytes >= size && bytes % (size / 1000) === 0) return `${decimal(bytes / (size / 1000), 3)} ${unit}`;
  }
  for (const [unit, size] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

export function formatPermille(permille: number): string {
  return `${decimal(permille, 3)}x`;
}
