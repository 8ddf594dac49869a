/**
 * AWS Nitro attestation document verification (Nitro Enclaves and NitroTPM). Checks, in order:
 *   structure   COSE_Sign1 + payload fields per AWS "Verifying the root of trust"
 *   alg         protected header alg == ES384
 *   cert.*      certificate → cabundle → configured AWS Nitro root, valid at `at`
 *   signature   ES384 over the COSE Sig_structure with the leaf certificate key
 *   freshness   timestamp not in the future, and not older than maxAgeMs (when given)
 *   nonce / user-data / public-key   equal the expected values (when given)
 *   debug       PCR0–2 all zero (debug enclave) rejected unless policy.allowDebug
 *   pcr-policy  PCR values allowed by policy (when given)
 */
import { bytesEqual, isAllZero, malformed, toHex } from "../bytes.ts";
import { decodeCbor, type CborValue } from "../cose/cbor.ts";
import { parseCoseSign1, verifyCoseSign1 } from "../cose/sign1.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { parseCertificate, type Certificate } from "../x509/cert.ts";
import { checkChain, type CertInput } from "../x509/chain.ts";

export const cabundleMax = 8;
export const nitroClockSkewMs = 60_000;

export type NitroDocument = {
  moduleId: string;
  digest: string;
  timestamp: Date;
  /** Enclave PCRs (`pcrs`) or NitroTPM PCRs (`nitrotpm_pcrs`), index → value. */
  pcrs: Map<number, Uint8Array>;
  pcrsField: "pcrs" | "nitrotpm_pcrs";
  certificate: Uint8Array;
  cabundle: Uint8Array[];
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
};

export type NitroPolicy = {
  /** Accept debug-mode enclaves (PCR0, PCR1, PCR2 all zero). Default false. */
  allowDebug?: boolean;
  /** Allowed hex values per PCR index. */
  pcrs?: Record<number, string[]>;
  /** Reject documents whose timestamp is older than this at verification time. */
  maxAgeMs?: number;
  /** Tolerated clock difference for timestamps in the future. Default nitroClockSkewMs. */
  clockSkewMs?: number;
};

export type NitroInput = {
  document: Uint8Array;
  roots: CertInput[];
  at: Date;
  nonce?: Uint8Array;
  userData?: Uint8Array;
  publicKey?: Uint8Array;
  policy?: NitroPolicy;
};

export type NitroClaims = { document: NitroDocument; leaf: Certificate; debug: boolean };

const optBytes = (v: CborValue, f: string): Uint8Array | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!(v instanceof Uint8Array)) malformed(`Nitro document: ${f} is not a byte string`);
  if (v.length > 1024) malformed(`Nitro document: ${f} longer than 1024 bytes`);
  return v;
};

export function parseNitroPayload(payload: Uint8Array): NitroDocument {
  const m = decodeCbor(payload, "Nitro document payload");
  if (!(m instanceof Map)) malformed("Nitro document: payload is not a map");
  const moduleId = m.get("module_id");
  const digest = m.get("digest");
  const timestamp = m.get("timestamp");
  const certificate = m.get("certificate");
  const cabundle = m.get("cabundle");
  if (typeof moduleId !== "string" || moduleId.length === 0) malformed("Nitro document: module_id missing");
  if (digest !== "SHA384") malformed("Nitro document: digest is not SHA384");
  if (typeof timestamp !== "number" || timestamp <= 0) malformed("Nitro document: bad timestamp");
  if (!(certificate instanceof Uint8Array) || certificate.length === 0) malformed("Nitro document: certificate missing");
  if (!Array.isArray(cabundle) || cabundle.length === 0 || cabundle.length > cabundleMax) malformed("Nitro document: bad cabundle");
  for (const c of cabundle) if (!(c instanceof Uint8Array) || c.length === 0) malformed("Nitro document: cabundle entry is not a byte string");
  const field = m.has("nitrotpm_pcrs") ? "nitrotpm_pcrs" : "pcrs";
  const rawPcrs = m.get(field);
  if (!(rawPcrs instanceof Map) || rawPcrs.size === 0 || rawPcrs.size > 32) malformed(`Nitro document: bad ${field}`);
  const pcrs = new Map<number, Uint8Array>();
  for (const [k, v] of rawPcrs) {
    if (typeof k !== "number" || !Number.isInteger(k) || k < 0 || k >= 32) malformed("Nitro document: bad PCR index");
    if (!(v instanceof Uint8Array) || ![32, 48, 64].includes(v.length)) malformed(`Nitro document: PCR ${k} has a bad length`);
    pcrs.set(k, v);
  }
  const doc: NitroDocument = {
    moduleId, digest, timestamp: new Date(timestamp), pcrs, pcrsField: field, certificate,
    cabundle: cabundle as Uint8Array[],
  };
  const pk = optBytes(m.get("public_key"), "public_key");
  const ud = optBytes(m.get("user_data"), "user_data");
  const nonce = optBytes(m.get("nonce"), "nonce");
  if (pk) doc.publicKey = pk;
  if (ud) doc.userData = ud;
  if (nonce) doc.nonce = nonce;
  return doc;
}

