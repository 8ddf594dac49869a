/**
 * Linux configfs-tsm reports (Documentation/ABI/testing/configfs-tsm, Linux 6.7+): the one interface
 * through which a confidential guest asks its TSM for attestation evidence, whatever the vendor.
 * Shared by the sev-snp and dcap attestors on the agent side; plain file I/O, so Bun can drive it
 * (unlike /dev/sev-guest or /dev/tdx_guest ioctls).
 *
 *   mkdir  ROOT/report/NAME            a report object (private to this request)
 *   read   provider                    "sev_guest" (AMD SEV-SNP) | "tdx_guest" (Intel TDX)
 *   read   generation                  bumped by every write to the object
 *   write  inblob                      the 64-byte report_data (here: sha512(binding message))
 *   read   outblob                     the report (SNP: ATTESTATION_REPORT; TDX: the DCAP quote)
 *   read   auxblob                     SNP only, optional: the certificate table (VCEK/VLEK, ASK, ARK)
 *   read   generation                  before + 1 ⇔ no other writer interleaved: else retry
 *   rmdir  ROOT/report/NAME
 *
 * The root (default /sys/kernel/config/tsm) and the file operations are injectable: tests run the
 * same code against a directory with a fake that plays the kernel's part (testing/fake.ts).
 */
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AttestationError } from "../sdk/errors.ts";

export const tsmRootDefault = "/sys/kernel/config/tsm";
/** inblob size: the whole report_data field of SNP and TDX reports. */
export const tsmInblobBytes = 64;
/** A report read interleaved with another writer (generation moved) is retried at most this many times in all. */
export const tsmAttemptsMax = 3;
/** Largest outblob / auxblob accepted (a TDX quote with its PCK chain is ~5 KiB; an SNP cert table ~4–8 KiB). */
export const tsmBlobBytesMax = 32 * 1024;

export type TsmProvider = "sev_guest" | "tdx_guest";

/** The file operations used; node:fs by default. */
export interface TsmFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
}

export const nodeTsmFs: TsmFs = {
  mkdir: async (p) => void (await mkdir(p)),
  rmdir: (p) => rmdir(p),
  readFile: async (p) => new Uint8Array(await readFile(p)),
  writeFile: (p, d) => writeFile(p, d),
};

export interface TsmReportOptions {
  root?: string;
  fs?: TsmFs;
  /** Also read auxblob (SNP certificate table); absent or empty → undefined. */
  aux?: boolean;
  signal?: AbortSignal;
}

export interface TsmReport {
  provider: TsmProvider;
  outblob: Uint8Array;
  auxblob?: Uint8Array;
  generation: number;
}

let seq = 0;

/**
 * One report from the TSM for `inblob`. Throws AttestationError("tsm") when configfs-tsm is absent,
 * the provider is not `expect`, a blob is too large, or other writers keep interleaving.
 */
export async function tsmReport(inblob: Uint8Array, expect: TsmProvider, opts: TsmReportOptions = {}): Promise<TsmReport> {
  if (inblob.byteLength !== tsmInblobBytes) throw new RangeError(`inblob must be ${tsmInblobBytes} bytes, got ${inblob.byteLength}`);
  const fs = opts.fs ?? nodeTsmFs;
  const root = opts.root ?? tsmRootDefault;
  const dir = join(root, "report", `grey-${process.pid}-${++seq}-${Date.now().toString(36)}`);
  try {
    await fs.mkdir(dir);
  } catch (err) {
    throw new AttestationError("tsm", `cannot create a configfs-tsm report under ${root}/report (not a confidential guest, configfs not mounted, or Linux < 6.7): ${(err as Error).message}`, { cause: err });
  }
  try {
    const provider = text(await fs.readFile(join(dir, "provider")));
    if (provider !== expect) throw new AttestationError("tsm", `configfs-tsm provider is "${provider}", expected "${expect}"`);
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      // generation before our write and after our reads: exactly our one write ⇔ the report is for our inblob
      const before = generation(await fs.readFile(join(dir, "generation")));
      await fs.writeFile(join(dir, "inblob"), inblob);
      const outblob = bounded("outblob", await fs.readFile(join(dir, "outblob")));
      const auxblob = opts.aux ? await readAux(fs, dir) : undefined;
      const after = generation(await fs.readFile(join(dir, "generation")));
      if (after === before + 1) return { provider, outblob, ...(auxblob?.byteLength ? { auxblob } : {}), generation: after };
      if (attempt >= tsmAttemptsMax) throw new AttestationError("tsm", `another writer changed the report object ${attempt} times (generation ${before} → ${after})`);
    }
  } finally {
    await fs.rmdir(dir).catch(() => {});
  }
}

