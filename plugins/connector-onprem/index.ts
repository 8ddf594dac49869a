/**
 * On-premises connector: X.509 client certificates from an enterprise CA.
 *
 *   authentication  agent: its certificate chain plus a signature, with the certificate's key, over
 *                   "grey-onprem-possession/v1\0" || binding message (nonce, peer id, CSR key).
 *                   The key is a PEM private key, lives in an HSM (PKCS#11; the signature is made
 *                   inside the token) or in a TPM 2.0 (ECC P-256, TPM2_Sign; tpm-key.ts). hub: chain to the configured enterprise roots at `now`,
 *                   CRL revocation (required when `requireCrls`), signature by the leaf key over
 *                   this join's binding, optional subject pattern.
 *   network         the host's non-internal interface addresses.
 *   evidence        none (attestors provide it on-prem: TPM, SEV-SNP, ...).
 *   key exchange    the possession signature binds the CSR key; `keyHolder` exposes the HSM key.
 *   health          agent: certificate validity and the key (HSM reachable, public key matches the
 *                   certificate); hub: roots configured, every CRL current.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign } from "node:crypto";
import { networkInterfaces } from "node:os";
import { parseCertificate, parseCrl } from "../../attest/x509/cert.ts";
import { verifyChain } from "../../attest/x509/chain.ts";
import { verifySignature } from "../../attest/x509/sig.ts";
import { bindingMessage } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import {
  ConnectorUnavailableError, failedIdentity, healthOf, identityFrom,
  type Check, type Connector, type ConnectorComponents, type EvidenceBinding, type HealthReport, type KeyHolder,
} from "../sdk/connector.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import { withSession, type Pkcs11Config, type Pkcs11Session } from "./pkcs11.ts";
import { tpmPublicKey, tpmSignEcdsa, type TpmKeyConfig } from "./tpm-key.ts";

export const X509_CREDENTIAL = "x509-possession";
const DOMAIN = new TextEncoder().encode("grey-onprem-possession/v1\0");
/** Certificates accepted in one presented chain. */
export const presentedChainMax = 8;

export type OnpremKey =
  | { kind: "software"; pkcs8Pem: string }
  | { kind: "pkcs11"; pkcs11: Pkcs11Config; label: string }
  | { kind: "tpm"; tpm: TpmKeyConfig };

export interface OnpremConnectorInit {
  /** Agent: its certificate chain, leaf first (DER). */
  chain?: readonly Uint8Array[];
  /** Agent: the leaf certificate's key. */
  key?: OnpremKey;
  /** Hub: enterprise root certificates (DER). */
  roots?: readonly Uint8Array[];
  /** Hub: CRLs (DER) of the enterprise CAs. */
  crls?: readonly Uint8Array[];
  /** Hub: refuse certificates no CRL covers. */
  requireCrls?: boolean;
  /** Hub: the leaf subject must match this regular expression. */
  subjectPattern?: string;
}

type Alg = "ecdsa-sha256-raw" | "ecdsa-sha256-der" | "rsa-pkcs1-sha256";

function possessionMessage(b: EvidenceBinding): Uint8Array {
  return new Uint8Array(Buffer.concat([DOMAIN, bindingMessage(b)]));
}

