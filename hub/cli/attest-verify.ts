/**
 * `grey-hub attest verify`: verify one piece of evidence offline and print every check.
 *
 *   grey-hub attest verify --kind KIND --evidence PATH [--roots FILE] [--nonce HEX] [--audience AUD]
 *                          [--policy FILE [--boundary B]] [--at RFC3339] [--json]
 *
 * PATH is one file or a folder of parts with these names:
 *   tpm2-quote     attest.bin (TPMS_ATTEST), signature.bin (TPMT_SIGNATURE), ak.pub (TPM2B_PUBLIC),
 *                  pcrs.json ({"hash":"sha256","pcrs":{"16":"hex",...}}), optional ak.crt (DER/PEM);
 *                  a single file is the CBOR evidence the agent sends
 *   nitro-enclave  document.cbor (COSE_Sign1; a file may also be base64)
 *   sev-snp        report.bin, vcek.der | vcek.pem
 *   dcap           quote.dat, optional collateral.json (dcap-qvl format); a file is the quote
 *   aws-iid        document.json + signature.b64 | pkcs7.der | pkcs7.b64 | pkcs7.pem
 *   gcp-iit        token.jwt (a file is the token)
 *   azure-imds     pkcs7.der | pkcs7.b64 (a file is either)
 * --roots: PEM bundle (tpm2-quote: AK roots; sev-snp: ASK then ARK; azure-imds: roots + intermediates)
 * or, for gcp-iit, a JWKS JSON file. Without --roots the policy file's verifiers are used.
 * --nonce: the expected binding value as hex (TPM extraData, Nitro nonce, SNP/DCAP report_data);
 * for azure-imds the nonce string itself. Without it the binding is reported, not checked.
 * Exit 0 only when the evidence is valid (and satisfies the policy when one is given).
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { verifyDcapParts } from "../../plugins/attestor-dcap/index.ts";
import { verifyAwsIidParts, verifyAzureImdsParts, verifyGcpIitParts } from "../../plugins/attestor-iid/index.ts";
import { verifyNitroParts } from "../../plugins/attestor-nitro/index.ts";
import { verifySnpParts } from "../../plugins/attestor-sev-snp/index.ts";
import { decodeTpmQuoteEvidence, verifyTpmQuoteParts, type TpmQuoteParts } from "../../plugins/attestor-tpm/attestor.ts";
import type { Command } from "../../plugins/host/cli.ts";
import type { AttestationResult } from "../../plugins/sdk/attestor.ts";
import { ConfigError } from "../../plugins/sdk/errors.ts";
import { pemBlocks } from "../../attest/x509/cert.ts";
import type { Jwk } from "../../attest/iid/gcp.ts";
import { BOUNDARIES, judge, loadAttestPolicy, type AttestPolicy, type Boundary, type VerifierSettings } from "../attest-policy/index.ts";

export const KINDS = ["tpm2-quote", "nitro-enclave", "sev-snp", "dcap", "aws-iid", "gcp-iit", "azure-imds"] as const;
type Kind = (typeof KINDS)[number];

/** Evidence parts larger than this are refused (the wire limit is far lower). */
const partBytesMax = 1024 * 1024;

export type VerifyOptions = {
  kind: Kind;
  evidence: string;
  at: Date;
  roots?: string;
  nonce?: string;
  audience?: string;
  policy?: AttestPolicy;
  boundary?: Boundary;
};

function readPart(path: string): Uint8Array<ArrayBuffer> {
  const size = statSync(path).size;
  if (size > partBytesMax) throw new ConfigError([`${path}: ${size} bytes exceeds ${partBytesMax}`]);
  return new Uint8Array(readFileSync(path));
}

/** The first existing part among `names` (folder), or the file itself. */
function part(path: string, names: string[], required = true): Uint8Array<ArrayBuffer> | undefined {
  if (!statSync(path).isDirectory()) return readPart(path);
  for (const n of names) if (existsSync(join(path, n))) return readPart(join(path, n));
  if (required) throw new ConfigError([`--evidence: ${path} has none of ${names.join(", ")}`]);
  return undefined;
}

