/**
 * A loopback Azure IMDS (managed identity token, needs `Metadata: true`) + Key Vault keys API
 * (api-version 7.4) in one Bun.serve. The vault URL is the server's URL. Each key version is an
 * RSA-2048 key; wrapkey/unwrapkey do RSA-OAEP-256 with base64url values; rotate adds a version.
 * Errors use Key Vault's `{"error": {"code", "message"}}` shape.
 */
import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from "node:crypto";

export function keyVaultMock(init: { keyName: string }) {
  const versions = new Map<string, { publicKey: KeyObject; privateKey: KeyObject }>();
  let latest = "";
  const addVersion = () => {
    latest = randomBytes(16).toString("hex");
    versions.set(latest, generateKeyPairSync("rsa", { modulusLength: 2048 }));
  };
  addVersion();
  const tokens = new Set<string>();
  const err = (status: number, code: string, message: string) => Response.json({ error: { code, message } }, { status });
  const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };
  let base = "";

  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (url.pathname === "/metadata/identity/oauth2/token") {
        if (req.headers.get("metadata") !== "true") return Response.json({ error: "invalid_request", error_description: "Required metadata header not specified" }, { status: 400 });
        if (url.searchParams.get("resource") !== "https://vault.azure.net") return Response.json({ error: "invalid_resource", error_description: "bad resource" }, { status: 400 });
        const t = `eyJ0eXAi.${randomBytes(24).toString("base64url")}`;
        tokens.add(t);
        return Response.json({ access_token: t, expires_in: "86399", expires_on: String(Math.floor(Date.now() / 1000) + 86399), resource: "https://vault.azure.net", token_type: "Bearer" });
      }
      const auth = /^Bearer (.+)$/.exec(req.headers.get("authorization") ?? "");
      if (!auth || !tokens.has(auth[1]!)) return err(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
      if (url.searchParams.get("api-version") !== "7.4") return err(400, "BadParameter", "The specified version of the API is not supported.");
      const m = /^\/keys\/([0-9a-zA-Z-]+)(?:\/([0-9a-zA-Z-]+))?\/(wrapkey|unwrapkey|rotate)$/.exec(url.pathname);
      if (!m || m[1] !== init.keyName) return err(404, "KeyNotFound", `A key with (name/id) ${m?.[1] ?? url.pathname} was not found in this key vault.`);
      const op = m[3]!;
      if (op === "rotate") {
        addVersion();
        return Response.json({ key: { kid: `${base}/keys/${init.keyName}/${latest}`, kty: "RSA", key_ops: ["wrapKey", "unwrapKey"] }, attributes: { enabled: true } });
      }
      const ver = m[2] ?? latest;
      const k = versions.get(ver);
      if (!k) return err(404, "KeyNotFound", `A key with (name/id) ${init.keyName}/${ver} was not found in this key vault.`);
      const body = (await req.json().catch(() => undefined)) as { alg?: string; value?: string } | undefined;
      if (body?.alg !== "RSA-OAEP-256" || typeof body.value !== "string" || !/^[A-Za-z0-9_-]*$/.test(body.value)) return err(400, "BadParameter", "Property 'alg' or 'value' is invalid.");
      const value = Buffer.from(body.value, "base64url");
      const kid = `${base}/keys/${init.keyName}/${ver}`;
      try {
        const out = op === "wrapkey" ? publicEncrypt({ key: k.publicKey, ...oaep }, value) : privateDecrypt({ key: k.privateKey, ...oaep }, value);
        return Response.json({ kid, value: out.toString("base64url") });
      } catch {
        return err(400, "BadParameter", op === "wrapkey" ? "Value too long for the key." : "Error while unwrapping: the ciphertext is invalid.");
      }
    },
  });
  base = `http://127.0.0.1:${server.port}`;
  return { url: base, stop: () => server.stop(true) };
}
