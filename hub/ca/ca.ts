/**
 * The loaded federation CA: issues member certificates from CSRs. The hub
 * decides every name in a member certificate; the CSR only proves possession
 * of the key.
 */
import { readFileSync } from "node:fs";
import { PURPOSE, readKeyFile } from "../../plugins/host/keystore.ts";
import type { Kms } from "../../plugins/sdk/kms.ts";
import type { X509Certificate } from "@peculiar/x509";
import { GreyError, MalformedInputError } from "../../plugins/sdk/errors.ts";
import { caFingerprint, memberUri, peerUri } from "../../plugins/sdk/identity.ts";
import { memberCertTtlMsMin } from "../../plugins/sdk/limits.ts";
import { memberCertTtlMsMax } from "./constants.ts";
import { csrPublicKey, verifyCsr } from "./csr.ts";
import { CaMissingError } from "./errors.ts";
import { certValidity, createLeafCert, dnValue } from "./issue.ts";
import { importPkcs8Pem } from "./keys.ts";
import { caPaths } from "./layout.ts";
import { x509 } from "./x509.ts";

export type MemberCertRequest = {
  csrDer: Uint8Array;
  peerId: string;
  org: string;
  region: string;
  cluster: string;
  ttlMs: number;
  now: Date;
};

export type IssuedCert = {
  certDer: Uint8Array;
  /** Lowercase hex. */
  serial: string;
  notAfter: Date;
};

export interface Ca {
  readonly certDer: Uint8Array;
  readonly certPem: string;
  /** Lowercase hex SHA-256 of certDer. */
  readonly fingerprint: string;
  /** The organisation that owns the federation (O= of the CA). */
  readonly org: string;
  readonly notAfter: Date;
  /** Verify the CSR (P-256, self-signed) and issue a member certificate (clientAuth + serverAuth). */
  issueMemberCert(req: MemberCertRequest): Promise<IssuedCert>;
  /** SPKI DER of the CSR's key (parse only; for evidence binding). */
  csrPublicKey(csrDer: Uint8Array): Uint8Array;
}

/** Build a Ca from its PEM certificate and PKCS#8 PEM key. */
export async function caFromPem(certPem: string, keyPem: string): Promise<Ca> {
  let cert: X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch (err) {
    throw new MalformedInputError("CA certificate is not a PEM X.509 certificate", { cause: err });
  }
  const { privateKey, publicKey } = await importPkcs8Pem(keyPem);
  const certSpki = Buffer.from(cert.publicKey.rawData);
  if (!certSpki.equals(Buffer.from(await crypto.subtle.exportKey("spki", publicKey)))) {
    throw new MalformedInputError("CA key does not match the CA certificate");
  }
  const certDer = new Uint8Array(cert.rawData);
  const org = cert.subjectName.getField("O")[0] ?? "";
  const signer = { cert, privateKey };

  return {
    certDer,
    certPem: cert.toString("pem") + "\n",
    fingerprint: caFingerprint(certDer),
    org,
    notAfter: cert.notAfter,
    csrPublicKey,
    async issueMemberCert(req) {
      if (!(req.ttlMs >= memberCertTtlMsMin && req.ttlMs <= memberCertTtlMsMax)) {
        throw new MalformedInputError(`member certificate ttl ${req.ttlMs} ms outside [${memberCertTtlMsMin}, ${memberCertTtlMsMax}]`);
      }
      const names = [
        { type: "url" as const, value: memberUri(req.org, req.region, req.cluster) },
        { type: "url" as const, value: peerUri(req.peerId) },
      ];
      const spki = await verifyCsr(req.csrDer);
      const validity = certValidity(req.now, req.ttlMs, cert.notAfter.getTime());
      const issued = await createLeafCert({
        ca: signer,
        publicKey: spki,
        subject: `CN=${dnValue(req.cluster)}, OU=${dnValue(req.region)}, O=${dnValue(req.org)}`,
        names,
        purposes: ["client", "server"],
        ...validity,
      });
      return { certDer: new Uint8Array(issued.rawData), serial: issued.serialNumber.toLowerCase(), notAfter: issued.notAfter };
    },
  };
}

/**
 * Load the CA of the hub data dir `dir` (DIR/ca/ca.pem + DIR/ca/ca.key). A ca.key sealed by a KMS
 * (host/keystore.ts) is opened through the KMS named in DIR/hub.json (or `opts.kms`).
 */
export async function loadCa(dir: string, opts: { kms?: Kms } = {}): Promise<Ca> {
  return caFromPem(...(await readCaFiles(dir, opts)));
}

/** [certPem, keyPem] of a hub data dir; CaMissingError when a file is missing. */
export async function readCaFiles(dir: string, opts: { kms?: Kms } = {}): Promise<[string, string]> {
  const p = caPaths(dir);
  let certPem: string;
  let keyBytes: Uint8Array;
  try {
    certPem = readFileSync(p.caCert, "utf8");
    keyBytes = await readKeyFile(p.caKey, { dir, purpose: PURPOSE.caKey, ...(opts.kms ? { kms: opts.kms } : {}) });
  } catch (err) {
    if (err instanceof GreyError) throw err; // KMS unavailable/refused, bad envelope: keep the typed error
    throw new CaMissingError(dir, (err as NodeJS.ErrnoException).code ?? "unreadable", { cause: err });
  }
  return [certPem, new TextDecoder().decode(keyBytes)];
}
