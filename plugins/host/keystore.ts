/**
 * Long-lived secrets at rest (the federation CA key, a node's identity key), optionally under
 * envelope encryption through a KMS plugin (sdk/kms.ts). This file is the one place that knows
 * the key-file envelope format and how a data dir names its KMS.
 *
 * Envelope file (JSON, mode 0600; never a PEM or protobuf key, so a plaintext reader fails loudly):
 *
 *   {"format":"grey-key-envelope/1","purpose":"grey/ca-key","kms":"kms-aws","keyId":"arn:...",
 *    "wrappedKey":B64,"iv":B64,"ciphertext":B64}
 *
 * The key material is AES-256-GCM encrypted with a fresh data key; `ciphertext` ends with the
 * 16-byte tag; the AAD is the canonical header (format, purpose, kms, keyId). The data key is
 * wrapped by the KMS with context {purpose}, so a CA-key envelope cannot be replayed as a node key.
 *
 * Which KMS: `kms` in DIR/hub.json or DIR/agent.json (`{provider: "aws"|"gcp"|"azure"|"hsm"|"tpm", ...}`),
 * read when a key is loaded or written (never at import time). No `kms`: plaintext files (default).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { hsmKms } from "../kms-hsm/index.ts";
import { awsKms } from "../kms-aws/index.ts";
import { azureKms } from "../kms-azure/index.ts";
import { gcpKms } from "../kms-gcp/index.ts";
import { tpmKms } from "../kms-tpm/index.ts";
import { ConfigError, GreyError } from "../sdk/errors.ts";
import { writeFileAtomic, writeSecretFile } from "../sdk/fs.ts";
import { dataKeyBytes, type Kms, type KmsComponents } from "../sdk/kms.ts";

export const ENVELOPE_FORMAT = "grey-key-envelope/1";
/** Key files larger than this are refused before parsing. */
export const keyFileBytesMax = 64 * 1024;
/** Per-call deadline for the KMS while loading or writing a key. */
export const keystoreKmsTimeoutMs = 10_000;

export const PURPOSE = { caKey: "grey/ca-key", nodeKey: "grey/node-key" } as const;

/** A key file that claims to be an envelope but is not a valid one, or was opened for another purpose. */
export class KeyEnvelopeError extends GreyError {
  constructor(readonly path: string, message: string, options?: { cause?: unknown }) {
    super("ERR_KEY_ENVELOPE", `${path}: ${message}`, options);
  }
}

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/).transform((s) => new Uint8Array(Buffer.from(s, "base64")));
const Envelope = z.strictObject({
  format: z.literal(ENVELOPE_FORMAT),
  purpose: z.string().min(1).max(128),
  kms: z.string().min(1).max(64),
  keyId: z.string().min(1).max(2048),
  wrappedKey: b64,
  iv: b64.refine((b) => b.byteLength === 12, "iv must be 12 bytes"),
  ciphertext: b64.refine((b) => b.byteLength >= 16, "ciphertext too short"),
});

// ---- KMS configuration (hub.json / agent.json "kms") ----

const Url = z.string().url();
export const KmsConfigSchema = z.discriminatedUnion("provider", [
  z.strictObject({
    provider: z.literal("aws"),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/),
    keyId: z.string().min(1),
    endpoint: Url.optional(),
    /** Inline credentials (tests, labs). Default: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN. */
    credentials: z.strictObject({ accessKeyId: z.string().min(1), secretAccessKey: z.string().min(1), sessionToken: z.string().optional() }).optional(),
  }),
  z.strictObject({
    provider: z.literal("gcp"),
    keyName: z.string().regex(/^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+$/, "projects/P/locations/L/keyRings/R/cryptoKeys/K"),
    endpoint: Url.optional(),
    metadataEndpoint: Url.optional(),
  }),
  z.strictObject({
    provider: z.literal("azure"),
    vaultUrl: Url,
    keyName: z.string().regex(/^[0-9a-zA-Z-]{1,127}$/),
    imdsEndpoint: Url.optional(),
  }),
  z.strictObject({
    provider: z.literal("hsm"),
    module: z.string().min(1),
    tokenLabel: z.string().min(1),
    /** Default: the GREY_HSM_PIN environment variable. */
    pin: z.string().optional(),
    label: z.string().min(1).max(64),
  }),
  z.strictObject({
    provider: z.literal("tpm"),
    /** "swtpm:HOST:PORT" or a device such as /dev/tpmrm0. */
    tpm: z.string().min(1),
    /** Current KEK version (storage primary vN); raise it to rotate. Default 1. */
    version: z.number().int().min(1).max(1_000_000).optional(),
  }),
]);
export type KmsConfig = z.infer<typeof KmsConfigSchema>;

