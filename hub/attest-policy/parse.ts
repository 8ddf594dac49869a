/**
 * The attestation policy file (YAML, or JSON which is YAML too), resolved into a validated
 * `AttestPolicy`. Every problem is reported at once with its field path and 1-based line.
 *
 *   version: 1
 *   cluster: hub-1                  # the hub's own cluster id (default: hub name) → "same-cluster"
 *   verifiers:                      # hub-wide verifier settings; paths relative to this file
 *     tpm2-quote:    { akRoots: ak-roots.pem, ekRoots: ek-roots.pem }  # optional: AK / EK certificate roots
 *     nitro-enclave: { roots: aws_nitro_enclaves_root_g1.pem, allowDebug: false }
 *     sev-snp:       { roots: ask_ark_milan.pem }      # ASK then ARK
 *     dcap:          { roots: intel_sgx_root_ca.pem, tcbStatuses: [UpToDate], requireCollateral: false }
 *     aws-iid:       { roots: aws-iid-certs.pem }      # pinned AWS regional certificates
 *     gcp-iit:       { jwks: google-jwks.json }
 *     azure-imds:    { roots: microsoft-chain.pem }    # roots and intermediates
 *   boundaries:                     # same-cluster | same-org | different-org; absent = refused
 *     same-org:
 *       formats: [tpm2-quote]       # evidence formats accepted
 *       maxAge: 5m                  # timestamped evidence older than this is refused
 *       resultTtl: 1h               # the recorded result expires after this (re-attest on renewal)
 *       allowNonFresh: false        # formats without a nonce (aws-iid) need true
 *       tpm2-quote:
 *         akNames: [000b8f...]      # pinned AK TPM Names (hex), or:
 *         ekNames: [000b3c...]      # pinned EK TPM Names: the AK is proven by credential activation at join
 *         pcrs: { sha256: { 16: [58e2fa...] } }
 *       nitro-enclave: { pcrs: { 0: [...] } }
 *       sev-snp: { measurements: [...] }
 *       dcap: { measurements: [...], mrsigners: [...] }
 *       aws-iid: { claims: { account.id: ["123456789012"] } }   # any format: claim allow-lists
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseConfigText } from "../../plugins/host/config-file.ts";
import { z } from "zod";
import { pemBlocks } from "../../attest/x509/cert.ts";
import { allowListItemsMax, maxAgeMsDefault, policyFileBytesMax, resultTtlMsMax, rootsFileBytesMax } from "./constants.ts";
import { AttestPolicyError } from "./errors.ts";

export const BOUNDARIES = ["same-cluster", "same-org", "different-org"] as const;
export type Boundary = (typeof BOUNDARIES)[number];
export const FORMATS = ["dev", "tpm2-quote", "nitro-enclave", "sev-snp", "dcap", "aws-iid", "gcp-iit", "azure-imds", "onprem-x509"] as const;
export type Format = (typeof FORMATS)[number];
/** Formats whose evidence carries no hub nonce. */
/**
 * Cloud identity formats: checked either by a verifier configured here (trust roots) or by the platform's
 * connector configured in hub.json (with its allow-lists). With neither, verification fails closed.
 */
export const CONNECTOR_CHECKED_FORMATS: readonly Format[] = ["aws-iid", "gcp-iit", "azure-imds", "onprem-x509"];

const durationRe = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const Duration = z.string().regex(durationRe, "must be a duration such as 30s, 5m, 1h").transform((t) => {
  const m = durationRe.exec(t)!;
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 }[m[2] as "ms"]);
});
const Hex = z.string({ error: "must be a hex string (quote values YAML would read as numbers)" }).regex(/^([0-9a-fA-F]{2})+$/, "must be hex").transform((s) => s.toLowerCase());
const HexList = z.array(Hex).min(1).max(allowListItemsMax);
const PcrIndex = z.string().regex(/^(\d|1\d|2[0-3])$/, "PCR index must be 0..23");
const Path = z.string().min(1).max(4096);
const ClaimLists = z.record(z.string().min(1).max(128), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1).max(allowListItemsMax));

