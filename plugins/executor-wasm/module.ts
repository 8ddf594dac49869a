/**
 * Caps a WebAssembly module's memories and tables before it is compiled.
 *
 * The module's own memory is what an untrusted task grows. Rewriting its
 * declared maximum to the task's cap makes `memory.grow` past the cap fail
 * inside the module (it returns -1, as the spec allows), precisely and on
 * every architecture, without relying on the OS. Only the memory and table
 * sections are re-encoded; every other byte is copied, so no index shifts.
 *
 * Pure: bytes in, bytes or a typed refusal out.
 */
export const WASM_PAGE_BYTES = 65_536;

export type CapResult =
  | { ok: true; module: Uint8Array; memoryPagesMax: number }
  | { ok: false; reason: "invalid-module" | "memory"; detail: string };

interface Limits {
  shared: boolean;
  min: number;
  max: number | undefined;
}

class Malformed extends Error {}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly end = bytes.byteLength) {}
  byte(): number {
    if (this.pos >= this.end) throw new Malformed("unexpected end of module");
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffff_ffff) throw new Malformed("LEB128 u32 out of range");
        return result;
      }
    }
    throw new Malformed("LEB128 u32 too long");
  }
  limits(): Limits {
    const flags = this.byte();
    if (flags > 0x03) throw new Malformed(`unsupported limits flags 0x${flags.toString(16)} (memory64 and custom page sizes are not supported)`);
    const min = this.u32();
    const max = flags & 0x01 ? this.u32() : undefined;
    return { shared: (flags & 0x02) !== 0, min, max };
  }
}

function u32Leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function encodeLimits(l: Limits, max: number): number[] {
  return [(l.shared ? 0x02 : 0) | 0x01, ...u32Leb(l.min), ...u32Leb(max)];
}

const SECTION_TABLE = 4;
const SECTION_MEMORY = 5;

/**
 * Returns the module with every defined memory's maximum set to at most
 * `memoryBytes` (rounded down to pages) and every table's maximum to at most
 * `tableElementsMax`. A memory whose *initial* size is already over the cap is
 * refused with reason "memory"; malformed structure with "invalid-module"
 * (full validation is left to `WebAssembly.compile`).
 */
export function capModule(bytes: Uint8Array, memoryBytes: number, tableElementsMax: number): CapResult {
  const pagesMax = Math.floor(memoryBytes / WASM_PAGE_BYTES);
  try {
    const r = new Reader(bytes);
    const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    for (const h of header) if (r.byte() !== h) throw new Malformed("not a WebAssembly 1.0 module (bad magic or version)");
    const chunks: Uint8Array[] = [];
    let copyFrom = 0;
    while (r.pos < bytes.byteLength) {
      const sectionStart = r.pos;
      const id = r.byte();
      const size = r.u32();
      const bodyStart = r.pos;
      if (bodyStart + size > bytes.byteLength) throw new Malformed(`section ${id} runs past the end of the module`);
      r.pos = bodyStart + size;
      if (id !== SECTION_MEMORY && id !== SECTION_TABLE) continue;
      const body = new Reader(bytes, bodyStart + size);
      body.pos = bodyStart;
      const count = body.u32();
      const entries: number[] = [...u32Leb(count)];
      for (let i = 0; i < count; i++) {
        if (id === SECTION_TABLE) {
          const refType = body.byte();
          if (refType !== 0x70 && refType !== 0x6f) throw new Malformed(`unsupported table encoding 0x${refType.toString(16)}`);
          const l = body.limits();
          if (l.min > tableElementsMax) return { ok: false, reason: "memory", detail: `table of ${l.min} elements exceeds ${tableElementsMax}` };
          entries.push(refType, ...encodeLimits(l, Math.min(l.max ?? tableElementsMax, tableElementsMax)));
        } else {
          const l = body.limits();
          if (l.min > pagesMax) {
            return { ok: false, reason: "memory", detail: `initial memory ${l.min * WASM_PAGE_BYTES} bytes exceeds the limit of ${memoryBytes} bytes` };
          }
          entries.push(...encodeLimits(l, Math.min(l.max ?? pagesMax, pagesMax)));
        }
      }
      if (body.pos !== bodyStart + size) throw new Malformed(`section ${id} has trailing bytes`);
      chunks.push(bytes.subarray(copyFrom, sectionStart));
      chunks.push(Uint8Array.from([id, ...u32Leb(entries.length), ...entries]));
      copyFrom = bodyStart + size;
    }
    chunks.push(bytes.subarray(copyFrom));
    return { ok: true, module: concat(chunks), memoryPagesMax: pagesMax };
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, reason: "invalid-module", detail: err.message };
    throw err;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
