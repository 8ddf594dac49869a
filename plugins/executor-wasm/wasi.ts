/**
 * Runs one WASI preview1 command module against its input, in this process.
 *
 * The WASI surface is written here rather than taken from `node:wasi`: it
 * gives the module nothing of the host by construction. stdin is the task
 * input, stdout is captured (bounded), stderr is kept (bounded) for the
 * failure detail, args and environment are empty, there are no preopened
 * directories (so no filesystem), `proc_exit` unwinds instead of ending the
 * process. Clocks and randomness are provided; every other preview1 call
 * returns ENOSYS. Imports from any other module fail to link.
 *
 * Synchronous and unguarded against infinite loops: call it only inside a
 * runner child that the parent can SIGKILL (see child.ts).
 */
import { stderrBytesMax, tableElementsMax } from "./constants.ts";
import { capModule, WASM_PAGE_BYTES } from "./module.ts";

const WASI = "wasi_snapshot_preview1";
const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
const ERRNO_INVAL = 28;
const ERRNO_NOSYS = 52;
const ERRNO_SPIPE = 70;
const FILETYPE_CHARACTER_DEVICE = 2;
const RANDOM_CHUNK_BYTES = 65_536;

export type RunOutcome =
  | { ok: true; output: Uint8Array }
  | { ok: false; reason: "memory" | "crash" | "invalid-module" | "output-too-large"; detail: string };

export interface RunLimits {
  memoryBytes: number;
  outputBytes: number;
}

class ProcExit {
  constructor(readonly code: number) {}
}
class OutputOverflow {}

/** Compile (after capping memory), link against the WASI shim, run `_start`. */
export function runWasi(moduleBytes: Uint8Array, input: Uint8Array, limits: RunLimits): RunOutcome {
  const capped = capModule(moduleBytes, limits.memoryBytes, tableElementsMax);
  if (!capped.ok) return capped;
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(capped.module);
  } catch (err) {
    return { ok: false, reason: "invalid-module", detail: `compile: ${(err as Error).message}` };
  }
  const exportsMeta = WebAssembly.Module.exports(module);
  if (!exportsMeta.some((e) => e.name === "_start" && e.kind === "function")) {
    return { ok: false, reason: "invalid-module", detail: "module does not export a _start function (WASI command)" };
  }
  const imports = WebAssembly.Module.imports(module);
  const foreign = imports.find((i) => i.module !== WASI || i.kind !== "function");
  if (foreign) return { ok: false, reason: "invalid-module", detail: `unsupported import ${foreign.module}.${foreign.name} (${foreign.kind})` };
  if (imports.length > 0 && !exportsMeta.some((e) => e.name === "memory" && e.kind === "memory")) {
    return { ok: false, reason: "invalid-module", detail: "a WASI module must export its memory as 'memory'" };
  }

  const shim = new WasiShim(input, limits.outputBytes);
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(module, { [WASI]: shim.imports(imports.map((i) => i.name)) });
  } catch (err) {
    return { ok: false, reason: "invalid-module", detail: `instantiate: ${(err as Error).message}` };
  }
  const memory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : undefined;
  shim.memory = memory;
  // memory.grow past the cap returns -1 inside the module, which we cannot observe; what we can see is
  // how much it holds. Linear growers fail near the cap, doubling growers above half of it.
  const nearCap = () => memory !== undefined && memory.buffer.byteLength * 2 > capped.memoryPagesMax * WASM_PAGE_BYTES;
  try {
    (instance.exports._start as () => void)();
  } catch (err) {
    if (err instanceof ProcExit && err.code === 0) return { ok: true, output: shim.output() };
    if (err instanceof OutputOverflow) {
      return { ok: false, reason: "output-too-large", detail: `output exceeds ${limits.outputBytes} bytes` };
    }
    const what = err instanceof ProcExit ? `exit code ${err.code}` : `${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message ?? String(err)}`;
    const detail = `${what}${shim.stderrText()}`;
    if (nearCap()) return { ok: false, reason: "memory", detail: `memory limit of ${limits.memoryBytes} bytes reached (${detail})` };
    return { ok: false, reason: "crash", detail };
  }
  return { ok: true, output: shim.output() };
}

class WasiShim {
  memory: WebAssembly.Memory | undefined;
  readonly #input: Uint8Array;
  #inputPos = 0;
  readonly #outputBytesMax: number;
  readonly #out: Uint8Array[] = [];
  #outBytes = 0;
  readonly #err: Uint8Array[] = [];
  #errBytes = 0;

  constructor(input: Uint8Array, outputBytesMax: number) {
    this.#input = input;
    this.#outputBytesMax = outputBytesMax;
  }

