/**
 * A small, strict CBOR (RFC 8949) decoder for attestation documents: definite and indefinite
 * lengths, bounded depth and item count, byte strings returned as views of the input (so signed
 * payloads are used exactly as received). Maps decode to `Map`, tags to `CborTag`.
 */
import { malformed } from "../bytes.ts";

export const cborDepthMax = 16;
export const cborItemsMax = 100_000;

export class CborTag {
  constructor(readonly tag: number, readonly value: CborValue) {}
}
export type CborValue =
  | number | bigint | string | boolean | null | undefined | Uint8Array | CborValue[] | Map<CborValue, CborValue> | CborTag;

export function decodeCbor(buf: Uint8Array, what = "CBOR"): CborValue {
  const d = new Decoder(buf, what);
  const v = d.value(0);
  if (d.pos !== buf.length) malformed(`${what}: ${buf.length - d.pos} trailing bytes`);
  return v;
}

const BREAK = Symbol("break");

class Decoder {
  pos = 0;
  items = 0;
  constructor(readonly buf: Uint8Array, readonly what: string) {}

  private byte(): number {
    if (this.pos >= this.buf.length) malformed(`${this.what}: truncated`);
    return this.buf[this.pos++]!;
  }

  private arg(info: number): number | bigint {
    if (info < 24) return info;
    let n = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (n === 0) malformed(`${this.what}: reserved additional info ${info}`);
    let v = 0n;
    while (n-- > 0) v = (v << 8n) | BigInt(this.byte());
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private len(info: number): number {
    const n = this.arg(info);
    if (typeof n !== "number" || n > this.buf.length - this.pos) malformed(`${this.what}: length ${n} exceeds input`);
    return n;
  }

  private chunks(major: number, depth: number): Uint8Array {
    const parts: Uint8Array[] = [];
    for (;;) {
      const v = this.item(depth + 1, true);
      if (v === BREAK) break;
      if (major === 2 ? !(v instanceof Uint8Array) : typeof v !== "string") malformed(`${this.what}: bad indefinite string chunk`);
      parts.push(typeof v === "string" ? new TextEncoder().encode(v) : (v as Uint8Array));
    }
    return Buffer.concat(parts);
  }

  item(depth: number, allowBreak = false): CborValue | typeof BREAK {
    if (depth > cborDepthMax) malformed(`${this.what}: nesting too deep`);
    if (++this.items > cborItemsMax) malformed(`${this.what}: too many items`);
    const ib = this.byte();
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (info === 31) {
      switch (major) {
        case 2: return new Uint8Array(this.chunks(2, depth));
        case 3: return new TextDecoder("utf-8", { fatal: true }).decode(this.chunks(3, depth));
        case 4: {
          const out: CborValue[] = [];
          for (;;) {
            const v = this.item(depth + 1, true);
            if (v === BREAK) return out;
            out.push(v);
          }
        }
        case 5: {
          const m = new Map<CborValue, CborValue>();
          for (;;) {
            const k = this.item(depth + 1, true);
            if (k === BREAK) return m;
            m.set(k, this.value(depth + 1));
          }
        }
        case 7:
          if (!allowBreak) malformed(`${this.what}: unexpected break`);
          return BREAK;
        default: malformed(`${this.what}: indefinite length on major type ${major}`);
      }
    }
    switch (major) {
      case 0: return this.arg(info);
      case 1: {
        const n = this.arg(info);
        return typeof n === "number" ? -1 - n : -1n - n;
      }
      case 2: {
        const n = this.len(info);
        const b = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        return b;
      }
      case 3: {
        const n = this.len(info);
        const b = this.buf.subarray(this.pos, this.pos + n);
        this.pos += n;
        try {
          return new TextDecoder("utf-8", { fatal: true }).decode(b);
        } catch {
          return malformed(`${this.what}: invalid UTF-8 text`);
        }
      }
      case 4: {
        const n = this.len(info);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1));
        return out;
      }
      case 5: {
        const n = this.len(info);
        const m = new Map<CborValue, CborValue>();
        for (let i = 0; i < n; i++) {
          const k = this.value(depth + 1);
          m.set(k, this.value(depth + 1));
        }
        return m;
      }
      case 6: {
        const t = this.arg(info);
        return new CborTag(typeof t === "number" ? t : -1, this.value(depth + 1));
      }
      default: {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 24) return malformed(`${this.what}: simple value ${this.byte()} unsupported`);
        if (info === 25) {
          const b = [this.byte(), this.byte()];
          return new DataView(new Uint8Array(b).buffer).getFloat16?.(0) ?? NaN;
        }
        if (info === 26) {
          const b = new Uint8Array([this.byte(), this.byte(), this.byte(), this.byte()]);
          return new DataView(b.buffer).getFloat32(0);
        }
        if (info === 27) {
          const b = new Uint8Array(8);
          for (let i = 0; i < 8; i++) b[i] = this.byte();
          return new DataView(b.buffer).getFloat64(0);
        }
        return malformed(`${this.what}: unsupported simple value ${info}`);
      }
    }
  }

  value(depth: number): CborValue {
    return this.item(depth) as CborValue;
  }
}

/** Minimal encoder for the structures we must re-encode (COSE Sig_structure). */
export function encodeHead(major: number, n: number): Uint8Array {
  if (n < 24) return new Uint8Array([(major << 5) | n]);
  if (n < 0x100) return new Uint8Array([(major << 5) | 24, n]);
  if (n < 0x10000) return new Uint8Array([(major << 5) | 25, n >> 8, n & 0xff]);
  return new Uint8Array([(major << 5) | 26, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

export function encodeBytes(b: Uint8Array): Uint8Array {
  return Buffer.concat([encodeHead(2, b.length), b]);
}

export function encodeText(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  return Buffer.concat([encodeHead(3, b.length), b]);
}
