/**
 * Cloud instance identity attestors (hub side), one per format:
 *
 * - "aws-iid"   EC2 instance identity document + /signature (RSA) or /pkcs7 | /rsa2048 (CMS),
 *               checked against the pinned AWS regional certificates (attest/iid/aws.ts).
 *               **No nonce**: IMDS signs the same document for the instance's whole life, so it is
 *               NOT bound to this join (claim fresh=false). The hub policy must say
 *               `allowNonFresh: true` for a boundary that accepts it (hub/attest-policy).
 * - "gcp-iit"   GCE instance identity token (JWT RS256, Google JWKS). Binding: the agent requests
 *               the token with audience = "grey:" + hex(sha256(binding message)); `audience` checks it.
 * - "azure-imds" Azure IMDS attested document (CMS, Microsoft chain). Binding: requested with
 *               nonce = hex(sha256(binding message)[0..16]); `nonce` checks it.
 *
 * All three are verify-only here: collection is an HTTP call to the instance metadata service that
 * the cloud connectors own.
 *
 * Evidence (CBOR): aws-iid { document: bytes, signature?: string (base64), pkcs7?: bytes (DER) };
 * gcp-iit { token: string }; azure-imds { pkcs7: bytes (DER) }.
 */
import { z } from "zod";
import { verifyAwsIidPkcs7, verifyAwsIidSignature, type AwsIidClaims } from "../../attest/iid/aws.ts";
import { verifyAzureAttested } from "../../attest/iid/azure.ts";
import { verifyGcpIdentityToken, type Jwk } from "../../attest/iid/gcp.ts";
import type { Verdict } from "../../attest/result.ts";
import { parseCertificate } from "../../attest/x509/cert.ts";
import type { AttestationResult, Attestor, AttestorComponents, EvidenceBinding } from "../sdk/attestor.ts";
import { bindingAudience, bindingAzureNonce, failedResult, verdictResult } from "../sdk/binding.ts";
import { decodeCbor } from "../sdk/codec.ts";
import { evidenceBytesMax } from "../sdk/limits.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Evidence } from "../sdk/wire.ts";

export const AWS_IID_FORMAT = "aws-iid";
export const GCP_IIT_FORMAT = "gcp-iit";
export const AZURE_IMDS_FORMAT = "azure-imds";

const AwsEvidence = z.object({ document: z.instanceof(Uint8Array), signature: z.string().max(4096).optional(), pkcs7: z.instanceof(Uint8Array).optional() })
  .refine((e) => (e.signature === undefined) !== (e.pkcs7 === undefined), "exactly one of signature, pkcs7");
const GcpEvidence = z.object({ token: z.string().max(16_384) });
const AzureEvidence = z.object({ pkcs7: z.instanceof(Uint8Array) });

function decode(data: Uint8Array): unknown {
  try {
    return decodeCbor(data, evidenceBytesMax);
  } catch {
    return undefined;
  }
}

function meta(name: string, format: string) {
  return { name, kind: "attestor" as const, apiVersion: PLUGIN_API_VERSION, format };
}

// ---- AWS ----

export async function verifyAwsIidParts(
  parts: { document: Uint8Array; signature?: string; pkcs7?: Uint8Array },
  opts: { at: Date; roots: readonly Uint8Array[] },
): Promise<AttestationResult> {
  if (opts.roots.length === 0) return failedResult(AWS_IID_FORMAT, "roots", "no pinned AWS instance identity certificates configured");
  let v: Verdict<AwsIidClaims> | undefined;
  if (parts.pkcs7) {
    v = await verifyAwsIidPkcs7({ pkcs7: parts.pkcs7, signers: [...opts.roots], at: opts.at, document: parts.document });
  } else {
    // /signature names no signer: try each pinned regional certificate
    for (const cert of opts.roots) {
      v = await verifyAwsIidSignature({ document: parts.document, signature: parts.signature ?? "", signer: { cert }, at: opts.at });
      if (v.ok) break;
    }
  }
  const binding = { name: "binding", ok: true, detail: "aws-iid has no nonce: not bound to this exchange (fresh=false; policy must allow non-fresh identity)" };
  return verdictResult(AWS_IID_FORMAT, v!, (cl) => {
    const d = cl.document;
    return {
      platform: "aws-ec2", fresh: false, "instance.id": d.instanceId, "account.id": d.accountId, region: d.region,
      ...(d.availabilityZone ? { zone: d.availabilityZone } : {}), ...(d.imageId ? { "image.id": d.imageId } : {}),
      ...(d.instanceType ? { "instance.type": d.instanceType } : {}), ...(d.pendingTime ? { "pending.time": d.pendingTime.toISOString() } : {}),
    };
  }, [binding]);
}

