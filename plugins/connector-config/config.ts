/**
 * The `connectors` section of DIR/hub.json and DIR/agent.json, in two shapes: the user-facing
 * one (validated with the rest of the file by plugins/host/config-file.ts, so every problem is
 * reported at once with its path and line) and the resolved inits handed to the connector
 * factories (files read, relative to the data dir).
 *
 *   "connectors": {
 *     "aws":    { "accounts": ["123456789012"], "roles": ["grey-agent"], "regions": ["eu-west-1"],
 *                 "stsEndpoint": "https://sts.eu-west-1.amazonaws.com", "imdsEndpoint": "http://169.254.169.254",
 *                 "identity": "sts" },                       // agent: "sts" (bound to the join) | "iid" (document, not fresh)
 *     "gcp":    { "projects": ["my-project"], "serviceAccounts": ["grey-agent@my-project.iam.gserviceaccount.com"],
 *                 "metadataEndpoint": "...", "jwksUrl": "..." },      // serviceAccounts: GKE Workload Identity tokens
 *     "azure":  { "tenants": ["<tenant id>"], "subscriptions": ["<subscription id>"], "imdsEndpoint": "...", "jwksUrl": "..." },
 *     "onprem": { "roots": ["pki/root.pem"], "crls": ["pki/ca.crl"], "requireCrl": true,   // hub
 *                 "certificate": "pki/node-chain.pem", "key": "pki/node.key",            // agent (software key)
 *                 "pkcs11": { "module": "/usr/lib/softhsm/libsofthsm2.so", "tokenLabel": "grey", "label": "node" }, // agent (HSM key; PIN: GREY_HSM_PIN)
 *                 "tpm": "/dev/tpmrm0", "tpmLabel": "grey-onprem" }  // agent (TPM key: derived primary, or "tpmHandle": "0x81010010")
 *   }
 *
 * A platform listed here is "configured": its connector gets these settings (instead of the
 * defaults, which verify nothing), the connector-health service probes it, and on the hub it owns
 * its evidence format at join (hub/catalog.ts, plugins/connector-config/attestor.ts).
 */
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { z } from "zod";
import { pemBlocks } from "../../attest/x509/cert.ts";
import type { AwsConnectorInit } from "../connector-aws/index.ts";
import type { AzureConnectorInit } from "../connector-azure/index.ts";
import type { GcpConnectorInit } from "../connector-gcp/index.ts";
import type { OnpremConnectorInit } from "../connector-onprem/index.ts";

/** Entries in one allow-list. */
export const connectorAllowListMax = 256;
/** Certificate, CRL or key files larger than this are refused. */
export const connectorFileBytesMax = 1024 * 1024;

export const PLATFORMS = ["aws", "gcp", "azure", "onprem"] as const;
export type Platform = (typeof PLATFORMS)[number];

const Url = z.string().url().max(2048);
const Name = z.string().min(1).max(512);
const List = z.array(Name).max(connectorAllowListMax);
const File = z.string().min(1).max(4096);

export const ConnectorsShape = z.strictObject({
  aws: z.strictObject({
    accounts: z.array(z.string().regex(/^\d{12}$/, "an AWS account id is 12 digits")).max(connectorAllowListMax).default([]),
    roles: List.default([]),
    regions: List.default([]),
    stsEndpoint: Url.optional(),
    stsRegion: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).optional(),
    imdsEndpoint: Url.optional(),
    identity: z.enum(["sts", "iid"]).default("sts"),
  }).optional(),
  gcp: z.strictObject({
    projects: List.default([]),
    /** GKE Workload Identity: Google service accounts (emails) whose tokens are accepted. */
    serviceAccounts: z.array(z.string().max(320).regex(/^[^@\s]+@[a-z0-9.-]+\.gserviceaccount\.com$/, "a Google service account email (NAME@PROJECT.iam.gserviceaccount.com)")).max(connectorAllowListMax).default([]),
    metadataEndpoint: Url.optional(),
    jwksUrl: Url.optional(),
  }).optional(),
  azure: z.strictObject({
    tenants: List.default([]),
    subscriptions: List.default([]),
    imdsEndpoint: Url.optional(),
    jwksUrl: Url.optional(),
    resource: Name.optional(),
  }).optional(),
  onprem: z.strictObject({
    roots: z.array(File).max(64).default([]),
    crls: z.array(File).max(64).default([]),
    requireCrl: z.boolean().default(false),
    subjectPattern: z.string().min(1).max(1024).refine((p) => {
      try {
        new RegExp(p);
        return true;
      } catch {
        return false;
      }
    }, "not a valid regular expression").optional(),
    certificate: File.optional(),
    key: File.optional(),
    pkcs11: z.strictObject({ module: File, tokenLabel: Name, label: Name, pin: z.string().optional() }).optional(),
    /** Key in a TPM 2.0: "swtpm:HOST:PORT" or a device path (/dev/tpmrm0). */
    tpm: z.string().max(1024).regex(/^(swtpm:(\[[^\]]+\]|[^:]+):\d{1,5}|\/.+)$/, "swtpm:HOST:PORT or a device path like /dev/tpmrm0").optional(),
    /** A persistent TPM key handle instead of the derived primary key (tpm-key.ts). */
    tpmHandle: z.string().regex(/^0x81[0-9a-fA-F]{6}$/, "a persistent handle 0x81xxxxxx").optional(),
    /** Label of the derived TPM key (default "grey-onprem"). */
    tpmLabel: Name.optional(),
  }).refine((o) => [o.key, o.pkcs11, o.tpm].filter((x) => x !== undefined).length <= 1, "set one of key, pkcs11 or tpm")
    .refine((o) => o.tpm !== undefined || (o.tpmHandle === undefined && o.tpmLabel === undefined), "tpmHandle and tpmLabel need tpm")
    .refine((o) => !(o.tpmHandle && o.tpmLabel), "set tpmHandle or tpmLabel, not both").optional(),
}).default({});
export type ConnectorsInput = z.infer<typeof ConnectorsShape>;

