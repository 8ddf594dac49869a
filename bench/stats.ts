/**
 * Shared helpers for the benches: order statistics and a plain-text table.
 * Every bench prints its figures beside a baseline measured in the same run.
 */

/** Median (mean of the two middle values for an even count). NaN for no samples. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The p-th percentile (0 < p <= 100), nearest rank. NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  if (!(p > 0 && p <= 100)) throw new Error(`percentile: p must be in (0, 100], got ${p}`);
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.ceil((p / 100) * s.length)) - 1]!;
}

export const ms = (n: number): string => (Number.isNaN(n) ? "-" : `${n.toFixed(1)} ms`);
export const mb = (n: number): string => (Number.isNaN(n) ? "-" : `${n.toFixed(1)} MB`);
export const perSecond = (n: number, unit = "/s"): string => (Number.isNaN(n) ? "-" : `${n >= 100 ? n.toFixed(0) : n.toFixed(1)}${unit}`);
/** ours / baseline as "1.23x" ("-" when either is missing). */
export const ratio = (ours: number, baseline: number): string => (Number.isFinite(ours / baseline) ? `${(ours / baseline).toFixed(2)}x` : "-");

/** Print rows as aligned columns under a header. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  for (const r of all) console.log(r.map((c, i) => (c ?? "").padEnd(widths[i]!)).join("  ").trimEnd());
}