export function verifyNitroDocument(input: NitroInput): Promise<Verdict<NitroClaims>> {
  return runChecks("structure", (c) => checkNitroDocument(c, input));
}

export function checkNitroDocument(c: Checks, input: NitroInput): NitroClaims {
  const cose = parseCoseSign1(input.document);
  const doc = parseNitroPayload(cose.payload);
  const leaf = parseCertificate(doc.certificate);
  const bundle = doc.cabundle.map(parseCertificate);
  c.pass("structure", `module ${doc.moduleId}, ${doc.pcrs.size} ${doc.pcrsField}`);
  c.require("alg", cose.alg === -35, `protected alg ${String(cose.alg)} (ES384 = -35)`);
  checkChain(c.sub("cert"), { leaf, intermediates: bundle, roots: input.roots, at: input.at });
  c.require("signature", verifyCoseSign1(cose, leaf.spki), "ES384 over Sig_structure with the leaf certificate key");

  const age = input.at.getTime() - doc.timestamp.getTime();
  c.require("freshness", age >= -(input.policy?.clockSkewMs ?? nitroClockSkewMs), `timestamp ${doc.timestamp.toISOString()}`);
  const maxAge = input.policy?.maxAgeMs;
  if (maxAge !== undefined) c.require("freshness", age <= maxAge, `document age ${age} ms (max ${maxAge})`);

  bind(c, "nonce", input.nonce, doc.nonce);
  bind(c, "user-data", input.userData, doc.userData);
  bind(c, "public-key", input.publicKey, doc.publicKey);

  const debug = doc.pcrsField === "pcrs" && [0, 1, 2].every((i) => { const v = doc.pcrs.get(i); return v !== undefined && isAllZero(v); });
  c.require("debug", !debug || (input.policy?.allowDebug ?? false), debug ? "PCR0–2 all zero: debug-mode enclave" : "production enclave (PCR0–2 non-zero)");

  const allowed = input.policy?.pcrs;
  if (allowed) {
    for (const [idx, values] of Object.entries(allowed)) {
      const v = doc.pcrs.get(Number(idx));
      c.require("pcr-policy", v !== undefined && values.map((x) => x.toLowerCase()).includes(toHex(v)), `PCR ${idx} = ${v ? toHex(v) : "(absent)"}`);
    }
  } else {
    c.pass("pcr-policy", "no PCR policy configured");
  }
  return { document: doc, leaf, debug };
}

function bind(c: Checks, name: string, expected: Uint8Array | undefined, got: Uint8Array | undefined): void {
  if (expected === undefined) {
    c.pass(name, "not requested");
    return;
  }
  c.require(name, got !== undefined && bytesEqual(expected, got), `document ${name} ${got ? toHex(got).slice(0, 64) : "(absent)"}`);
}
