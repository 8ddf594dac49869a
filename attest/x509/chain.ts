/**
 * Certificate path verification to configured trust roots at an injected time: the one helper every
 * evidence format uses. Checks, in order: signature (each link), anchor (path ends at a configured
 * root), ca (issuers are CAs allowed to sign certificates), validity (every certificate at `at`),
 * revocation (each certificate against its issuer's CRL, where CRLs are given).
 */
import { bytesEqual } from "../bytes.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { keyUsageCertSign, keyUsageCrlSign, parseCertificate, parseCrl, type Certificate, type Crl } from "./cert.ts";
import { verifySignature } from "./sig.ts";

export const chainDepthMax = 8;

export type CertInput = Certificate | Uint8Array;

export type ChainOptions = {
  leaf: CertInput;
  /** Untrusted certificates that may complete the path. */
  intermediates?: CertInput[];
  /** Trust anchors. */
  roots: CertInput[];
  at: Date;
  /** CRLs (DER or parsed) to check each certificate against. */
  crls?: (Crl | Uint8Array)[];
  /** Fail unless every non-anchor certificate in the path is covered by a CRL. */
  requireCrls?: boolean;
};

export type ChainClaims = { path: Certificate[] };

const asCert = (c: CertInput): Certificate => (c instanceof Uint8Array ? parseCertificate(c) : c);
const asCrl = (c: Crl | Uint8Array): Crl => (c instanceof Uint8Array ? parseCrl(c) : c);

export function verifyChain(opts: ChainOptions): Promise<Verdict<ChainClaims>> {
  return runChecks("structure", (c) => checkChain(c, opts));
}

/** Same checks, recorded into an existing check list (for format verifiers). */
export function checkChain(c: Checks, opts: ChainOptions): ChainClaims {
  const leaf = asCert(opts.leaf);
  const roots = opts.roots.map(asCert);
  const pool = (opts.intermediates ?? []).map(asCert);
  const isRoot = (x: Certificate) => roots.some((r) => bytesEqual(r.der, x.der));
  const path: Certificate[] = [leaf];
  let cur = leaf;
  while (!isRoot(cur)) {
    if (path.length > chainDepthMax) c.fail("anchor", `no trusted root within ${chainDepthMax} certificates`);
    const named = [...roots, ...pool].filter((x) => bytesEqual(x.subjectDer, cur.issuerDer) && !path.includes(x));
    if (named.length === 0) c.fail("anchor", `no trusted issuer for "${cur.subject}" (issuer "${cur.issuer}")`);
    const issuer = named.find((x) => verifySignature(x.spki, cur.scheme, cur.tbs, cur.signature));
    if (!issuer) c.fail("signature", `signature of "${cur.subject}" does not verify with issuer "${cur.issuer}"`);
    path.push(issuer);
    cur = issuer;
  }
  c.pass("signature", `${path.length - 1} link(s) verified`);
  c.pass("anchor", `anchored at "${cur.subject}"`);
  const intermediates = path.slice(1, -1);
  for (const issuer of intermediates) {
    const okCa = issuer.isCa && (issuer.keyUsage === undefined || (issuer.keyUsage & keyUsageCertSign) !== 0);
    if (!okCa) c.fail("ca", `"${issuer.subject}" is not a CA allowed to sign certificates`);
  }
  c.pass("ca", `${intermediates.length} intermediate CA(s) allowed to sign certificates`);
  const t = opts.at.getTime();
  for (const x of path) {
    const ok = x.notBefore.getTime() <= t && t <= x.notAfter.getTime();
    if (!ok) {
      c.fail("validity", `"${x.subject}" valid ${x.notBefore.toISOString()} … ${x.notAfter.toISOString()}, not at ${opts.at.toISOString()}`);
    }
  }
  c.pass("validity", `all ${path.length} certificates valid at ${opts.at.toISOString()}`);
  if (opts.crls || opts.requireCrls) checkRevocation(c, path, (opts.crls ?? []).map(asCrl), opts.at, opts.requireCrls ?? false);
  return { path };
}

function checkRevocation(c: Checks, path: Certificate[], crls: Crl[], at: Date, required: boolean): void {
  let covered = 0;
  for (let i = 0; i + 1 < path.length; i++) {
    const cert = path[i]!;
    const issuer = path[i + 1]!;
    const crl = crls.find((l) => bytesEqual(l.issuerDer, issuer.subjectDer) && verifySignature(issuer.spki, l.scheme, l.tbs, l.signature));
    if (!crl) {
      const any = crls.some((l) => bytesEqual(l.issuerDer, issuer.subjectDer));
      if (any) c.fail("revocation", `CRL from "${issuer.subject}" has an invalid signature`);
      if (required) c.fail("revocation", `no CRL for certificates issued by "${issuer.subject}"`);
      continue;
    }
    if (issuer.keyUsage !== undefined && (issuer.keyUsage & keyUsageCrlSign) === 0) {
      c.fail("revocation", `"${issuer.subject}" may not sign CRLs`);
    }
    const t = at.getTime();
    if (crl.thisUpdate.getTime() > t || (crl.nextUpdate && crl.nextUpdate.getTime() < t)) {
      c.fail("revocation", `CRL from "${issuer.subject}" not current at ${at.toISOString()} (${crl.thisUpdate.toISOString()} … ${crl.nextUpdate?.toISOString() ?? "-"})`);
    }
    if (crl.revokedSerials.has(cert.serialHex)) c.fail("revocation", `"${cert.subject}" (serial ${cert.serialHex}) is revoked`);
    covered++;
  }
  c.pass("revocation", `${covered} certificate(s) checked against CRLs`);
}
