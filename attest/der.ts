/**
 * Minimal DER/BER reader: enough for certificates, CRLs, CMS SignedData (which AWS emits in BER with
 * indefinite lengths) and ECDSA signatures. Every element knows its exact encoded bytes, so signed
 * regions (tbsCertificate, signed attributes) are hashed exactly as received.
 */
import { malformed } from "./bytes.ts";

export const derDepthMax = 32;
export const derChildrenMax = 10_000;

export type Tlv = {
  /** First identifier octet (class | constructed | low tag number). */
  tag: number;
  /** Tag number (high-tag-number form decoded). */
  num: number;
  cls: number;
  constructed: boolean;
  /** The whole encoded element. */
  raw: Uint8Array;
  /** The contents octets (without end-of-contents for indefinite lengths). */
  body: Uint8Array;
  indefinite: boolean;
};

export function readTlv(buf: Uint8Array, pos = 0, depth = 0): Tlv {
  if (depth > derDepthMax) malformed("ASN.1: nesting too deep");
  const start = pos;
  const at = (i: number): number => {
    if (i >= buf.length) malformed("ASN.1: truncated element");
    return buf[i]!;
  };
  const tag = at(pos++);
  let num = tag & 0x1f;
  if (num === 0x1f) {
    num = 0;
    for (let i = 0; ; i++) {
      if (i > 3) malformed("ASN.1: tag number too large");
      const b = at(pos++);
      num = (num << 7) | (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  const constructed = (tag & 0x20) !== 0;
  const l0 = at(pos++);
  if (l0 === 0x80) {
    if (!constructed) malformed("ASN.1: indefinite length on primitive element");
    const bodyStart = pos;
    for (let n = 0; ; n++) {
      if (n > derChildrenMax) malformed("ASN.1: too many elements");
      if (at(pos) === 0 && at(pos + 1) === 0) break;
      pos += readTlv(buf, pos, depth + 1).raw.length;
    }
    return {
      tag, num, cls: tag >> 6, constructed, indefinite: true,
      body: buf.subarray(bodyStart, pos), raw: buf.subarray(start, pos + 2),
    };
  }
  let len = l0;
  if (l0 & 0x80) {
    const n = l0 & 0x7f;
    if (n > 4) malformed("ASN.1: length too large");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + at(pos++);
  }
  if (pos + len > buf.length) malformed("ASN.1: element extends past end of input");
  return {
    tag, num, cls: tag >> 6, constructed, indefinite: false,
    body: buf.subarray(pos, pos + len), raw: buf.subarray(start, pos + len),
  };
}

/** Parses exactly one element covering the whole input. */
export function parseDer(buf: Uint8Array, what: string): Tlv {
  const t = readTlv(buf, 0);
  if (t.raw.length !== buf.length) malformed(`${what}: trailing bytes after ASN.1 element`);
  return t;
}

export function children(t: Tlv, depth = 1): Tlv[] {
  if (!t.constructed) malformed("ASN.1: expected a constructed element");
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < t.body.length) {
    if (out.length >= derChildrenMax) malformed("ASN.1: too many elements");
    const c = readTlv(t.body, pos, depth);
    out.push(c);
    pos += c.raw.length;
  }
  return out;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t) malformed(`${what}: missing`);
  if (t.tag !== tag) malformed(`${what}: expected tag 0x${tag.toString(16)}, got 0x${t.tag.toString(16)}`);
  return t;
}

export function seq(t: Tlv | undefined, what: string): Tlv[] {
  return children(expectTag(t, 0x30, what));
}

export function oid(t: Tlv | undefined, what: string): string {
  const b = expectTag(t, 0x06, what).body;
  if (b.length === 0 || b.length > 64) malformed(`${what}: bad OID length`);
  const parts: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (v > 2 ** 48) malformed(`${what}: OID arc too large`);
    if ((b[i]! & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    } else if (i === b.length - 1) malformed(`${what}: truncated OID`);
  }
  return parts.join(".");
}

/** INTEGER contents as unsigned big-endian bytes (leading zero stripped). */
export function uint(t: Tlv | undefined, what: string): Uint8Array {
  const b = expectTag(t, 0x02, what).body;
  if (b.length === 0) malformed(`${what}: empty INTEGER`);
  return b[0] === 0 && b.length > 1 ? b.subarray(1) : b;
}

export function bigUint(t: Tlv | undefined, what: string): bigint {
  const b = uint(t, what);
  return b.length === 0 ? 0n : BigInt("0x" + Buffer.from(b).toString("hex"));
}

export function smallInt(t: Tlv | undefined, what: string): number {
  const b = expectTag(t, 0x02, what).body;
  if (b.length === 0 || b.length > 4) malformed(`${what}: INTEGER out of range`);
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return b[0]! & 0x80 ? v - 2 ** (8 * b.length) : v;
}

export function bitString(t: Tlv | undefined, what: string): Uint8Array {
  const b = expectTag(t, 0x03, what).body;
  if (b.length === 0) malformed(`${what}: empty BIT STRING`);
  return b.subarray(1);
}

/** OCTET STRING contents; BER constructed octet strings are concatenated. */
export function octets(t: Tlv | undefined, what: string, depth = 0): Uint8Array {
  if (!t) malformed(`${what}: missing`);
  if (t.tag === 0x04) return t.body;
  if (t.tag === 0x24 && depth < 4) {
    const parts = children(t).map((c) => octets(c, what, depth + 1));
    return Buffer.concat(parts);
  }
  return malformed(`${what}: expected OCTET STRING`);
}

export function time(t: Tlv | undefined, what: string): Date {
  if (!t || (t.tag !== 0x17 && t.tag !== 0x18)) malformed(`${what}: expected UTCTime or GeneralizedTime`);
  const s = Buffer.from(t.body).toString("latin1");
  const m = t.tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(s);
  if (!m) malformed(`${what}: bad time ${JSON.stringify(s)}`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  const d = new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
  if (Number.isNaN(d.getTime())) malformed(`${what}: bad time`);
  return d;
}

/** A context-specific tagged child [n], if present. */
export function ctx(list: Tlv[], n: number): Tlv | undefined {
  return list.find((c) => c.cls === 2 && c.num === n);
}

/** DER encoding helpers (used to re-encode SET OF signed attributes and raw EC signatures). */
export function encodeTlv(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}