export function awsIidAttestor(init: { roots?: readonly Uint8Array[] } = {}) {
  return (_c: AttestorComponents): Attestor => ({
    ...meta("attestor-aws-iid", AWS_IID_FORMAT),
    async verify(evidence: Evidence, _binding: EvidenceBinding, now: Date) {
      const r = AwsEvidence.safeParse(decode(evidence.data));
      if (!r.success) return failedResult(AWS_IID_FORMAT, "structure", "evidence is not { document, signature | pkcs7 }");
      return verifyAwsIidParts(r.data, { at: now, roots: init.roots ?? [] });
    },
  });
}

// ---- GCP ----

export async function verifyGcpIitParts(parts: { token: string }, opts: { at: Date; jwks?: { keys: Jwk[] }; audience: string; projects?: readonly string[] }): Promise<AttestationResult> {
  if (!opts.jwks?.keys.length) return failedResult(GCP_IIT_FORMAT, "roots", "no Google JWKS configured");
  const v = await verifyGcpIdentityToken({ token: parts.token.trim(), jwks: opts.jwks, at: opts.at, audience: opts.audience, ...(opts.projects ? { projects: [...opts.projects] } : {}) });
  return verdictResult(GCP_IIT_FORMAT, v, (cl) => {
    const g = cl.gce ?? {};
    const claims: AttestationResult["claims"] = { platform: "gce", fresh: true, subject: String(cl.payload.sub ?? "") };
    if (g.project_id) claims["project.id"] = g.project_id;
    if (g.zone) claims.zone = g.zone;
    if (g.instance_id) claims["instance.id"] = g.instance_id;
    if (g.instance_name) claims["instance.name"] = g.instance_name;
    if (typeof cl.payload.iat === "number") claims.issued = new Date(cl.payload.iat * 1000).toISOString();
    return claims;
  });
}

export function gcpIitAttestor(init: { jwks?: { keys: Jwk[] }; projects?: readonly string[] } = {}) {
  return (_c: AttestorComponents): Attestor => ({
    ...meta("attestor-gcp-iit", GCP_IIT_FORMAT),
    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date) {
      const r = GcpEvidence.safeParse(decode(evidence.data));
      if (!r.success) return failedResult(GCP_IIT_FORMAT, "structure", "evidence is not { token: string }");
      return verifyGcpIitParts(r.data, { at: now, ...(init.jwks ? { jwks: init.jwks } : {}), audience: bindingAudience(binding), ...(init.projects ? { projects: init.projects } : {}) });
    },
  });
}

// ---- Azure ----

/** Self-signed certificates are roots, the others intermediates. */
export function splitRoots(certs: readonly Uint8Array[]): { roots: Uint8Array[]; intermediates: Uint8Array[] } {
  const roots: Uint8Array[] = [];
  const intermediates: Uint8Array[] = [];
  for (const der of certs) {
    const c = parseCertificate(der);
    (Buffer.from(c.subjectDer).equals(Buffer.from(c.issuerDer)) ? roots : intermediates).push(der);
  }
  return { roots, intermediates };
}

export async function verifyAzureImdsParts(parts: { pkcs7: Uint8Array }, opts: { at: Date; roots: readonly Uint8Array[]; nonce?: string }): Promise<AttestationResult> {
  let split: ReturnType<typeof splitRoots>;
  try {
    split = splitRoots(opts.roots);
  } catch (err) {
    return failedResult(AZURE_IMDS_FORMAT, "roots", `configured certificates: ${(err as Error).message}`);
  }
  if (split.roots.length === 0) return failedResult(AZURE_IMDS_FORMAT, "roots", "no Microsoft root configured");
  const v = await verifyAzureAttested({ pkcs7: parts.pkcs7, intermediates: split.intermediates, roots: split.roots, at: opts.at, ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}) });
  return verdictResult(AZURE_IMDS_FORMAT, v, (cl) => {
    const d = cl.document;
    return {
      platform: "azure-vm", fresh: opts.nonce !== undefined, "vm.id": d.vmId, created: d.createdOn.toISOString(), expires: d.expiresOn.toISOString(),
      ...(d.subscriptionId ? { "subscription.id": d.subscriptionId } : {}), ...(d.sku ? { sku: d.sku } : {}),
    };
  });
}

export function azureImdsAttestor(init: { roots?: readonly Uint8Array[] } = {}) {
  return (_c: AttestorComponents): Attestor => ({
    ...meta("attestor-azure-imds", AZURE_IMDS_FORMAT),
    async verify(evidence: Evidence, binding: EvidenceBinding, now: Date) {
      const r = AzureEvidence.safeParse(decode(evidence.data));
      if (!r.success) return failedResult(AZURE_IMDS_FORMAT, "structure", "evidence is not { pkcs7: bytes }");
      return verifyAzureImdsParts(r.data, { at: now, roots: init.roots ?? [], nonce: bindingAzureNonce(binding) });
    },
  });
}
