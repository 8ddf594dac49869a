/** IPv4/IPv6 CIDR blocks as [first, last] bigint ranges: parse, canonicalise, overlap. */
import { MalformedInputError } from "../sdk/errors.ts";

export interface Cidr {
  family: 4 | 6;
  first: bigint;
  last: bigint;
  prefix: number;
  /** Canonical text (host bits cleared, IPv6 in full lowercase hex groups). */
  text: string;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:]+$/.test(s) || (s.match(/::/g) ?? []).length > 1) return undefined;
  const [head, tail] = s.includes("::") ? s.split("::") as [string, string] : [s, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? h.length !== 8 : missing < 1) return undefined;
  const groups = [...h, ...Array<string>(tail === undefined ? 0 : missing).fill("0"), ...t];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    v = (v << 16n) | BigInt(`0x${g}`);
  }
  return v;
}

export function formatAddress(family: 4 | 6, v: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");
  return Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(":");
}

export function parseCidr(text: string): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const bad = () => new MalformedInputError(`"${text}" is not a CIDR block (a.b.c.d/n or IPv6/n)`);
  if (!m) throw bad();
  const v4 = parseV4(m[1]!);
  const family: 4 | 6 = v4 !== undefined ? 4 : 6;
  const addr = v4 ?? parseV6(m[1]!);
  const bits = family === 4 ? 32 : 128;
  const prefix = Number(m[2]);
  if (addr === undefined || prefix > bits) throw bad();
  const host = (1n << BigInt(bits - prefix)) - 1n;
  const first = addr & ~host & ((1n << BigInt(bits)) - 1n);
  return { family, first, last: first | host, prefix, text: `${formatAddress(family, first)}/${prefix}` };
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}
