/**
 * A loopback GCP metadata server + Cloud KMS (REST v1) in one Bun.serve: the metadata token
 * endpoint (needs Metadata-Flavor: Google) issues bearer tokens; the KMS paths check them.
 * Keys live in memory, one AES-256-GCM key per version; a ciphertext carries its version number,
 * IV and tag, with additionalAuthenticatedData as AAD. Errors use Google's
 * `{"error": {"code", "message", "status"}}` shape.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export function cloudKmsMock(init: { keyName: string }) {
  const versions: Buffer[] = [randomBytes(32)];
  let primary = 1;
  const tokens = new Set<string>();
  const err = (code: number, status: string, message: string) => Response.json({ error: { code, message, status } }, { status: code });
  const version = (n: number) => `${init.keyName}/cryptoKeyVersions/${n}`;
  const b = (s: unknown) => (typeof s === "string" && /^[A-Za-z0-9+/]*={0,2}$/.test(s) ? Buffer.from(s, "base64") : undefined);

  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/computeMetadata/v1/instance/service-accounts/default/token") {
        if (req.headers.get("metadata-flavor") !== "Google") return new Response("Missing Metadata-Flavor:Google header", { status: 403 });
        const t = `ya29.${randomBytes(24).toString("base64url")}`;
        tokens.add(t);
        return Response.json({ access_token: t, expires_in: 3599, token_type: "Bearer" });
      }
      if (!url.pathname.startsWith("/v1/")) return err(404, "NOT_FOUND", "unknown path");
      const auth = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
      if (!auth || !tokens.has(auth[1]!)) return err(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
      const path = decodeURIComponent(url.pathname.slice(4));
      const body = (await req.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      if (!body) return err(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
      const aad = body.additionalAuthenticatedData === undefined ? Buffer.alloc(0) : b(body.additionalAuthenticatedData);
      if (!aad) return err(400, "INVALID_ARGUMENT", "Invalid value at 'additional_authenticated_data'");
      switch (path) {
        case `${init.keyName}:encrypt`: {
          const pt = b(body.plaintext);
          if (!pt) return err(400, "INVALID_ARGUMENT", "Invalid value at 'plaintext' (TYPE_BYTES)");
          const iv = randomBytes(12);
          const c = createCipheriv("aes-256-gcm", versions[primary - 1]!, iv).setAAD(aad);
          const v = Buffer.alloc(4);
          v.writeUInt32BE(primary);
          const ct = Buffer.concat([v, iv, c.update(pt), c.final(), c.getAuthTag()]);
          return Response.json({ name: version(primary), ciphertext: ct.toString("base64"), ciphertextCrc32c: "0", protectionLevel: "SOFTWARE" });
        }
        case `${init.keyName}:decrypt`: {
          const ct = b(body.ciphertext);
          const n = ct && ct.length >= 4 + 12 + 16 ? ct.readUInt32BE(0) : 0;
          const key = versions[n - 1];
          if (!ct || !key) return err(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.");
          try {
            const d = createDecipheriv("aes-256-gcm", key, ct.subarray(4, 16)).setAAD(aad);
            d.setAuthTag(ct.subarray(ct.length - 16));
            const pt = Buffer.concat([d.update(ct.subarray(16, ct.length - 16)), d.final()]);
            return Response.json({ plaintext: pt.toString("base64"), usedPrimary: n === primary, protectionLevel: "SOFTWARE" });
          } catch {
            return err(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.");
          }
        }
        case `${init.keyName}/cryptoKeyVersions`:
          versions.push(randomBytes(32));
          return Response.json({ name: version(versions.length), state: "ENABLED", protectionLevel: "SOFTWARE", algorithm: "GOOGLE_SYMMETRIC_ENCRYPTION" });
        case `${init.keyName}:updatePrimaryVersion`: {
          const id = Number(body.cryptoKeyVersionId);
          if (!Number.isInteger(id) || id < 1 || id > versions.length) return err(404, "NOT_FOUND", `CryptoKeyVersion ${String(body.cryptoKeyVersionId)} not found.`);
          primary = id;
          return Response.json({ name: init.keyName, primary: { name: version(id), state: "ENABLED" }, purpose: "ENCRYPT_DECRYPT" });
        }
        default:
          return err(404, "NOT_FOUND", `${path} not found.`);
      }
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}