async function readAux(fs: TsmFs, dir: string): Promise<Uint8Array | undefined> {
  try {
    const aux = await fs.readFile(join(dir, "auxblob"));
    return aux.byteLength === 0 ? undefined : bounded("auxblob", aux); // empty: the host supplied no certificates
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined; // provider without auxblob
    throw err;
  }
}

function bounded(what: string, b: Uint8Array): Uint8Array {
  if (b.byteLength === 0) throw new AttestationError("tsm", `${what} is empty`);
  if (b.byteLength > tsmBlobBytesMax) throw new AttestationError("tsm", `${what} of ${b.byteLength} bytes exceeds ${tsmBlobBytesMax}`);
  return b;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8").trim();

function generation(b: Uint8Array): number {
  const n = Number(text(b));
  if (!Number.isSafeInteger(n) || n < 0) throw new AttestationError("tsm", `configfs-tsm generation "${text(b).slice(0, 32)}" is not a counter`);
  return n;
}

/**
 * SEV-SNP certificate table (GHCB spec 2.03 §4.1.8.1; the auxblob of sev_guest): entries
 * { GUID (16 bytes, RFC 4122 order), offset u32le, length u32le } ended by an all-zero entry,
 * offsets from the start of the table. Returns the certificates by kind.
 */
export const SNP_CERT_GUIDS = {
  vcek: "63da758d-e664-4564-adc5-f4b93be8accd",
  vlek: "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
  ask: "4ab7b379-bbac-4fe4-a02f-05aef327c782",
  ark: "c0b406a4-a803-4952-9743-3fb6014cd0ae",
} as const;
const certTableEntriesMax = 16;

export function parseSnpCertTable(table: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  for (let i = 0; ; i++) {
    const at = i * 24;
    if (at + 24 > table.byteLength) throw new AttestationError("tsm", "SNP certificate table: no terminating entry");
    if (i >= certTableEntriesMax) throw new AttestationError("tsm", `SNP certificate table: more than ${certTableEntriesMax} entries`);
    const guid = table.subarray(at, at + 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (guid.every((b) => b === 0) && offset === 0 && length === 0) return out;
    if (offset + length > table.byteLength || offset < at + 24) throw new AttestationError("tsm", `SNP certificate table: entry ${i} points outside the table`);
    out.set(guidString(guid), table.subarray(offset, offset + length));
  }
}

/** Build a certificate table (what the host hands the guest; used by the test fake). */
export function buildSnpCertTable(certs: readonly { guid: string; der: Uint8Array }[]): Uint8Array {
  const header = (certs.length + 1) * 24;
  const total = header + certs.reduce((n, c) => n + c.der.byteLength, 0);
  const table = new Uint8Array(total);
  const view = new DataView(table.buffer);
  let offset = header;
  certs.forEach((c, i) => {
    table.set(Buffer.from(c.guid.replaceAll("-", ""), "hex"), i * 24);
    view.setUint32(i * 24 + 16, offset, true);
    view.setUint32(i * 24 + 20, c.der.byteLength, true);
    table.set(c.der, offset);
    offset += c.der.byteLength;
  });
  return table;
}

function guidString(b: Uint8Array): string {
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
