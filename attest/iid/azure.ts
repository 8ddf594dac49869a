/**
 * Azure IMDS attested data (/metadata/attested/document): CMS SignedData, RSA-SHA256, signer
 * certificate embedded. Checks: structure, signature (CMS), cert.* (signer → configured
 * intermediates → Microsoft root at `at`), signer-name (certificate for metadata.azure.com or a
 * subdomain), document (JSON), freshness (timeStamp createdOn ≤ at ≤ expiresOn), nonce, policy
 * (subscription / vmId allowlists).
 */
import { malformed } from "../bytes.ts";
import { children, parseDer } from "../der.ts";
import { runChecks, type Checks, type Verdict } from "../result.ts";
import { extension, type Certificate } from "../x509/cert.ts";
import { checkChain, type CertInput } from "../x509/chain.ts";
import { parseSignedData, signerCertificate, verifySigner } from "../x509/cms.ts";

export const azureSignerNames = ["metadata.azure.com"];

export type AzureAttestedInput = {
  pkcs7: Uint8Array;
  intermediates: CertInput[];
  roots: CertInput[];
  at: Date;
  nonce?: string;
  subscriptionIds?: string[];
  vmIds?: string[];
};

export type AzureDocument = {
  nonce?: string;
  vmId: string;
  subscriptionId?: string;
  sku?: string;
  createdOn: Date;
  expiresOn: Date;
  raw: Record<string, unknown>;
};

export type AzureClaims = { document: AzureDocument; signer: Certificate };

/** "MM/DD/YY HH:MM:SS -0000" */
function azureTime(s: unknown, what: string): Date {
  const m = typeof s === "string" ? /^(\d{2})\/(\d{2})\/(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$/.exec(s) : null;
  if (!m) malformed(`Azure document: bad ${what}`);
  const offset = (m[7] === "-" ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9])) * 60_000;
  const t = Date.UTC(2000 + Number(m[3]), Number(m[1]) - 1, Number(m[2]), Number(m[4]), Number(m[5]), Number(m[6])) - offset;
  return new Date(t);
}

export function parseAzureDocument(content: Uint8Array): AzureDocument {
  let j: unknown;
  try {
    j = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(content));
  } catch {
    return malformed("Azure document is not JSON");
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) malformed("Azure document is not an object");
  const o = j as Record<string, unknown>;
  const ts = o.timeStamp as Record<string, unknown> | undefined;
  if (typeof o.vmId !== "string" || !ts || typeof ts !== "object") malformed("Azure document: vmId/timeStamp missing");
  const doc: AzureDocument = { vmId: o.vmId, createdOn: azureTime(ts.createdOn, "createdOn"), expiresOn: azureTime(ts.expiresOn, "expiresOn"), raw: o };
  if (typeof o.nonce === "string") doc.nonce = o.nonce;
  if (typeof o.subscriptionId === "string") doc.subscriptionId = o.subscriptionId;
  if (typeof o.sku === "string") doc.sku = o.sku;
  return doc;
}

function dnsNames(cert: Certificate): string[] {
  const names: string[] = [];
  const cn = /(?:^|, )CN=([^,]+)/.exec(cert.subject);
  if (cn) names.push(cn[1]!);
  const san = extension(cert, "2.5.29.17");
  if (san) for (const g of children(parseDer(san.value, "subjectAltName"))) if (g.tag === 0x82) names.push(Buffer.from(g.body).toString("latin1"));
  return names;
}

function checkSignerName(c: Checks, cert: Certificate): void {
  const names = dnsNames(cert);
  const ok = names.some((n) => azureSignerNames.some((a) => n === a || n.endsWith(`.${a}`)));
  c.require("signer-name", ok, `signer names ${names.join(", ") || "(none)"}`);
}

export function verifyAzureAttested(input: AzureAttestedInput): Promise<Verdict<AzureClaims>> {
  return runChecks("structure", (c: Checks) => {
    const sd = parseSignedData(input.pkcs7);
    const signer = sd.signers[0]!;
    const cert = signerCertificate(signer, sd.certificates);
    if (!cert) malformed("Azure CMS: signer certificate not embedded");
    c.pass("structure", `CMS SignedData, ${sd.content.length} B content${sd.trailingBytes ? `, ${sd.trailingBytes} trailing bytes ignored` : ""}`);
    const v = verifySigner(sd, signer, cert);
    c.require("signature", v.ok, v.detail);
    checkChain(c.sub("cert"), { leaf: cert, intermediates: [...input.intermediates, ...sd.certificates], roots: input.roots, at: input.at });
    checkSignerName(c, cert);
    const document = parseAzureDocument(sd.content);
    c.pass("document", `vmId ${document.vmId}`);
    const t = input.at.getTime();
    c.require("freshness", document.createdOn.getTime() <= t && t <= document.expiresOn.getTime(), `document valid ${document.createdOn.toISOString()} … ${document.expiresOn.toISOString()}`);
    if (input.nonce !== undefined) c.require("nonce", document.nonce === input.nonce, `nonce ${String(document.nonce)}`);
    else c.pass("nonce", "not requested");
    if (input.subscriptionIds) c.require("policy", document.subscriptionId !== undefined && input.subscriptionIds.includes(document.subscriptionId), `subscription ${String(document.subscriptionId)}`);
    if (input.vmIds) c.require("policy", input.vmIds.includes(document.vmId), `vmId ${document.vmId}`);
    if (!input.subscriptionIds && !input.vmIds) c.pass("policy", "no subscription/vmId policy configured");
    return { document, signer: cert };
  });
}
