/**
 * A tiny WebAssembly binary builder for tests and benchmarks, so CI needs no
 * wat2wasm. Just enough of the format for WASI command fixtures: one type per
 * function, function imports, one memory, exports, code and active data.
 */
export const I32 = 0x7f;
export const I64 = 0x7e;

export const op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  call: 0x10,
  drop: 0x1a,
  localGet: 0x20,
  i32Load: [0x28, 0x02, 0x00],
  i32Store: [0x36, 0x02, 0x00],
  memoryGrow: [0x40, 0x00],
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32Add: 0x6a,
  void: 0x40,
} as const;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** `i32.const n` */
export const i32 = (n: number): number[] => [op.i32Const, ...sleb(n)];

const str = (s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

export interface ImportDef {
  module: string;
  name: string;
  params: number[];
  results: number[];
}
export interface FuncDef {
  params?: number[];
  results?: number[];
  locals?: number[];
  body: number[];
  export?: string;
}
export interface ModuleDef {
  imports?: ImportDef[];
  /** Pages; `export` defaults to "memory". */
  memory?: { min: number; max?: number; export?: string | false };
  funcs: FuncDef[];
  data?: { offset: number; bytes: Uint8Array | string }[];
}

export function buildModule(def: ModuleDef): Uint8Array {
  const imports = def.imports ?? [];
  const sigs = [...imports, ...def.funcs].map((f) => [0x60, ...vec((f.params ?? []).map((t) => [t])), ...vec((f.results ?? []).map((t) => [t]))]);
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  bytes.push(...section(1, vec(sigs)));
  if (imports.length) bytes.push(...section(2, vec(imports.map((im, i) => [...str(im.module), ...str(im.name), 0x00, ...uleb(i)]))));
  bytes.push(...section(3, vec(def.funcs.map((_, i) => uleb(imports.length + i)))));
  if (def.memory) {
    const m = def.memory;
    bytes.push(...section(5, vec([m.max === undefined ? [0x00, ...uleb(m.min)] : [0x01, ...uleb(m.min), ...uleb(m.max)]])));
  }
  const exps: number[][] = def.funcs.flatMap((f, i) => (f.export ? [[...str(f.export), 0x00, ...uleb(imports.length + i)]] : []));
  if (def.memory && def.memory.export !== false) exps.push([...str(def.memory.export ?? "memory"), 0x02, 0x00]);
  bytes.push(...section(7, vec(exps)));
  const bodies = def.funcs.map((f) => {
    const locals = (f.locals ?? []).map((t) => [0x01, t]);
    const body = [...vec(locals), ...f.body, op.end];
    return [...uleb(body.length), ...body];
  });
  bytes.push(...section(10, vec(bodies)));
  if (def.data?.length) {
    bytes.push(...section(11, vec(def.data.map((d) => {
      const b = typeof d.bytes === "string" ? new TextEncoder().encode(d.bytes) : d.bytes;
      return [0x00, ...i32(d.offset), op.end, ...uleb(b.length), ...b];
    }))));
  }
  return Uint8Array.from(bytes);
}

const wasiImport = (name: string, params: number[], results: number[] = [I32]): ImportDef => ({ module: "wasi_snapshot_preview1", name, params, results });
const FD_READ = 0;
const FD_WRITE = 1;
const PROC_EXIT = 2;
const WASI_IMPORTS = [
  wasiImport("fd_read", [I32, I32, I32, I32]),
  wasiImport("fd_write", [I32, I32, I32, I32]),
  wasiImport("proc_exit", [I32], []),
];

function command(body: number[], extra: Partial<ModuleDef> = {}): Uint8Array {
  return buildModule({ imports: WASI_IMPORTS, memory: { min: 1 }, funcs: [{ body, export: "_start" }], ...extra });
}

/** iov at address 0 = {ptr, len} */
const setIov = (ptr: number, len: number[]): number[] => [...i32(0), ...i32(ptr), ...op.i32Store, ...i32(4), ...len, ...op.i32Store];
/** fd_write(fd, iovs=0, 1, nwritten=16) */
const write = (fd: number): number[] => [...i32(fd), ...i32(0), ...i32(1), ...i32(16), op.call, FD_WRITE, op.drop];

/** Fixture modules. Each is a WASI command (exports `_start` and `memory`). */
export const fixtures = {
  /** Copies stdin to stdout. */
  echo: () =>
    command([
      op.block, op.void, op.loop, op.void,
      ...setIov(1024, i32(4096)),
      ...i32(0), ...i32(0), ...i32(1), ...i32(16), op.call, FD_READ, op.drop,
      ...i32(16), ...op.i32Load, op.i32Eqz, op.brIf, 1,
      ...setIov(1024, [...i32(16), ...op.i32Load]),
      ...write(1),
      op.br, 0,
      op.end, op.end,
    ]),
  /** Writes "hello" to stdout. */
  hello: () => command([...setIov(1024, i32(5)), ...write(1)], { data: [{ offset: 1024, bytes: "hello" }] }),
  /** `loop br 0`: spins forever in pure WASM. */
  spin: () => command([op.loop, op.void, op.br, 0, op.end]),
  /** Grows memory 1 MiB at a time until growth fails, then traps (like an allocator's abort). */
  grow: () => command([op.loop, op.void, ...i32(16), ...op.memoryGrow, ...i32(-1), op.i32Eq, op.if, op.void, op.unreachable, op.end, op.br, 0, op.end]),
  /** Writes 1 KiB to stdout forever. */
  flood: () => command([...setIov(1024, i32(1024)), op.loop, op.void, ...write(1), op.br, 0, op.end]),
  /** Traps immediately. */
  trap: () => command([op.unreachable]),
  /** Writes "oops" to stderr and exits with `code`. */
  exit: (code: number) =>
    command([...setIov(1024, i32(4)), ...write(2), ...i32(code), op.call, PROC_EXIT], { data: [{ offset: 1024, bytes: "oops" }] }),
  /** Declares `pages` of initial memory. */
  bigMemory: (pages: number) => command([], { memory: { min: pages } }),
  /** Recurses without end (stack overflow). */
  recurse: () => buildModule({ funcs: [{ body: [op.call, 0], export: "_start" }] }),
  /** Valid module without `_start`. */
  noStart: () => buildModule({ funcs: [{ body: [], export: "main" }] }),
  /** Imports something that is not WASI. */
  foreignImport: () =>
    buildModule({ imports: [{ module: "env", name: "open", params: [], results: [] }], memory: { min: 1 }, funcs: [{ body: [], export: "_start" }] }),
  /** No module at all. */
  garbage: () => new TextEncoder().encode("this is not wasm"),
};
