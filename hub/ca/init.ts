/**
 * Creating a federation in a hub data dir (DIR/ca, DIR/tls, DIR/admin), or
 * joining a second hub to an existing one by copying its CA.
 *
 *   DIR/ca/ca.key       PKCS#8 PEM, 0600      DIR/ca/ca.pem    self-signed CA, 10 y, pathLen 0
 *   DIR/tls/hub.key     PKCS#8 PEM, 0600      DIR/tls/hub.pem  grey://ORG/_hub/NAME + libp2p:peer:ID,
 *                                                              localhost, 127.0.0.1, ::1; server+client, 1 y
 *   DIR/admin/key.pem   PKCS#8 PEM, 0600      DIR/admin/cert.pem grey://ORG/_admin/NAME; client, 1 y
 *   DIR/admin/ca.pem    copy of the CA certificate (for curl --cacert)
 */
import { chmodSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { sha256 } from "@noble/hashes/sha2.js";
import type { X509Certificate } from "@peculiar/x509";
import { writeFileAtomic, writeSecretFile } from "../../plugins/sdk/fs.ts";
import { PURPOSE, writeKeyFile } from "../../plugins/host/keystore.ts";
import type { Kms } from "../../plugins/sdk/kms.ts";
import { readCaFiles } from "./ca.ts";
import { adminUri, caFingerprint, hubUri, peerUri } from "../../plugins/sdk/identity.ts";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";
import { adminCertTtlMs, caCertTtlMs, hubCertTtlMs } from "./constants.ts";
import { CaMissingError, FederationExistsError } from "./errors.ts";
import { certValidity, createCaCert, createLeafCert, dnValue } from "./issue.ts";
import { exportPkcs8Pem, generateKeyPair, importPkcs8Pem } from "./keys.ts";
import { caPaths } from "./layout.ts";
import { x509 } from "./x509.ts";

export type InitOptions = {
  org: string;
  /** libp2p peer id of this hub (bound into its certificate). */
  hubPeerId: string;
  /** Default: "hub-" + 8 hex digits derived from the peer id. */
  hubName?: string;
  /** Default: "admin". */
  adminName?: string;
  now: Date;
  /** Seal DIR/ca/ca.key with this KMS (an envelope, host/keystore.ts). Default: DIR/hub.json's kms, else plaintext. */
  kms?: Kms;
};

export type InitFromOptions = Omit<InitOptions, "org">;

export type InitResult = { fingerprint: string; hubName: string; org: string };

export function defaultHubName(peerId: string): string {
  return `hub-${Buffer.from(sha256(new TextEncoder().encode(peerId))).toString("hex").slice(0, 8)}`;
}

/** Create a new federation CA, this hub's TLS identity and an admin client certificate in `dir`. */
export async function initFederation(dir: string, opts: InitOptions): Promise<InitResult> {
  const p = caPaths(dir);
  if (existsSync(p.caDir)) throw new FederationExistsError(dir);
  hubUri(opts.org, opts.hubName ?? defaultHubName(opts.hubPeerId)); // validate names before any key work
  const keys = await generateKeyPair();
  const cert = await createCaCert(keys, opts.org, certValidity(opts.now, caCertTtlMs));
  const caKeyPem = await exportPkcs8Pem(keys.privateKey);
  return writeFederation(dir, { cert, privateKey: keys.privateKey }, caKeyPem, opts);
}

/** Set up `dir` as another hub of the federation whose CA lives in `sourceDir`. */
export async function initFederationFrom(dir: string, sourceDir: string, opts: InitFromOptions): Promise<InitResult> {
  const p = caPaths(dir);
  if (existsSync(p.caDir)) throw new FederationExistsError(dir);
  const [certPem, keyPem] = await readCaFiles(sourceDir);
  const cert = new x509.X509Certificate(certPem);
  const { privateKey } = await importPkcs8Pem(keyPem);
  const org = cert.subjectName.getField("O")[0];
  if (!org) throw new MalformedInputError(`CA certificate in ${sourceDir} names no organisation`);
  return writeFederation(dir, { cert, privateKey }, keyPem, { ...opts, org });
}

async function writeFederation(
  dir: string,
  ca: { cert: X509Certificate; privateKey: CryptoKey },
  caKeyPem: string,
  opts: InitOptions,
): Promise<InitResult> {
  const p = caPaths(dir);
  const hubName = opts.hubName ?? defaultHubName(opts.hubPeerId);
  const adminName = opts.adminName ?? "admin";
  const caCap = ca.cert.notAfter.getTime();

  const hubKeys = await generateKeyPair();
  const hubCert = await createLeafCert({
    ca,
    publicKey: hubKeys.publicKey,
    subject: `CN=${dnValue(hubName)}, O=${dnValue(opts.org)}`,
    names: [
      { type: "url", value: hubUri(opts.org, hubName) },
      { type: "url", value: peerUri(opts.hubPeerId) },
      { type: "dns", value: "localhost" },
      { type: "ip", value: "127.0.0.1" },
      { type: "ip", value: "::1" },
    ],
    purposes: ["server", "client"],
    ...certValidity(opts.now, hubCertTtlMs, caCap),
  });
  const adminKeys = await generateKeyPair();
  const adminCert = await createLeafCert({
    ca,
    publicKey: adminKeys.publicKey,
    subject: `CN=${dnValue(adminName)}, O=${dnValue(opts.org)}`,
    names: [{ type: "url", value: adminUri(opts.org, adminName) }],
    purposes: ["client"],
    ...certValidity(opts.now, adminCertTtlMs, caCap),
  });

  // Claim DIR/ca atomically: a concurrent init loses here instead of overwriting.
  mkdirSync(dir, { recursive: true });
  try {
    mkdirSync(p.caDir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new FederationExistsError(dir);
    throw err;
  }
  for (const d of [p.tlsDir, p.adminDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
  }
  const caPem = pem(ca.cert);
  await writeKeyFile(p.caKey, caKeyPem, { dir, purpose: PURPOSE.caKey, ...(opts.kms ? { kms: opts.kms } : {}) });
  writeFileAtomic(p.caCert, caPem);
  writeSecretFile(p.hubKey, await exportPkcs8Pem(hubKeys.privateKey));
  writeFileAtomic(p.hubCert, pem(hubCert));
  writeSecretFile(p.adminKey, await exportPkcs8Pem(adminKeys.privateKey));
  writeFileAtomic(p.adminCert, pem(adminCert));
  writeFileAtomic(p.adminCa, caPem);
  return { fingerprint: caFingerprint(new Uint8Array(ca.cert.rawData)), hubName, org: opts.org };
}

function pem(cert: X509Certificate): string {
  return cert.toString("pem") + "\n";
}


/** This hub's TLS identity (PEM), as written by init: for the API server and the join protocol. */
export function loadHubTls(dir: string): { caCertPem: string; certPem: string; keyPem: string } {
  const p = caPaths(dir);
  try {
    return {
      caCertPem: readFileSync(p.caCert, "utf8"),
      certPem: readFileSync(p.hubCert, "utf8"),
      keyPem: readFileSync(p.hubKey, "utf8"),
    };
  } catch (err) {
    throw new CaMissingError(dir, (err as NodeJS.ErrnoException).code ?? "unreadable", { cause: err });
  }
}