const BANKS = ["sha1", "sha256", "sha384", "sha512"] as const;
const PcrMap = z.record(PcrIndex, HexList);
const common = { claims: ClaimLists.optional() };
/** Per-format rules; each format takes only the fields that mean something for it. */
const FORMAT_RULES = {
  dev: z.strictObject(common),
  "tpm2-quote": z.strictObject({ ...common, akNames: HexList.optional(), ekNames: HexList.optional(), pcrs: z.partialRecord(z.enum(BANKS), PcrMap).optional() }),
  "nitro-enclave": z.strictObject({ ...common, pcrs: PcrMap.optional() }),
  "sev-snp": z.strictObject({ ...common, measurements: HexList.optional() }),
  dcap: z.strictObject({ ...common, measurements: HexList.optional(), mrsigners: HexList.optional() }),
  "aws-iid": z.strictObject(common),
  "gcp-iit": z.strictObject(common),
  "azure-imds": z.strictObject(common),
  "onprem-x509": z.strictObject(common),
} satisfies Record<Format, z.ZodType>;
export type FormatRule = {
  claims?: Record<string, (string | number | boolean)[]>;
  akNames?: string[];
  /** tpm2-quote: EK TPM Names whose TPM may present any AK, proven by credential activation at join. */
  ekNames?: string[];
  /** tpm2-quote: bank → index → values; nitro-enclave: index → values (SHA-384). */
  pcrs?: Record<string, Record<string, string[]> | string[]>;
  measurements?: string[];
  mrsigners?: string[];
};

const BoundaryShape = z.strictObject({
  formats: z.array(z.enum(FORMATS)).min(1).max(FORMATS.length),
  maxAge: Duration.optional(),
  resultTtl: Duration.optional(),
  allowNonFresh: z.boolean().default(false),
  ...Object.fromEntries(FORMATS.map((f) => [f, FORMAT_RULES[f].optional()])),
}) as z.ZodType<BoundaryInput>;
type BoundaryInput = {
  formats: Format[]; maxAge?: number; resultTtl?: number; allowNonFresh: boolean;
} & Partial<Record<Format, FormatRule>>;

const PolicyShape = z.strictObject({
  version: z.literal(1),
  cluster: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/).optional(),
  verifiers: z.strictObject({
    "tpm2-quote": z.strictObject({ akRoots: Path.optional(), ekRoots: Path.optional(), allowSha1: z.boolean().optional() }).optional(),
    "nitro-enclave": z.strictObject({ roots: Path, allowDebug: z.boolean().optional() }).optional(),
    "sev-snp": z.strictObject({ roots: Path, allowDebug: z.boolean().optional() }).optional(),
    dcap: z.strictObject({ roots: Path, tcbStatuses: z.array(z.string()).min(1).max(16).optional(), requireCollateral: z.boolean().optional() }).optional(),
    "aws-iid": z.strictObject({ roots: Path }).optional(),
    "gcp-iit": z.strictObject({ jwks: Path }).optional(),
    "azure-imds": z.strictObject({ roots: Path }).optional(),
  }).default({}),
  boundaries: z.strictObject(Object.fromEntries(BOUNDARIES.map((b) => [b, BoundaryShape.optional()])) as Record<Boundary, z.ZodOptional<typeof BoundaryShape>>),
});

export type BoundaryRule = { formats: Format[]; maxAgeMs: number; resultTtlMs?: number; allowNonFresh: boolean; rules: Partial<Record<Format, FormatRule>> };

/** Hub-wide verifier settings with files already read (DER certificates, JWKS). */
export type VerifierSettings = {
  "tpm2-quote"?: { akRoots?: Uint8Array[]; ekRoots?: Uint8Array[]; allowSha1?: boolean };
  "nitro-enclave"?: { roots: Uint8Array[]; allowDebug?: boolean };
  "sev-snp"?: { roots: Uint8Array[]; allowDebug?: boolean };
  dcap?: { roots: Uint8Array[]; tcbStatuses?: string[]; requireCollateral?: boolean };
  "aws-iid"?: { roots: Uint8Array[] };
  "gcp-iit"?: { jwks: { keys: Record<string, unknown>[] } };
  "azure-imds"?: { roots: Uint8Array[] };
};

export type AttestPolicy = {
  file: string;
  cluster?: string;
  verifiers: VerifierSettings;
  boundaries: Partial<Record<Boundary, BoundaryRule>>;
};

