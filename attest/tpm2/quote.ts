/**
 * TPM2_Quote verification. Checks, in order:
 *   structure    TPMS_ATTEST / TPMT_SIGNATURE / AK public parse
 *   magic        TPM_GENERATED_VALUE (the TPM produced this structure itself)
 *   type         TPM_ST_ATTEST_QUOTE
 *   ak.*         AK trust: certificate chain to configured roots + cert key == AK (ak.binding),
 *                or a caller-provided key (ak.provided); ak.attributes (fixedTPM|restricted|sign)
 *                when the AK's TPMT_PUBLIC is given
 *   hash-policy  signing hash allowed (SHA-1 only when policy.allowSha1)
 *   signature    TPMT_SIGNATURE over TPMS_ATTEST with the AK (RSASSA, RSA-PSS, ECDSA)
 *   nonce        extraData == expected nonce (empty when none was requested)
 *   pcr-selection reported PCR values cover exactly the quoted selection
 *   pcr-digest   pcrDigest == H_sig(selected values in selection order)
 *   pcr-policy   every PCR named in policy has one of its allowed values
 */
import { createPublicKey } from "node:crypto";
import { bytesEqual, malformed, toHex } from "../bytes.ts";
import { encodeTlv } from "../der.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { parseCertificate, type Certificate } from "../x509/cert.ts";
import { checkChain, type CertInput } from "../x509/chain.ts";
import { hashBytes, hashLength, verifySignature, type Hash, type SigScheme } from "../x509/sig.ts";
import {
  TPM_ALG, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, parseTpm2bPublic, parseTpmsAttest, parseTpmtPublic,
  parseTpmtSignature, tpmPublicToSpki, type TpmsAttest, type TpmtPublic, type TpmtSignature,
} from "./structures.ts";

export type PcrBank = { hash: Hash; values: Record<number, Uint8Array> };

export type AkTrust =
  | { kind: "key"; spki?: Uint8Array; tpmtPublic?: Uint8Array; tpm2bPublic?: Uint8Array }
  | {
      kind: "cert";
      cert: CertInput;
      intermediates?: CertInput[];
      roots: CertInput[];
      crls?: Uint8Array[];
      /** The AK as the TPM reported it (TPMT_PUBLIC); when given it must equal the certified key. */
      tpmtPublic?: Uint8Array;
    };

export type PcrPolicy = {
  /** Allow SHA-1 signatures and SHA-1 banks (default false). */
  allowSha1?: boolean;
  /** Per PCR bank and index: allowed hex values (lowercase). Listed PCRs must be quoted. */
  allowed?: { hash: Hash; pcrs: Record<number, string[]> };
};

export type QuoteInput = {
  attest: Uint8Array;
  signature: Uint8Array;
  ak: AkTrust;
  pcrs: PcrBank[];
  /** Expected extraData; pass an empty array when no nonce was requested. */
  nonce: Uint8Array;
  at: Date;
  policy?: PcrPolicy;
};

export type QuoteClaims = {
  attest: TpmsAttest;
  signatureHash: Hash;
  akSpki: Uint8Array;
  akCert?: Certificate;
  pcrs: PcrBank[];
};

export function verifyTpmQuote(input: QuoteInput): Promise<Verdict<QuoteClaims>> {
  return runChecks("structure", (c) => checkTpmQuote(c, input));
}

export function checkTpmQuote(c: Checks, input: QuoteInput): QuoteClaims {
  const attest = parseTpmsAttest(input.attest);
  const sig = parseTpmtSignature(input.signature);
  const akKey = akPublic(input.ak);
  const akTpm = akTpmPublic(input.ak);
  c.pass("structure", `TPMS_ATTEST ${input.attest.length} B, ${sigName(sig)}`);
  c.require("magic", attest.magic === TPM_GENERATED_VALUE, `magic 0x${attest.magic.toString(16)}`);
  c.require("type", attest.type === TPM_ST_ATTEST_QUOTE && attest.quote !== undefined, `type 0x${attest.type.toString(16)}`);
  const quote = attest.quote!;

  let akSpki = akKey;
  let akCert: Certificate | undefined;
  if (input.ak.kind === "cert") {
    const ak = input.ak;
    akCert = ak.cert instanceof Uint8Array ? parseCertificate(ak.cert) : ak.cert;
    const chainOpts = { leaf: akCert, roots: ak.roots, at: input.at, ...(ak.intermediates ? { intermediates: ak.intermediates } : {}), ...(ak.crls ? { crls: ak.crls } : {}) };
    checkChain(c.sub("ak"), chainOpts);
    akSpki = akCert.spki;
    if (akTpm) c.require("ak.binding", sameKey(tpmPublicToSpki(akTpm), akCert.spki), "AK certificate key equals the reported AK public");
  } else {
    c.pass("ak.provided", "AK public key supplied by the caller");
  }
  checkAkAttributes(c, akTpm);
  if (!akSpki) return malformed("AK: no public key given");

  const allowSha1 = input.policy?.allowSha1 ?? false;
  c.require("hash-policy", allowSha1 || sig.hash !== "sha1", `signature hash ${sig.hash}${sig.hash === "sha1" && !allowSha1 ? " (SHA-1 not allowed)" : ""}`);
  c.require("signature", verifySignature(akSpki, schemeOf(sig), input.attest, sigBytes(sig)), `${sigName(sig)} over TPMS_ATTEST`);

  c.require("nonce", bytesEqual(attest.extraData, input.nonce), `extraData ${toHex(attest.extraData) || "(empty)"}`);

  const parts: Uint8Array[] = [];
  const summary: string[] = [];
  for (const sel of quote.pcrSelect) {
    if (!allowSha1 && sel.hash === "sha1" && sel.pcrs.length > 0) c.fail("pcr-selection", "SHA-1 PCR bank not allowed");
    const bank = input.pcrs.find((b) => b.hash === sel.hash);
    for (const p of sel.pcrs) {
      const v = bank?.values[p];
      if (!v) c.fail("pcr-selection", `no reported ${sel.hash} value for PCR ${p}`);
      if (v.length !== hashLength(sel.hash)) c.fail("pcr-selection", `${sel.hash} PCR ${p} has ${v.length} bytes`);
      parts.push(v);
    }
    summary.push(`${sel.hash}:${sel.pcrs.join(",")}`);
  }
  c.pass("pcr-selection", summary.join(" ") || "no PCRs selected");
  const digest = hashBytes(sig.hash, Buffer.concat(parts));
  c.require("pcr-digest", bytesEqual(digest, quote.pcrDigest), `pcrDigest ${toHex(quote.pcrDigest)}, recomputed ${toHex(digest)} (${sig.hash})`);

  const allowed = input.policy?.allowed;
  if (allowed) {
    const sel = quote.pcrSelect.find((s) => s.hash === allowed.hash);
    const bank = input.pcrs.find((b) => b.hash === allowed.hash);
    for (const [idx, values] of Object.entries(allowed.pcrs)) {
      const p = Number(idx);
      const v = sel?.pcrs.includes(p) ? bank?.values[p] : undefined;
      if (!v) c.fail("pcr-policy", `${allowed.hash} PCR ${p} is not in the quote`);
      c.require("pcr-policy", values.map((x) => x.toLowerCase()).includes(toHex(v)), `${allowed.hash} PCR ${p} = ${toHex(v)}`);
    }
  } else {
    c.pass("pcr-policy", "no PCR policy configured");
  }
  const claims: QuoteClaims = { attest, signatureHash: sig.hash, akSpki, pcrs: input.pcrs };
  if (akCert) claims.akCert = akCert;
  return claims;
}