const quietComponents = (): KmsComponents => ({
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  clock: { now: () => Date.now() },
  fetch: globalThis.fetch,
});

/** Build the KMS plugin a config names. Environment (credentials, PIN) is read here, at call time. */
export function kmsFromConfig(cfg: KmsConfig, components: KmsComponents = quietComponents()): Kms {
  switch (cfg.provider) {
    case "aws": {
      const env = process.env;
      const credentials = cfg.credentials ?? (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
        : undefined);
      if (!credentials) throw new ConfigError(["kms: provider aws needs credentials (kms.credentials or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"]);
      return awsKms({ region: cfg.region, keyId: cfg.keyId, credentials, ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}) })(components);
    }
    case "hsm": {
      const pin = cfg.pin ?? process.env.GREY_HSM_PIN;
      if (!pin) throw new ConfigError(["kms: provider hsm needs a PIN (kms.pin or GREY_HSM_PIN)"]);
      return hsmKms({ pkcs11: { module: cfg.module, tokenLabel: cfg.tokenLabel, pin }, label: cfg.label })(components);
    }
    case "gcp":
      return gcpKms({ keyName: cfg.keyName, ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}), ...(cfg.metadataEndpoint ? { metadataEndpoint: cfg.metadataEndpoint } : {}) })(components);
    case "azure":
      return azureKms({ vaultUrl: cfg.vaultUrl, keyName: cfg.keyName, ...(cfg.imdsEndpoint ? { imdsEndpoint: cfg.imdsEndpoint } : {}) })(components);
    case "tpm":
      return tpmKms({ tpm: cfg.tpm, ...(cfg.version ? { version: cfg.version } : {}) })(components);
  }
}

/** Validate a user-written kms section; every problem at once, with its path. */
export function parseKmsConfig(raw: unknown, where = "kms"): KmsConfig {
  const r = KmsConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => `${[where, ...i.path].join(".")}: ${i.message}`));
  return r.data;
}

/** The kms section of DIR/hub.json or DIR/agent.json, if any. */
export function dataDirKmsConfig(dir: string): KmsConfig | undefined {
  for (const file of ["hub.json", "agent.json"]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let raw: { kms?: unknown };
    try {
      raw = JSON.parse(readFileSync(path, "utf8")) as { kms?: unknown };
    } catch (err) {
      throw new ConfigError([`${path}: not JSON (${(err as Error).message})`]);
    }
    if (raw?.kms !== undefined) return parseKmsConfig(raw.kms, `${file}: kms`);
  }
  return undefined;
}

/** Set `kms` in a JSON config file (hub.json/agent.json), keeping every other field; creates `{}` when absent. */
export function setConfigKms(configFile: string, cfg: KmsConfig): void {
  let raw: Record<string, unknown> = {};
  if (existsSync(configFile)) {
    try {
      raw = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`${configFile}: not JSON (${(err as Error).message})`]);
    }
  }
  writeFileAtomic(configFile, JSON.stringify({ ...raw, kms: cfg }, null, 2) + "\n");
}

/** `--kms` flag: inline JSON (`{"provider":...}`) or a JSON file with the kms section. */
export function kmsOption(value: string): KmsConfig {
  let raw: unknown;
  const text = value.trimStart().startsWith("{") ? value : (() => {
    try {
      return readFileSync(value, "utf8");
    } catch (err) {
      throw new ConfigError([`--kms: cannot read ${value} (${(err as NodeJS.ErrnoException).code ?? "unreadable"})`]);
    }
  })();
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`--kms: not JSON (${(err as Error).message})`]);
  }
  return parseKmsConfig(raw, "--kms");
}

// ---- envelope ----

