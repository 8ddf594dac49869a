/**
 * A connector presented as join evidence: one attestor per cloud format whose collector AND checker
 * is the platform's connector, so a cloud identity is proven and checked on one path.
 *
 *   agent  collect(binding)  → connector.authenticate(binding) (bound to the hub nonce, peer id and
 *                              CSR key), sent as Evidence { format, data: CBOR { credential: {type, data} } };
 *                              AWS with `identity: "iid"`: connector.evidence() (the instance identity
 *                              document, not bound to the join: fresh=false).
 *   hub    verify(...)       → connector.verifyCredential(credential, binding, now): signatures, binding,
 *                              time AND the connector's allow-lists (accounts/roles/regions, projects,
 *                              tenants/subscriptions, enterprise roots/CRLs). Raw platform evidence
 *                              (an AWS IID document, a GCE token) is checked as the connector's matching
 *                              credential type, so older agents keep working under the allow-lists.
 *
 * The result carries the evidence format (so the attestation policy per trust boundary judges it
 * like any other), the connector's checks after a `credential` check, and its principal as a claim.
 * The catalog validates this attestor's output like any plugin's.
 */
import { IID_CREDENTIAL } from "../connector-aws/constants.ts";
import { MSI_CREDENTIAL } from "../connector-azure/constants.ts";
import { TOKEN_CREDENTIAL } from "../connector-gcp/constants.ts";
import { X509_CREDENTIAL } from "../connector-onprem/index.ts";
import type { AttestationResult, Attestor, AttestorComponents } from "../sdk/attestor.ts";
import { failedResult } from "../sdk/binding.ts";
import { decodeCbor, encodeCbor } from "../sdk/codec.ts";
import type { Connector, Credential } from "../sdk/connector.ts";
import { evidenceBytesMax } from "../sdk/limits.ts";
import { PLUGIN_API_VERSION } from "../sdk/plugin.ts";
import type { Platform } from "./config.ts";

export const ONPREM_X509_FORMAT = "onprem-x509";

/** Join-evidence formats a connector collects and checks, and the credential types each accepts. */
export const CONNECTOR_FORMATS = {
  "aws-iid": { platform: "aws", credentials: ["aws-sts-get-caller-identity", IID_CREDENTIAL] },
  "gcp-iit": { platform: "gcp", credentials: [TOKEN_CREDENTIAL] },
  "azure-imds": { platform: "azure", credentials: [MSI_CREDENTIAL] },
  [ONPREM_X509_FORMAT]: { platform: "onprem", credentials: [X509_CREDENTIAL] },
} as const satisfies Record<string, { platform: Platform; credentials: readonly string[] }>;
export type ConnectorFormat = keyof typeof CONNECTOR_FORMATS;

export const formatOfPlatform = (p: Platform): ConnectorFormat =>
  (Object.keys(CONNECTOR_FORMATS) as ConnectorFormat[]).find((f) => CONNECTOR_FORMATS[f].platform === p)!;

/** Raw platform evidence (what connector.evidence() or an older agent sends) as the connector's credential. */
function rawCredential(format: ConnectorFormat, data: Uint8Array, body: Record<string, unknown>): Credential | undefined {
  if (format === "aws-iid" && body.document instanceof Uint8Array) return { type: IID_CREDENTIAL, data };
  if (format === "gcp-iit" && typeof body.token === "string") return { type: TOKEN_CREDENTIAL, data: new TextEncoder().encode(body.token.trim()) };
  return undefined;
}

export interface ConnectorAttestorInit {
  format: ConnectorFormat;
  connector: Connector;
  /** Agent: what to present. "credential" (default): authenticate(), bound to the join; "evidence": evidence(). */
  present?: "credential" | "evidence";
}

export function connectorAttestor(init: ConnectorAttestorInit) {
  const { format, connector } = init;
  const accepted: readonly string[] = CONNECTOR_FORMATS[format].credentials;
  return (_components: AttestorComponents): Attestor => ({
    name: `connector-attest-${format}`, kind: "attestor", apiVersion: PLUGIN_API_VERSION, format,

    async collect(binding, options = {}) {
      if (init.present === "evidence") {
        if (!connector.evidence) throw new Error(`${connector.name} produces no evidence`);
        return connector.evidence(binding, options);
      }
      if (!connector.authenticate) throw new Error(`${connector.name} cannot authenticate`);
      const cred = await connector.authenticate(binding, options);
      return { format, data: encodeCbor({ credential: { type: cred.type, data: cred.data } }) };
    },

    async verify(evidence, binding, now): Promise<AttestationResult> {
      let body: Record<string, unknown>;
      try {
        body = decodeCbor(evidence.data, evidenceBytesMax) as Record<string, unknown>;
        if (body === null || typeof body !== "object") throw new Error("not a map");
      } catch (err) {
        return failedResult(format, "structure", `evidence is not CBOR: ${(err as Error).message}`);
      }
      const c = body.credential as { type?: unknown; data?: unknown } | undefined;
      const cred: Credential | undefined = c && typeof c.type === "string" && c.data instanceof Uint8Array ? { type: c.type, data: c.data } : rawCredential(format, evidence.data, body);
      if (!cred) return failedResult(format, "structure", `expected { credential: { type, data } } (${accepted.join(" | ")})`);
      if (!accepted.includes(cred.type) || !connector.credentialTypes.includes(cred.type)) {
        return failedResult(format, "credential", `${cred.type.slice(0, 64)} is not a ${format} credential (accepted: ${accepted.join(", ")})`);
      }
      let r;
      try {
        r = await connector.verifyCredential!(cred, binding, now);
      } catch (err) {
        return failedResult(format, "verifier", `${connector.name} threw: ${(err as Error).message}`);
      }
      const checks = [{ name: "credential", ok: true, detail: `${cred.type} checked by ${connector.name}` }, ...(r.checks ?? [])];
      if (!r.ok) return { format, ok: false, checks, failed: r.failed ?? "verifier", claims: {} };
      return { format, ok: true, checks, claims: { ...r.claims, credential: cred.type, ...(r.principal ? { principal: r.principal } : {}) } };
    },
  });
}