export function onpremConnector(init: OnpremConnectorInit = {}) {
  return (components: ConnectorComponents): Connector => {
    const key = init.key;
    const holder: (KeyHolder & { alg: Alg; store: "software" | "pkcs11" | "tpm" }) | undefined = !key ? undefined : key.kind === "tpm"
      ? {
        alg: "ecdsa-sha256-raw", store: "tpm",
        publicKey: () => tpmKey(key, (o) => tpmPublicKey(key.tpm, o)),
        sign: (data, options = {}) => tpmKey(key, (o) => tpmSignEcdsa(key.tpm, data, o), options),
      }
      : key.kind === "pkcs11"
      ? {
        store: "pkcs11",
        alg: "ecdsa-sha256-raw",
        publicKey: () => hsm(key, (s) => s.ecPublicKey(key.label)),
        sign: (data) => hsm(key, (s) => s.signEcdsa(key.label, data)),
      }
      : (() => {
        const pk = createPrivateKey(key.pkcs8Pem);
        const alg: Alg = pk.asymmetricKeyType === "ec" ? "ecdsa-sha256-der" : "rsa-pkcs1-sha256";
        return {
          alg, store: "software" as const,
          publicKey: async () => new Uint8Array(createPublicKey(pk).export({ type: "spki", format: "der" })),
          sign: async (data: Uint8Array) => new Uint8Array(nodeSign("sha256", data, pk)),
        };
      })();

    async function tpmKey<T>(k: Extract<OnpremKey, { kind: "tpm" }>, fn: (o: { signal?: AbortSignal }) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
      try {
        return await fn(options.signal ? { signal: options.signal } : {});
      } catch (err) {
        throw new ConnectorUnavailableError("onprem", `tpm:${k.tpm.tpm}${k.tpm.handle !== undefined ? `/0x${k.tpm.handle.toString(16)}` : ""}`, (err as Error).message, { cause: err });
      }
    }

    async function hsm<T>(k: Extract<OnpremKey, { kind: "pkcs11" }>, fn: (s: Pkcs11Session) => T): Promise<T> {
      try {
        return await withSession(k.pkcs11, fn);
      } catch (err) {
        throw new ConnectorUnavailableError("onprem", `pkcs11:${k.pkcs11.tokenLabel}/${k.label}`, (err as Error).message, { cause: err });
      }
    }

    return {
      name: "connector-onprem", kind: "connector", apiVersion: PLUGIN_API_VERSION, platform: "onprem",
      credentialTypes: [X509_CREDENTIAL],
      ...(holder ? { keyHolder: holder } : {}),

      async authenticate(binding, options = {}) {
        if (!holder || !init.chain?.length) throw new ConnectorUnavailableError("onprem", "config", "no client certificate and key configured");
        options.signal?.throwIfAborted();
        const signature = await holder.sign(possessionMessage(binding), options);
        return { type: X509_CREDENTIAL, data: encodeCbor({ chain: [...init.chain], alg: holder.alg, signature, ...(holder.store === "tpm" ? { store: "tpm" } : {}) }) };
      },

      async verifyCredential(credential, binding, now) {
        if (credential.type !== X509_CREDENTIAL) return failedIdentity(String(credential.type), "type", "not an X.509 possession credential");
        let body: { chain?: unknown; alg?: unknown; signature?: unknown; store?: unknown };
        try {
          body = decodeCbor(credential.data, 48 * 1024) as typeof body;
        } catch (err) {
          return failedIdentity(X509_CREDENTIAL, "structure", (err as Error).message);
        }
        const chain = body?.chain;
        if (!Array.isArray(chain) || chain.length === 0 || chain.length > presentedChainMax || !chain.every((c) => c instanceof Uint8Array) || !(body.signature instanceof Uint8Array)) {
          return failedIdentity(X509_CREDENTIAL, "structure", "expected { chain: [DER...], alg, signature }");
        }
        if ((init.roots ?? []).length === 0) return failedIdentity(X509_CREDENTIAL, "roots", "no enterprise roots configured");
        const checks: Check[] = [{ name: "structure", ok: true, detail: `${chain.length} certificate(s)` }];
        const v = await verifyChain({ leaf: chain[0] as Uint8Array, intermediates: chain.slice(1) as Uint8Array[], roots: [...init.roots!], at: now, ...(init.crls?.length ? { crls: [...init.crls] } : {}), ...(init.requireCrls ? { requireCrls: true } : {}) });
        for (const c of v.checks) checks.push({ ...c, name: `chain.${c.name}`.slice(0, 64) });
        if (!v.ok) return identityFrom(X509_CREDENTIAL, checks, {});
        const leaf = v.claims.path[0]!;
        const alg = body.alg as Alg;
        const scheme = alg === "rsa-pkcs1-sha256" ? { kind: "rsa-pkcs1" as const, hash: "sha256" as const } : { kind: "ecdsa" as const, hash: "sha256" as const, encoding: alg === "ecdsa-sha256-raw" ? "raw" as const : "der" as const };
        const ok = ["ecdsa-sha256-raw", "ecdsa-sha256-der", "rsa-pkcs1-sha256"].includes(alg) && verifySignature(leaf.spki, scheme, possessionMessage(binding), body.signature);
        checks.push({ name: "possession", ok, detail: `${String(alg)} by the certificate key over this join's binding` });
        if (init.subjectPattern) checks.push({ name: "subject", ok: new RegExp(init.subjectPattern).test(leaf.subject), detail: leaf.subject });
        return identityFrom(X509_CREDENTIAL, checks, { platform: "onprem", fresh: true, subject: leaf.subject, issuer: leaf.issuer, serial: leaf.serialHex, "key.hsm": alg === "ecdsa-sha256-raw" && body.store !== "tpm", ...(body.store === "tpm" ? { "key.tpm": true } : {}) }, leaf.subject);
      },

      async network() {
        const addrs = Object.values(networkInterfaces()).flat().filter((i) => i && !i.internal).map((i) => i!.address);
        return { platform: "onprem", privateAddresses: addrs, publicAddresses: [] };
      },

      async health(): Promise<HealthReport> {
        const checks: HealthReport["checks"] = [];
        const now = components.clock.now();
        if (init.chain?.length) {
          const leaf = parseCertificate(init.chain[0]!);
          checks.push({ name: "certificate", ok: leaf.notBefore.getTime() <= now && now < leaf.notAfter.getTime(), detail: `valid until ${leaf.notAfter.toISOString()}` });
          if (holder) {
            const started = performance.now();
            try {
              const pub = await holder.publicKey();
              checks.push({ name: "key", ok: Buffer.from(pub).equals(Buffer.from(leaf.spki)), latencyMs: Math.round(performance.now() - started), detail: "public key matches the certificate" });
            } catch (err) {
              checks.push({ name: "key", ok: false, detail: (err as Error).message.slice(0, 300) });
            }
          }
        }
        if (init.roots) {
          checks.push({ name: "roots", ok: init.roots.length > 0, detail: `${init.roots.length} root(s)` });
          for (const [i, der] of (init.crls ?? []).entries()) {
            const crl = parseCrl(der);
            checks.push({ name: `crl.${i}`, ok: !crl.nextUpdate || now < crl.nextUpdate.getTime(), detail: `next update ${crl.nextUpdate?.toISOString() ?? "(none)"}` });
          }
        }
        if (checks.length === 0) checks.push({ name: "config", ok: false, detail: "neither client certificate nor roots configured" });
        return healthOf(checks);
      },
    };
  };
}
