/**
 * A loopback Azure IMDS (Metadata: true required, like the real service) serving managed-identity
 * tokens (RS256 JWTs in Entra's v1 shape, signed by a test key published as JWKS) and attested
 * documents (CMS SignedData over the document JSON, signed by a test "metadata.azure.com"
 * certificate chained to a test root). `fixedDocument` serves a given CMS instead (the real vector).
 */
import "../../attest/testing/reflect-polyfill.ts";
import { createHash, createSign, generateKeyPairSync } from "node:crypto";
import { parseCertificate } from "../../attest/x509/cert.ts";

// ---- minimal DER writer (enough for CMS SignedData) ----
function len(n: number): Uint8Array {
  if (n < 0x80) return new Uint8Array([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}
export function tlv(tag: number, ...body: Uint8Array[]): Uint8Array {
  const b = Buffer.concat(body);
  return new Uint8Array(Buffer.concat([new Uint8Array([tag]), len(b.length), b]));
}
export function oid(dotted: string): Uint8Array {
  const p = dotted.split(".").map(Number);
  const out = [40 * p[0]! + p[1]!];
  for (const n of p.slice(2)) {
    const s: number[] = [];
    let v = n;
    do {
      s.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < s.length - 1; i++) s[i]! |= 0x80;
    out.push(...s);
  }
  return tlv(0x06, new Uint8Array(out));
}
const seq = (...b: Uint8Array[]) => tlv(0x30, ...b);
const set = (...b: Uint8Array[]) => tlv(0x31, ...b);
const int = (hex: string) => {
  let b = Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex");
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, new Uint8Array(b));
};
const NULL = new Uint8Array([0x05, 0x00]);

/** CMS SignedData (attached content, no signed attributes, RSA PKCS#1 v1.5 SHA-256, signer cert embedded). */
export function cmsSign(content: Uint8Array, certDer: Uint8Array, keyPem: string): Uint8Array {
  const cert = parseCertificate(certDer);
  const sig = createSign("RSA-SHA256").update(content).sign(keyPem);
  const sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), NULL);
  const signerInfo = seq(int("01"), seq(cert.issuerDer, int(cert.serialHex)), sha256, seq(oid("1.2.840.113549.1.1.1"), NULL), tlv(0x04, new Uint8Array(sig)));
  const signedData = seq(int("01"), set(sha256), seq(oid("1.2.840.113549.1.7.1"), tlv(0xa0, tlv(0x04, content))), tlv(0xa0, certDer), set(signerInfo));
  return seq(oid("1.2.840.113549.1.7.2"), tlv(0xa0, signedData));
}

/** Test chain: root → "metadata.azure.com" leaf, RSA-2048. */
export async function azureTestPki(notBefore = new Date(Date.now() - 86_400_000), notAfter = new Date(Date.now() + 30 * 86_400_000)) {
  const x509 = await import("@peculiar/x509");
  const alg = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
  const rootKeys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const leaf = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const leafPub = await crypto.subtle.importKey("spki", leaf.publicKey.export({ type: "spki", format: "der" }), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["verify"]);
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01", name: "CN=Test Microsoft Root", notBefore, notAfter, keys: rootKeys, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  const leafCert = await x509.X509CertificateGenerator.create({
    serialNumber: "7e57", subject: "CN=metadata.azure.com", issuer: root.subject, notBefore, notAfter, publicKey: leafPub, signingKey: rootKeys.privateKey, signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "metadata.azure.com" }])],
  });
  return { root: new Uint8Array(root.rawData), leaf: new Uint8Array(leafCert.rawData), leafKeyPem: leaf.privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

const azTime = (t: number) => {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} -0000`;
};

export async function azureImdsMock(init: { tenant: string; subscription: string; now?: () => number; fixedDocument?: Uint8Array }) {
  const now = init.now ?? Date.now;
  const pki = await azureTestPki();
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "entra-test-" + createHash("sha256").update(publicKey.export({ type: "spki", format: "der" })).digest("hex").slice(0, 8);
  const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid, kty: "RSA", use: "sig" }] };
  const vmId = "b1310a36-d400-46f6-82cb-6217df846586";
  const calls: string[] = [];
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  function token(resource: string, over: Record<string, unknown> = {}): string {
    const iat = Math.floor(now() / 1000);
    const payload = {
      aud: resource, iss: `https://sts.windows.net/${init.tenant}/`, iat, nbf: iat, exp: iat + 3600, aio: "test", appid: "5c0c4b3e-0000-0000-0000-000000000000",
      appidacr: "2", idp: `https://sts.windows.net/${init.tenant}/`, idtyp: "app", oid: "9f0e2b0a-1111-2222-3333-444455556666", rh: "0.test.", sub: "9f0e2b0a-1111-2222-3333-444455556666",
      tid: init.tenant, uti: "test", ver: "1.0", xms_mirid: `/subscriptions/${init.subscription}/resourcegroups/grey/providers/Microsoft.Compute/virtualMachines/edge-1`, ...over,
    };
    const head = `${b64({ typ: "JWT", alg: "RS256", kid })}.${b64(payload)}`;
    return `${head}.${createSign("RSA-SHA256").update(head).sign(privateKey).toString("base64url")}`;
  }
  function document(nonce: string, subscription = init.subscription): Uint8Array {
    const t = now();
    const doc = { licenseType: "", nonce, plan: { name: "", product: "", publisher: "" }, sku: "", subscriptionId: subscription, timeStamp: { createdOn: azTime(t - 60_000), expiresOn: azTime(t + 6 * 3600_000) }, vmId };
    return cmsSign(new TextEncoder().encode(JSON.stringify(doc)), pki.leaf, pki.leafKeyPem);
  }
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    fetch(req) {
      const u = new URL(req.url);
      calls.push(u.pathname);
      if (u.pathname === "/common/discovery/v2.0/keys") return Response.json(jwks);
      if (req.headers.get("metadata") !== "true") return Response.json({ error: "invalid_request", error_description: "Required metadata header not specified" }, { status: 400 });
      if (req.headers.has("x-forwarded-for")) return Response.json({ error: "invalid_request" }, { status: 400 });
      if (!u.searchParams.get("api-version")) return Response.json({ error: "Bad request. api-version was not specified in the request" }, { status: 400 });
      if (u.pathname === "/metadata/identity/oauth2/token") {
        const resource = u.searchParams.get("resource");
        if (!resource) return Response.json({ error: "invalid_request", error_description: "Required audience parameter not specified" }, { status: 400 });
        const t = Math.floor(now() / 1000);
        return Response.json({ access_token: token(resource), client_id: "5c0c4b3e-0000-0000-0000-000000000000", expires_in: "3599", expires_on: String(t + 3600), ext_expires_in: "3599", not_before: String(t), resource, token_type: "Bearer" });
      }
      if (u.pathname === "/metadata/attested/document") {
        const pkcs7 = init.fixedDocument ?? document(u.searchParams.get("nonce") ?? azTime(now()));
        return Response.json({ encoding: "pkcs7", signature: Buffer.from(pkcs7).toString("base64") });
      }
      if (u.pathname === "/metadata/instance") {
        return Response.json({ compute: { location: "westeurope", zone: "1", vmId, subscriptionId: init.subscription }, network: { interface: [{ ipv4: { ipAddress: [{ privateIpAddress: "10.1.0.4", publicIpAddress: "20.61.0.9" }] } }] } });
      }
      return new Response("", { status: 404 });
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return { url, jwksUrl: `${url}/common/discovery/v2.0/keys`, root: pki.root, calls, token, document, stop: () => server.stop(true) };
}