const text = (b: Uint8Array) => Buffer.from(b).toString("utf8");
const isDir = (p: string) => statSync(p).isDirectory();
/** DER as is; PEM (any label) or base64 text decoded. */
function derOrText(b: Uint8Array): Uint8Array {
  const t = Buffer.from(b).toString("latin1").trim();
  const pem = /-----BEGIN [^-]+-----([\s\S]*?)-----END/.exec(t);
  if (pem) return new Uint8Array(Buffer.from(pem[1]!.replace(/\s+/g, ""), "base64"));
  if (/^[A-Za-z0-9+/=\s]+$/.test(t) && t.length % 4 === 0) return new Uint8Array(Buffer.from(t.replace(/\s+/g, ""), "base64"));
  return b;
}
function certs(b: Uint8Array): Uint8Array[] {
  const t = Buffer.from(b).toString("latin1");
  return t.includes("-----BEGIN") ? pemBlocks(t) : [b];
}
function hexFlag(v: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})*$/.test(v)) throw new ConfigError([`--nonce: "${v.slice(0, 20)}" is not hex`]);
  return new Uint8Array(Buffer.from(v, "hex"));
}

function tpmParts(path: string): TpmQuoteParts {
  if (!isDir(path)) return decodeTpmQuoteEvidence(readPart(path));
  const pcrs = JSON.parse(text(part(path, ["pcrs.json"])!)) as { hash?: string; pcrs?: Record<string, string> };
  if (!pcrs.pcrs || typeof pcrs.pcrs !== "object") throw new ConfigError([`--evidence: pcrs.json needs {"hash": "sha256", "pcrs": {"16": "hex"}}`]);
  const akCert = part(path, ["ak.crt", "ak.der", "ak_cert.der"], false);
  return {
    attest: part(path, ["attest.bin"])!, signature: part(path, ["signature.bin"])!, akPublic: part(path, ["ak.pub"])!,
    pcrHash: (pcrs.hash ?? "sha256") as TpmQuoteParts["pcrHash"],
    pcrs: Object.fromEntries(Object.entries(pcrs.pcrs).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, "hex"))])),
    ...(akCert ? { akCert: new Uint8Array(derOrText(akCert)) } : {}),
  };
}

/** Verify evidence of `kind` at PATH; the result carries every check (and the policy's, when given). */
export async function verifyEvidencePath(o: VerifyOptions): Promise<AttestationResult> {
  if (!existsSync(o.evidence)) throw new ConfigError([`--evidence: ${o.evidence} does not exist`]);
  const rootsFile = o.roots ? readPart(o.roots) : undefined;
  const v: VerifierSettings = o.policy?.verifiers ?? {};
  const rootsFor = (fromPolicy?: Uint8Array[]) => (rootsFile ? certs(rootsFile) : fromPolicy ?? []);
  const nonce = o.nonce !== undefined && o.kind !== "azure-imds" ? hexFlag(o.nonce) : undefined;
  const p = o.evidence;
  let result: AttestationResult;
  switch (o.kind) {
    case "tpm2-quote": {
      const akRoots = rootsFor(v["tpm2-quote"]?.akRoots);
      result = await verifyTpmQuoteParts(tpmParts(p), { at: o.at, ...(nonce ? { nonce } : {}), akRoots, allowSha1: v["tpm2-quote"]?.allowSha1 ?? false });
      break;
    }
    case "nitro-enclave":
      result = await verifyNitroParts({ document: derOrText(part(p, ["document.cbor"])!) }, {
        at: o.at, roots: rootsFor(v["nitro-enclave"]?.roots), ...(nonce ? { nonce } : {}), allowDebug: v["nitro-enclave"]?.allowDebug ?? false,
      });
      break;
    case "sev-snp": {
      if (!isDir(p)) throw new ConfigError(["--evidence: sev-snp needs a folder with report.bin and vcek.der (or vcek.pem)"]);
      result = await verifySnpParts({ report: part(p, ["report.bin"])!, vcek: derOrText(part(p, ["vcek.der", "vcek.pem"])!) }, {
        at: o.at, roots: rootsFor(v["sev-snp"]?.roots), ...(nonce ? { reportData: nonce } : {}), allowDebug: v["sev-snp"]?.allowDebug ?? false,
      });
      break;
    }
    case "dcap": {
      const collateral = isDir(p) ? part(p, ["collateral.json"], false) : undefined;
      result = await verifyDcapParts({ quote: part(p, ["quote.dat"])!, ...(collateral ? { collateral: text(collateral) } : {}) }, {
        at: o.at, roots: rootsFor(v.dcap?.roots), ...(nonce ? { reportData: nonce } : {}),
        ...(v.dcap?.tcbStatuses ? { allowedStatuses: v.dcap.tcbStatuses } : {}),
      });
      break;
    }
    case "aws-iid": {
      if (nonce) throw new ConfigError(["--nonce: aws-iid documents carry no nonce"]);
      const roots = rootsFor(v["aws-iid"]?.roots);
      if (!isDir(p)) {
        result = await verifyAwsIidParts({ document: new Uint8Array(), pkcs7: derOrText(readPart(p)) }, { at: o.at, roots });
        break;
      }
      const document = part(p, ["document.json"])!;
      const signature = part(p, ["signature.b64"], false);
      result = signature
        ? await verifyAwsIidParts({ document, signature: text(signature).trim() }, { at: o.at, roots })
        : await verifyAwsIidParts({ document, pkcs7: derOrText(part(p, ["pkcs7.der", "pkcs7.b64", "pkcs7.pem"])!) }, { at: o.at, roots });
      break;
    }
    case "gcp-iit": {
      const jwks = rootsFile ? (JSON.parse(text(rootsFile)) as { keys: Jwk[] }) : (v["gcp-iit"]?.jwks as { keys: Jwk[] } | undefined);
      if (!o.audience) throw new ConfigError(["--audience is required for gcp-iit (the agent's tokens use grey:<hex sha256 of the binding>)"]);
      result = await verifyGcpIitParts({ token: text(part(p, ["token.jwt"])!) }, { at: o.at, ...(jwks ? { jwks } : {}), audience: o.audience });
      break;
    }
    case "azure-imds":
      result = await verifyAzureImdsParts({ pkcs7: derOrText(part(p, ["pkcs7.der", "pkcs7.b64"])!) }, {
        at: o.at, roots: rootsFor(v["azure-imds"]?.roots), ...(o.nonce !== undefined ? { nonce: o.nonce } : {}),
      });
      break;
  }
  return o.policy ? judge(o.policy, o.boundary ?? "same-org", result, o.at).result : result;
}

