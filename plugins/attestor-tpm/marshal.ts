/**
 * Big-endian TPM 2.0 marshalling. The writer grows up to a hard byte limit; the reader never reads
 * past its end and turns every underrun into a TpmError("malformed-response") instead of a crash.
 */
import { TpmError } from "./errors.ts";

export class TpmWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(private readonly bytesMax: number, initialBytes = 256) {
    this.buf = new Uint8Array(Math.min(initialBytes, bytesMax));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.bytesMax) {
      throw new TpmError("too-large", `command exceeds ${this.bytesMax} bytes`);
    }
    if (at + n > this.buf.length) {
      const next = new Uint8Array(Math.min(this.bytesMax, Math.max(this.buf.length * 2, at + n)));
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.len += n;
    return at;
  }

  u8(v: number): this {
    const at = this.reserve(1); // reserve first: it may replace buf/view
    this.view.setUint8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, v);
    return this;
  }
  u32(v: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, v >>> 0);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
    return this;
  }
  /** A TPM2B: UINT16 size, then the bytes. */
  tpm2b(b: Uint8Array = new Uint8Array(0)): this {
    if (b.length > 0xffff) throw new TpmError("too-large", `TPM2B of ${b.length} bytes`);
    return this.u16(b.length).bytes(b);
  }
  /** Overwrite a UINT32 already written (command size, authorization size). */
  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0);
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class TpmReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array, private readonly what = "response") {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }
  get offset(): number {
    return this.pos;
  }

  private take(n: number): number {
    if (n > this.remaining) {
      throw new TpmError(
        "malformed-response",
        `${this.what} truncated: need ${n} bytes at offset ${this.pos}, have ${this.remaining}`,
      );
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.view.getUint8(this.take(1));
  }
  u16(): number {
    return this.view.getUint16(this.take(2));
  }
  u32(): number {
    return this.view.getUint32(this.take(4));
  }
  u64(): bigint {
    return this.view.getBigUint64(this.take(8));
  }
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.slice(at, at + n);
  }
  tpm2b(): Uint8Array {
    return this.bytes(this.u16());
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** A sub-reader over the next n bytes (e.g. the parameter area, or a TPM2B to parse inside). */
  sub(n: number, what = this.what): TpmReader {
    return new TpmReader(this.bytes(n), what);
  }
  /** Fail if anything is left over: trailing bytes mean we and the TPM disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) {
      throw new TpmError("malformed-response", `${this.what}: ${this.remaining} unexpected trailing bytes`);
    }
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

export function fromHex(s: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new TypeError(`not a hex string: ${s.slice(0, 16)}`);
  return new Uint8Array(Buffer.from(s, "hex"));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