const header = (e: { purpose: string; kms: string; keyId: string }) =>
  new TextEncoder().encode(JSON.stringify({ format: ENVELOPE_FORMAT, purpose: e.purpose, kms: e.kms, keyId: e.keyId }));

/** True when `bytes` looks like an envelope file (cheap check; open() validates). */
export function isEnvelope(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 64)).toString("utf8");
  return head.trimStart().startsWith("{") && head.includes(ENVELOPE_FORMAT);
}

/** Encrypt `secret` under a fresh data key wrapped by `kms`; returns the envelope file text. */
export async function sealEnvelope(kms: Kms, secret: Uint8Array, purpose: string): Promise<string> {
  const signal = AbortSignal.timeout(keystoreKmsTimeoutMs);
  const dk = await kms.generateDataKey({ context: { purpose }, signal });
  try {
    if (dk.plaintext.byteLength !== dataKeyBytes) throw new KeyEnvelopeError("(new envelope)", `${kms.name} returned a ${dk.plaintext.byteLength}-byte data key`);
    const iv = randomBytes(12);
    const meta = { purpose, kms: dk.wrapped.kms, keyId: dk.wrapped.keyId };
    const c = createCipheriv("aes-256-gcm", dk.plaintext, iv).setAAD(header(meta));
    const ct = Buffer.concat([c.update(secret), c.final(), c.getAuthTag()]);
    const b = (u: Uint8Array) => Buffer.from(u).toString("base64");
    return JSON.stringify({ format: ENVELOPE_FORMAT, ...meta, wrappedKey: b(dk.wrapped.ciphertext), iv: b(iv), ciphertext: b(ct) }) + "\n";
  } finally {
    dk.plaintext.fill(0);
  }
}

/** Decrypt an envelope file's text with `kms`. KmsUnavailableError/KmsRefusedError pass through. */
export async function openEnvelope(kms: Kms, text: string, purpose: string, path = "(envelope)"): Promise<Uint8Array> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new KeyEnvelopeError(path, "not a key envelope (bad JSON)", { cause: err });
  }
  const r = Envelope.safeParse(raw);
  if (!r.success) throw new KeyEnvelopeError(path, `not a key envelope (${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")})`);
  const e = r.data;
  if (e.purpose !== purpose) throw new KeyEnvelopeError(path, `envelope holds a ${e.purpose}, expected a ${purpose}`);
  if (e.kms !== kms.name) throw new KeyEnvelopeError(path, `sealed by ${e.kms}, but the configured KMS is ${kms.name}`);
  const dataKey = await kms.unwrap({ kms: e.kms, keyId: e.keyId, ciphertext: e.wrappedKey }, { context: { purpose }, signal: AbortSignal.timeout(keystoreKmsTimeoutMs) });
  try {
    const d = createDecipheriv("aes-256-gcm", dataKey, e.iv).setAAD(header(e));
    d.setAuthTag(e.ciphertext.subarray(e.ciphertext.byteLength - 16));
    return new Uint8Array(Buffer.concat([d.update(e.ciphertext.subarray(0, e.ciphertext.byteLength - 16)), d.final()]));
  } catch (err) {
    throw new KeyEnvelopeError(path, "key material does not authenticate (tampered envelope)", { cause: err });
  } finally {
    dataKey.fill(0);
  }
}

// ---- key files ----

export interface KeyFileOptions {
  /** Data dir whose hub.json/agent.json names the KMS. */
  dir: string;
  purpose: string;
  /** Use this KMS instead of the data dir's config (init --kms, tests). */
  kms?: Kms;
}

async function withKms<T>(kms: Kms, fn: (k: Kms) => Promise<T>): Promise<T> {
  await kms.start?.();
  try {
    return await fn(kms);
  } finally {
    await kms.stop?.();
  }
}

/** Read a key file: plaintext as is, an envelope opened through the configured KMS. */
export async function readKeyFile(path: string, opts: KeyFileOptions): Promise<Uint8Array> {
  const bytes = readFileSync(path);
  if (bytes.byteLength > keyFileBytesMax) throw new KeyEnvelopeError(path, `key file larger than ${keyFileBytesMax} bytes`);
  if (!isEnvelope(bytes)) return new Uint8Array(bytes);
  const kms = opts.kms ?? kmsFor(opts.dir, path);
  return withKms(kms, (k) => openEnvelope(k, bytes.toString("utf8"), opts.purpose, path));
}