export function formatResult(r: AttestationResult): string {
  const lines = r.checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.name.padEnd(28)} ${c.detail ?? ""}`.trimEnd());
  for (const [k, val] of Object.entries(r.claims)) lines.push(`     claim ${k} = ${String(val)}`);
  lines.push(r.ok ? `VALID (${r.format})` : `INVALID (${r.format}): ${r.failed}`);
  return lines.join("\n");
}

export const attestVerifyCommand: Command = {
  summary: "verify attestation evidence offline and print every check (exit 0 only when valid)",
  usage: "attest verify --kind KIND --evidence PATH [--roots FILE] [--nonce HEX] [--audience AUD] [--policy FILE [--boundary B]] [--at RFC3339] [--json]",
  options: {
    kind: { type: "string", description: KINDS.join(" | ") },
    evidence: { type: "string", description: "evidence file or folder of parts (see docs for part names)" },
    roots: { type: "string", description: "trust roots: PEM bundle, or JWKS JSON for gcp-iit" },
    nonce: { type: "string", description: "expected nonce / report data (hex); azure-imds: the nonce string" },
    audience: { type: "string", description: "gcp-iit: expected token audience" },
    policy: { type: "string", description: "attestation policy file: its verifier roots and boundary rules apply" },
    boundary: { type: "string", description: `policy boundary to judge against: ${BOUNDARIES.join(" | ")} (default same-org)` },
    at: { type: "string", description: "verification time, RFC 3339 (default now)" },
    json: { type: "boolean", description: "print the result as JSON" },
  },
  async run(v) {
    const problems: string[] = [];
    const kind = v.kind as Kind | undefined;
    if (!kind || !KINDS.includes(kind)) problems.push(`--kind must be one of ${KINDS.join(", ")}`);
    if (typeof v.evidence !== "string") problems.push("--evidence is required");
    const at = v.at ? new Date(v.at as string) : new Date();
    if (v.at && (!/^\d{4}-\d{2}-\d{2}T/.test(v.at as string) || Number.isNaN(at.getTime()))) problems.push(`--at: "${v.at}" is not an RFC 3339 time`);
    const boundary = (v.boundary as Boundary | undefined) ?? "same-org";
    if (!BOUNDARIES.includes(boundary)) problems.push(`--boundary must be one of ${BOUNDARIES.join(", ")}`);
    if (problems.length) throw new ConfigError(problems);
    const policy = v.policy ? loadAttestPolicy(v.policy as string) : undefined;
    const r = await verifyEvidencePath({
      kind: kind!, evidence: v.evidence as string, at,
      ...(v.roots ? { roots: v.roots as string } : {}), ...(v.nonce !== undefined ? { nonce: v.nonce as string } : {}),
      ...(v.audience ? { audience: v.audience as string } : {}), ...(policy ? { policy, boundary } : {}),
    });
    console.log(v.json ? JSON.stringify(r, null, 2) : formatResult(r));
    return r.ok ? 0 : 1;
  },
};