  output(): Uint8Array {
    const out = new Uint8Array(this.#outBytes);
    let off = 0;
    for (const c of this.#out) {
      out.set(c, off);
      off += c.byteLength;
    }
    return out;
  }

  stderrText(): string {
    if (this.#errBytes === 0) return "";
    const text = new TextDecoder().decode(Buffer.concat(this.#err)).replace(/\s+/g, " ").trim();
    return text ? `; stderr: ${text}` : "";
  }

  #view(): DataView {
    if (!this.memory) throw new Error("WASI call before memory is available");
    return new DataView(this.memory.buffer);
  }

  #bytes(ptr: number, len: number): Uint8Array {
    return new Uint8Array(this.memory!.buffer, ptr, len);
  }

  /** Import object for the preview1 functions the module names; unknown ones get ENOSYS. */
  imports(names: string[]): Record<string, (...args: never[]) => number> {
    const impl: Record<string, (...args: any[]) => number> = {
      args_sizes_get: (argc: number, bufSize: number) => this.#zeroPair(argc, bufSize),
      args_get: () => ERRNO_SUCCESS,
      environ_sizes_get: (count: number, bufSize: number) => this.#zeroPair(count, bufSize),
      environ_get: () => ERRNO_SUCCESS,
      clock_res_get: (_id: number, out: number) => {
        this.#view().setBigUint64(out, 1_000n, true);
        return ERRNO_SUCCESS;
      },
      clock_time_get: (id: number, _precision: bigint, out: number) => {
        const ns = id === 0 ? BigInt(Date.now()) * 1_000_000n : process.hrtime.bigint();
        this.#view().setBigUint64(out, ns, true);
        return ERRNO_SUCCESS;
      },
      random_get: (ptr: number, len: number) => {
        for (let off = 0; off < len; off += RANDOM_CHUNK_BYTES) crypto.getRandomValues(this.#bytes(ptr + off, Math.min(RANDOM_CHUNK_BYTES, len - off)));
        return ERRNO_SUCCESS;
      },
      fd_write: (fd: number, iovs: number, iovsLen: number, nwritten: number) => this.#write(fd, iovs, iovsLen, nwritten),
      fd_read: (fd: number, iovs: number, iovsLen: number, nread: number) => this.#read(fd, iovs, iovsLen, nread),
      fd_close: (fd: number) => (fd <= 2 ? ERRNO_SUCCESS : ERRNO_BADF),
      fd_fdstat_get: (fd: number, out: number) => {
        if (fd > 2) return ERRNO_BADF;
        const v = this.#view();
        v.setUint8(out, FILETYPE_CHARACTER_DEVICE);
        v.setUint16(out + 2, 0, true);
        v.setBigUint64(out + 8, 0xffff_ffffn, true);
        v.setBigUint64(out + 16, 0n, true);
        return ERRNO_SUCCESS;
      },
      fd_seek: (fd: number) => (fd <= 2 ? ERRNO_SPIPE : ERRNO_BADF),
      fd_prestat_get: () => ERRNO_BADF,
      fd_prestat_dir_name: () => ERRNO_BADF,
      proc_exit: (code: number) => {
        throw new ProcExit(code);
      },
      sched_yield: () => ERRNO_SUCCESS,
    };
    const out: Record<string, (...args: never[]) => number> = {};
    for (const name of names) out[name] = impl[name] ?? (() => ERRNO_NOSYS);
    return out;
  }

  #zeroPair(a: number, b: number): number {
    const v = this.#view();
    v.setUint32(a, 0, true);
    v.setUint32(b, 0, true);
    return ERRNO_SUCCESS;
  }

  #write(fd: number, iovs: number, iovsLen: number, nwritten: number): number {
    if (fd !== 1 && fd !== 2) return ERRNO_BADF;
    const v = this.#view();
    let total = 0;
    for (let i = 0; i < iovsLen; i++) {
      const ptr = v.getUint32(iovs + i * 8, true);
      const len = v.getUint32(iovs + i * 8 + 4, true);
      if (ptr + len > v.byteLength) return ERRNO_INVAL;
      if (fd === 1) {
        if (this.#outBytes + len > this.#outputBytesMax) throw new OutputOverflow();
        this.#out.push(this.#bytes(ptr, len).slice());
        this.#outBytes += len;
      } else if (this.#errBytes < stderrBytesMax) {
        const keep = Math.min(len, stderrBytesMax - this.#errBytes);
        this.#err.push(this.#bytes(ptr, keep).slice());
        this.#errBytes += keep;
      }
      total += len;
    }
    v.setUint32(nwritten, total, true);
    return ERRNO_SUCCESS;
  }

  #read(fd: number, iovs: number, iovsLen: number, nread: number): number {
    if (fd !== 0) return ERRNO_BADF;
    const v = this.#view();
    let total = 0;
    for (let i = 0; i < iovsLen && this.#inputPos < this.#input.byteLength; i++) {
      const ptr = v.getUint32(iovs + i * 8, true);
      const len = v.getUint32(iovs + i * 8 + 4, true);
      if (ptr + len > v.byteLength) return ERRNO_INVAL;
      const n = Math.min(len, this.#input.byteLength - this.#inputPos);
      this.#bytes(ptr, n).set(this.#input.subarray(this.#inputPos, this.#inputPos + n));
      this.#inputPos += n;
      total += n;
    }
    v.setUint32(nread, total, true);
    return ERRNO_SUCCESS;
  }
}
