/** Bounds-checked byte helpers shared by the parsers. Every read past the end is malformed input. */
import { MalformedInputError } from "../plugins/sdk/errors.ts";

export function malformed(what: string): never {
  throw new MalformedInputError(what);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function fromHex(s: string): Uint8Array {
  const t = s.trim();
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) malformed("invalid hex string");
  return new Uint8Array(Buffer.from(t, "hex"));
}

export function fromBase64(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(t)) malformed("invalid base64 string");
  return new Uint8Array(Buffer.from(t, t.includes("-") || t.includes("_") ? "base64url" : "base64"));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function isAllZero(a: Uint8Array): boolean {
  for (const x of a) if (x !== 0) return false;
  return true;
}

/** Sequential reader over a byte array; every overrun throws MalformedInputError naming `what`. */
export class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly what: string) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  bytes(n: number, field: string): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || this.pos + n > this.buf.length) {
      malformed(`${this.what}: truncated at ${field} (need ${n} bytes at offset ${this.pos}, have ${this.remaining})`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(field: string): number {
    return this.bytes(1, field)[0]!;
  }
  u16(field: string): number {
    const b = this.bytes(2, field);
    return (b[0]! << 8) | b[1]!;
  }
  u32(field: string): number {
    const b = this.bytes(4, field);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  }
  u64(field: string): bigint {
    const hi = BigInt(this.u32(field));
    return (hi << 32n) | BigInt(this.u32(field));
  }
  u16le(field: string): number {
    const b = this.bytes(2, field);
    return b[0]! | (b[1]! << 8);
  }
  u32le(field: string): number {
    const b = this.bytes(4, field);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  u64le(field: string): bigint {
    const lo = BigInt(this.u32le(field));
    return (BigInt(this.u32le(field)) << 32n) | lo;
  }
  /** A TPM2B: u16 big-endian size then that many bytes. */
  tpm2b(field: string, max = 0xffff): Uint8Array {
    const n = this.u16(`${field}.size`);
    if (n > max) malformed(`${this.what}: ${field} size ${n} exceeds ${max}`);
    return this.bytes(n, field);
  }
  end(): void {
    if (this.pos !== this.buf.length) malformed(`${this.what}: ${this.remaining} trailing bytes`);
  }
}