/** The `health` section: how often the connector-health service probes connectors and peers. */
export const HealthShape = z.strictObject({
  intervalMs: z.number().int().min(100).max(3_600_000).default(15_000),
  timeoutMs: z.number().int().min(1).max(60_000).default(3_000),
}).refine((h) => h.timeoutMs <= h.intervalMs, "timeoutMs must not exceed intervalMs").default({ intervalMs: 15_000, timeoutMs: 3_000 });

/** What the factories receive. `configured`: the platforms the file lists. */
export interface ResolvedConnectors {
  configured: Platform[];
  aws?: AwsConnectorInit & { identity: "sts" | "iid" };
  gcp?: GcpConnectorInit;
  azure?: AzureConnectorInit;
  onprem?: OnpremConnectorInit;
}

export const NO_CONNECTORS: ResolvedConnectors = { configured: [] };

type Problem = (path: (string | number)[], message: string) => void;

function readBounded(path: string): Buffer {
  const size = statSync(path).size;
  if (size > connectorFileBytesMax) throw new Error(`larger than ${connectorFileBytesMax} bytes`);
  return readFileSync(path);
}

/**
 * Read the files a `connectors` section names (relative to `dir`) and build the factory inits.
 * Unreadable or empty files are recorded through `problem` (with the field's path), never thrown.
 */
export function resolveConnectors(c: ConnectorsInput, dir: string, problem: Problem): ResolvedConnectors {
  const out: ResolvedConnectors = { configured: PLATFORMS.filter((p) => c[p] !== undefined) };
  const file = (path: (string | number)[], rel: string): Buffer | undefined => {
    try {
      return readBounded(resolve(dir, rel));
    } catch (err) {
      problem(path, `${rel}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  };
  /** PEM (any number of blocks of `label`) or one DER object. */
  const ders = (path: (string | number)[], rel: string, label: string): Uint8Array[] => {
    const bytes = file(path, rel);
    if (!bytes) return [];
    const text = bytes.toString("latin1");
    const blocks = text.includes("-----BEGIN") ? pemBlocks(text, label) : [new Uint8Array(bytes)];
    if (blocks.length === 0) problem(path, `${rel}: no ${label} in the file`);
    return blocks;
  };

  if (c.aws) {
    const a = c.aws;
    out.aws = {
      accounts: a.accounts, roles: a.roles, regions: a.regions, identity: a.identity,
      ...(a.stsEndpoint ? { stsEndpoint: a.stsEndpoint } : {}), ...(a.stsRegion ? { stsRegion: a.stsRegion } : {}),
      ...(a.imdsEndpoint ? { imdsEndpoint: a.imdsEndpoint } : {}),
    };
  }
  if (c.gcp) {
    const g = c.gcp;
    out.gcp = { projects: g.projects, serviceAccounts: g.serviceAccounts, ...(g.metadataEndpoint ? { metadataEndpoint: g.metadataEndpoint } : {}), ...(g.jwksUrl ? { jwksUrl: g.jwksUrl } : {}) };
  }
  if (c.azure) {
    const z_ = c.azure;
    out.azure = {
      tenants: z_.tenants, subscriptions: z_.subscriptions,
      ...(z_.imdsEndpoint ? { imdsEndpoint: z_.imdsEndpoint } : {}), ...(z_.jwksUrl ? { jwksUrl: z_.jwksUrl } : {}), ...(z_.resource ? { resource: z_.resource } : {}),
    };
  }
  if (c.onprem) {
    const o = c.onprem;
    const base = ["connectors", "onprem"];
    const init: OnpremConnectorInit = {
      roots: o.roots.flatMap((r, i) => ders([...base, "roots", i], r, "CERTIFICATE")),
      crls: o.crls.flatMap((r, i) => ders([...base, "crls", i], r, "X509 CRL")),
      requireCrls: o.requireCrl,
      ...(o.subjectPattern ? { subjectPattern: o.subjectPattern } : {}),
    };
    if (o.certificate) init.chain = ders([...base, "certificate"], o.certificate, "CERTIFICATE");
    if (o.key) {
      const pem = file([...base, "key"], o.key)?.toString("utf8");
      if (pem !== undefined && !pem.includes("PRIVATE KEY")) problem([...base, "key"], `${o.key}: not a PEM private key`);
      else if (pem !== undefined) init.key = { kind: "software", pkcs8Pem: pem };
    }
    if (o.pkcs11) {
      const pin = o.pkcs11.pin ?? process.env.GREY_HSM_PIN;
      if (!pin) problem([...base, "pkcs11"], "needs a PIN (pkcs11.pin or GREY_HSM_PIN)");
      else init.key = { kind: "pkcs11", pkcs11: { module: o.pkcs11.module, tokenLabel: o.pkcs11.tokenLabel, pin }, label: o.pkcs11.label };
    }
    if (o.tpm) {
      init.key = { kind: "tpm", tpm: { tpm: o.tpm, ...(o.tpmHandle ? { handle: Number.parseInt(o.tpmHandle, 16) } : {}), ...(o.tpmLabel ? { label: o.tpmLabel } : {}) } };
    }
    if ((o.key || o.pkcs11 || o.tpm) && !o.certificate) problem(base, "a key needs its certificate (connectors.onprem.certificate)");
    out.onprem = init;
  }
  return out;
}