/** Parse and validate policy text. `file` names it in errors; relative root paths resolve against its folder. */
export function parseAttestPolicy(text: string, file: string, read: (path: string) => Uint8Array = (p) => readBounded(p, rootsFileBytesMax)): AttestPolicy {
  const { data: p, problem, finish } = parseConfigText(text, file, PolicyShape, (f, problems) => new AttestPolicyError(f, problems));

  const base = dirname(resolve(file));
  const certs = (path: (string | number)[], rel: string): Uint8Array[] => {
    try {
      const bytes = read(resolve(base, rel));
      const text = Buffer.from(bytes).toString("latin1");
      const blocks = text.includes("-----BEGIN") ? pemBlocks(text) : [bytes];
      if (blocks.length === 0) problem(path, `${rel}: no certificate in the file`);
      return blocks;
    } catch (err) {
      problem(path, `${rel}: ${(err as Error).message}`);
      return [];
    }
  };
  const v = p.verifiers;
  const verifiers: VerifierSettings = {};
  if (v["tpm2-quote"]) {
    verifiers["tpm2-quote"] = {
      ...(v["tpm2-quote"].akRoots ? { akRoots: certs(["verifiers", "tpm2-quote", "akRoots"], v["tpm2-quote"].akRoots) } : {}),
      ...(v["tpm2-quote"].ekRoots ? { ekRoots: certs(["verifiers", "tpm2-quote", "ekRoots"], v["tpm2-quote"].ekRoots) } : {}),
      ...(v["tpm2-quote"].allowSha1 !== undefined ? { allowSha1: v["tpm2-quote"].allowSha1 } : {}),
    };
  }
  for (const f of ["nitro-enclave", "sev-snp", "aws-iid", "azure-imds"] as const) {
    const s = v[f];
    if (s) verifiers[f] = { ...s, roots: certs(["verifiers", f, "roots"], s.roots) } as never;
  }
  if (v.dcap) verifiers.dcap = { ...v.dcap, roots: certs(["verifiers", "dcap", "roots"], v.dcap.roots) };
  if (v["sev-snp"] && verifiers["sev-snp"]!.roots.length < 2) problem(["verifiers", "sev-snp", "roots"], "needs the ASK and the ARK (two certificates)");
  if (v["gcp-iit"]) {
    try {
      const jwks = JSON.parse(Buffer.from(read(resolve(base, v["gcp-iit"].jwks))).toString("utf8")) as { keys?: unknown };
      if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) problem(["verifiers", "gcp-iit", "jwks"], `${v["gcp-iit"].jwks}: not a JWKS ({"keys": [...]})`);
      else verifiers["gcp-iit"] = { jwks: jwks as { keys: Record<string, unknown>[] } };
    } catch (err) {
      problem(["verifiers", "gcp-iit", "jwks"], `${v["gcp-iit"].jwks}: ${(err as Error).message}`);
    }
  }

  const boundaries: AttestPolicy["boundaries"] = {};
  for (const b of BOUNDARIES) {
    const rule = p.boundaries[b];
    if (!rule) continue;
    const rules: Partial<Record<Format, FormatRule>> = {};
    for (const f of FORMATS) if (rule[f]) rules[f] = rule[f];
    for (const f of FORMATS) {
      if (rule[f] && !rule.formats.includes(f)) problem(["boundaries", b, f], `rules for ${f}, which formats does not accept`);
    }
    for (const f of rule.formats) {
      const tv = verifiers["tpm2-quote"];
      if (f === "tpm2-quote" && !rules[f]?.akNames && !rules[f]?.ekNames && !tv?.akRoots && !tv?.ekRoots) {
        problem(["boundaries", b, "tpm2-quote"], "tpm2-quote needs akNames (pinned AKs), ekNames (pinned EKs, AK activated at join) or verifiers.tpm2-quote.akRoots/ekRoots: an AK the hub has no reason to trust proves nothing");
      }
      // Freshness is judged per result (policy.fresh: a bare AWS identity document carries no nonce, an STS proof does).
      if (f !== "dev" && f !== "tpm2-quote" && !CONNECTOR_CHECKED_FORMATS.includes(f) && !verifiers[f as keyof VerifierSettings]) {
        problem(["boundaries", b, "formats"], `${f} accepted but verifiers.${f} (trust roots) is not configured`);
      }
    }
    if (rule.resultTtl !== undefined && rule.resultTtl > resultTtlMsMax) problem(["boundaries", b, "resultTtl"], `at most ${resultTtlMsMax / 3600_000}h`);
    boundaries[b] = {
      formats: rule.formats, maxAgeMs: rule.maxAge ?? maxAgeMsDefault, allowNonFresh: rule.allowNonFresh, rules,
      ...(rule.resultTtl !== undefined ? { resultTtlMs: rule.resultTtl } : {}),
    };
  }
  finish();
  return { file, ...(p.cluster ? { cluster: p.cluster } : {}), verifiers, boundaries };
}

function readBounded(path: string, max: number): Uint8Array {
  const size = statSync(path).size;
  if (size > max) throw new Error(`${size} bytes exceeds ${max}`);
  return new Uint8Array(readFileSync(path));
}

export function loadAttestPolicy(file: string): AttestPolicy {
  let text: string;
  try {
    text = Buffer.from(readBounded(file, policyFileBytesMax)).toString("utf8");
  } catch (err) {
    throw new AttestPolicyError(file, [{ path: "", line: null, message: (err as Error).message }]);
  }
  return parseAttestPolicy(text, file);
}