/** fixedTPM | restricted | sign: a TPM-resident key that only signs TPM-generated structures. */
export const akRequiredAttributes = 0x00000002 | 0x00010000 | 0x00040000;

function checkAkAttributes(c: Checks, pub: TpmtPublic | undefined): void {
  if (!pub) {
    c.pass("ak.attributes", "not checked (AK given as a bare public key)");
    return;
  }
  const ok = (pub.objectAttributes & akRequiredAttributes) === akRequiredAttributes;
  c.require("ak.attributes", ok, `objectAttributes 0x${pub.objectAttributes.toString(16).padStart(8, "0")} ${ok ? "include" : "lack"} fixedTPM|restricted|sign`);
}

function akTpmPublic(ak: AkTrust): TpmtPublic | undefined {
  if (ak.kind === "key") {
    if (ak.spki) return undefined;
    if (ak.tpmtPublic) return parseTpmtPublic(ak.tpmtPublic);
    if (ak.tpm2bPublic) return parseTpm2bPublic(ak.tpm2bPublic);
    return undefined;
  }
  return ak.tpmtPublic ? parseTpmtPublic(ak.tpmtPublic) : undefined;
}

function akPublic(ak: AkTrust): Uint8Array | undefined {
  if (ak.kind !== "key") return undefined;
  if (ak.spki) {
    try {
      createPublicKey({ key: Buffer.from(ak.spki), format: "der", type: "spki" });
    } catch {
      malformed("AK: SubjectPublicKeyInfo does not parse");
    }
    return ak.spki;
  }
  if (ak.tpmtPublic) return tpmPublicToSpki(parseTpmtPublic(ak.tpmtPublic));
  if (ak.tpm2bPublic) return tpmPublicToSpki(parseTpm2bPublic(ak.tpm2bPublic));
  return undefined;
}

function sigName(sig: TpmtSignature): string {
  const alg = sig.sigAlg === TPM_ALG.ECDSA ? "ECDSA" : sig.sigAlg === TPM_ALG.RSAPSS ? "RSA-PSS" : "RSASSA";
  return `${alg}/${sig.hash}`;
}

function schemeOf(sig: TpmtSignature): SigScheme {
  if (sig.sigAlg === TPM_ALG.ECDSA) return { kind: "ecdsa", hash: sig.hash, encoding: "der" };
  if (sig.sigAlg === TPM_ALG.RSAPSS) return { kind: "rsa-pss", hash: sig.hash, saltLength: hashLength(sig.hash) };
  return { kind: "rsa-pkcs1", hash: sig.hash };
}

const derInt = (b: Uint8Array): Uint8Array => {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return encodeTlv(0x02, v.length && v[0]! & 0x80 ? Buffer.concat([new Uint8Array([0]), v]) : v.length ? v : new Uint8Array([0]));
};

function sigBytes(sig: TpmtSignature): Uint8Array {
  if (sig.sigAlg === TPM_ALG.ECDSA) return encodeTlv(0x30, Buffer.concat([derInt(sig.r), derInt(sig.s)]));
  return sig.sig;
}

/** Compares two public keys regardless of SPKI encoding details. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  try {
    const ka = createPublicKey({ key: Buffer.from(a), format: "der", type: "spki" }).export({ format: "jwk" });
    const kb = createPublicKey({ key: Buffer.from(b), format: "der", type: "spki" }).export({ format: "jwk" });
    return JSON.stringify(ka) === JSON.stringify(kb);
  } catch {
    return false;
  }
}