/** Write a key file (0600, atomic): an envelope when a KMS is configured, else plaintext. */
export async function writeKeyFile(path: string, secret: Uint8Array | string, opts: KeyFileOptions): Promise<void> {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  const cfg = opts.kms ? undefined : dataDirKmsConfig(opts.dir);
  const kms = opts.kms ?? (cfg ? kmsFromConfig(cfg) : undefined);
  if (!kms) return writeSecretFile(path, bytes);
  writeSecretFile(path, await withKms(kms, (k) => sealEnvelope(k, bytes, opts.purpose)));
}

function kmsFor(dir: string, path: string): Kms {
  const cfg = dataDirKmsConfig(dir);
  if (!cfg) throw new KeyEnvelopeError(path, `sealed by a KMS, but ${dir} has no "kms" in hub.json/agent.json`);
  return kmsFromConfig(cfg);
}

/**
 * Convert plaintext key files to envelopes in place (`grey-hub kms migrate`). Each file is sealed,
 * opened again and compared before it replaces the plaintext. Returns what it did per file.
 */
export async function migrateKeyFiles(files: readonly { path: string; purpose: string }[], kms: Kms): Promise<string[]> {
  return withKms(kms, async (k) => {
    const done: string[] = [];
    for (const f of files) {
      if (!existsSync(f.path)) {
        done.push(`${f.path}: absent, skipped`);
        continue;
      }
      const bytes = new Uint8Array(readFileSync(f.path));
      if (isEnvelope(bytes)) {
        done.push(`${f.path}: already an envelope (${JSON.parse(Buffer.from(bytes).toString("utf8")).kms})`);
        continue;
      }
      const text = await sealEnvelope(k, bytes, f.purpose);
      const back = await openEnvelope(k, text, f.purpose, f.path);
      if (!Buffer.from(back).equals(Buffer.from(bytes))) throw new KeyEnvelopeError(f.path, "envelope did not round-trip; plaintext left in place");
      writeSecretFile(f.path, text);
      done.push(`${f.path}: sealed by ${k.name}`);
    }
    return done;
  });
}

/**
 * Rotate the KMS key (a new KEK version becomes current) and re-wrap each envelope file under it
 * (`grey-hub kms rotate`): open with the old version, seal with a fresh data key from the new one,
 * open the new envelope and compare, then replace the file atomically. Plaintext or absent files
 * are refused (migrate them first): a rotation must never leave a key unsealed or half-done
 * silently. Returns the new key id and one line per file.
 */
export async function rotateKeyFiles(files: readonly { path: string; purpose: string }[], kms: Kms): Promise<{ keyId: string; lines: string[] }> {
  return withKms(kms, async (k) => {
    const envelopes = files.map((f) => {
      if (!existsSync(f.path)) throw new KeyEnvelopeError(f.path, "absent: nothing to rotate");
      const bytes = new Uint8Array(readFileSync(f.path));
      if (!isEnvelope(bytes)) throw new KeyEnvelopeError(f.path, "plaintext key: run 'kms migrate' before rotating");
      return { ...f, text: Buffer.from(bytes).toString("utf8") };
    });
    // every envelope must open before the KEK moves, so a broken file stops the rotation up front
    const secrets = [];
    for (const e of envelopes) secrets.push(await openEnvelope(k, e.text, e.purpose, e.path));
    const keyId = await k.rotate({ signal: AbortSignal.timeout(keystoreKmsTimeoutMs) });
    const lines: string[] = [];
    for (const [i, e] of envelopes.entries()) {
      const secret = secrets[i]!;
      const text = await sealEnvelope(k, secret, e.purpose);
      const back = await openEnvelope(k, text, e.purpose, e.path);
      if (!Buffer.from(back).equals(Buffer.from(secret))) throw new KeyEnvelopeError(e.path, "re-wrapped envelope did not round-trip; old envelope left in place");
      writeSecretFile(e.path, text);
      lines.push(`${e.path}: re-wrapped under ${(JSON.parse(text) as { keyId: string }).keyId}`);
      secret.fill(0);
    }
    return { keyId, lines };
  });
}
