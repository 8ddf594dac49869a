/**
 * WebAssembly task modules for the task e2e tests and benches, built with the
 * executor-wasm test builder (no wat2wasm needed).
 */
import { buildModule, fixtures, I32, i32, op, type ImportDef } from "../../plugins/executor-wasm/testing/wasm-builder.ts";

const wasi = (name: string, params: number[], results: number[] = [I32]): ImportDef => ({ module: "wasi_snapshot_preview1", name, params, results });
const IMPORTS = [wasi("fd_read", [I32, I32, I32, I32]), wasi("fd_write", [I32, I32, I32, I32]), wasi("proc_exit", [I32], [])];
const FD_READ = 0;
const FD_WRITE = 1;
const localSet = 0x21;
const localTee = 0x22;
const i32LtU = 0x49;

const setIov = (ptr: number, len: number[]): number[] => [...i32(0), ...i32(ptr), ...op.i32Store, ...i32(4), ...len, ...op.i32Store];
const echoBody = [
  op.block, op.void, op.loop, op.void,
  ...setIov(1024, i32(4096)),
  ...i32(0), ...i32(0), ...i32(1), ...i32(16), op.call, FD_READ, op.drop,
  ...i32(16), ...op.i32Load, op.i32Eqz, op.brIf, 1,
  ...setIov(1024, [...i32(16), ...op.i32Load]),
  ...i32(1), ...i32(0), ...i32(1), ...i32(16), op.call, FD_WRITE, op.drop,
  op.br, 0,
  op.end, op.end,
];

/** stdin -> stdout. */
export const echoModule = (): Uint8Array => fixtures.echo();

/** Spins `rounds` x 10^9 iterations (a CPU delay: ~0.4 s per round on a 2024 x64 core), then echoes stdin. */
export function slowEchoModule(rounds: number): Uint8Array {
  const spin = [
    op.loop, op.void,
    ...i32(0), localSet, 0,
    op.loop, op.void,
    op.localGet, 0, ...i32(1), op.i32Add, localTee, 0, ...i32(1_000_000_000), i32LtU, op.brIf, 0,
    op.end,
    op.localGet, 1, ...i32(1), op.i32Add, localTee, 1, ...i32(rounds), i32LtU, op.brIf, 0,
    op.end,
  ];
  return buildModule({ imports: IMPORTS, memory: { min: 1 }, funcs: [{ locals: [I32, I32], body: [...spin, ...echoBody], export: "_start" }] });
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
