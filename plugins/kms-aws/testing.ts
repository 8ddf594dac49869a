/**
 * A loopback AWS KMS speaking the JSON 1.1 protocol (X-Amz-Target TrentService.*), verifying
 * SigV4 (service kms) with the caller's secret. Keys live in memory; a ciphertext blob carries its
 * key id, IV and AES-256-GCM output with the encryption context as AAD. Errors use the real
 * `{"__type": ..., "message": ...}` shape.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import { contextAad } from "../sdk/kms.ts";
import { parseAmzDate, parseAuthorization, signParts } from "../connector-aws/sigv4.ts";

export function kmsMock(init: { region: string; account: string; accessKeyId: string; secretAccessKey: string; alias: string }) {
  const keys = new Map<string, Buffer>();
  const aliases = new Map<string, string>();
  const arn = (id: string) => `arn:aws:kms:${init.region}:${init.account}:key/${id}`;
  const create = () => {
    const id = randomUUID();
    keys.set(id, randomBytes(32));
    return id;
  };
  aliases.set(init.alias, create());
  const err = (status: number, type: string, message: string) => Response.json({ __type: type, message }, { status, headers: { "content-type": "application/x-amz-json-1.1" } });
  const resolve = (keyId: unknown): string | undefined => {
    const k = String(keyId ?? "");
    if (aliases.has(k)) return aliases.get(k);
    const id = k.startsWith("arn:") ? k.split("/").pop()! : k;
    return keys.has(id) ? id : undefined;
  };
  function seal(id: string, plaintext: Buffer, ctx: Record<string, string> | undefined): string {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", keys.get(id)!, iv).setAAD(contextAad(ctx));
    const ct = Buffer.concat([c.update(plaintext), c.final()]);
    const idBytes = Buffer.from(id);
    return Buffer.concat([Buffer.from([idBytes.length]), idBytes, iv, ct, c.getAuthTag()]).toString("base64");
  }
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    async fetch(req) {
      const body = await req.text();
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      const auth = parseAuthorization(headers.authorization);
      if (!auth || auth.accessKeyId !== init.accessKeyId) return err(400, "UnrecognizedClientException", "The security token included in the request is invalid.");
      const signed: Record<string, string> = {};
      for (const n of auth.signedHeaders) signed[n] = headers[n] ?? "";
      const expect = signParts({ method: "POST", url: `http://${headers.host}/`, body, region: auth.region, service: auth.service, now: parseAmzDate(headers["x-amz-date"]) }, { accessKeyId: auth.accessKeyId, secretAccessKey: init.secretAccessKey }, signed);
      if (expect.signature !== auth.signature || auth.service !== "kms" || !auth.signedHeaders.includes("x-amz-target")) return err(400, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
      if (headers["content-type"] !== "application/x-amz-json-1.1") return err(400, "SerializationException", "bad content type");
      const j = JSON.parse(body) as Record<string, unknown>;
      const ctx = j.EncryptionContext as Record<string, string> | undefined;
      switch (headers["x-amz-target"]) {
        case "TrentService.GenerateDataKey": {
          const id = resolve(j.KeyId);
          if (!id) return err(400, "NotFoundException", `Key '${String(j.KeyId)}' does not exist`);
          if (j.KeySpec !== "AES_256") return err(400, "ValidationException", "KeySpec");
          const pt = randomBytes(32);
          return Response.json({ CiphertextBlob: seal(id, pt, ctx), KeyId: arn(id), Plaintext: pt.toString("base64") });
        }
        case "TrentService.Encrypt": {
          const id = resolve(j.KeyId);
          if (!id) return err(400, "NotFoundException", `Key '${String(j.KeyId)}' does not exist`);
          return Response.json({ CiphertextBlob: seal(id, Buffer.from(String(j.Plaintext), "base64"), ctx), KeyId: arn(id), EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
        }
        case "TrentService.Decrypt": {
          const blob = Buffer.from(String(j.CiphertextBlob), "base64");
          const n = blob[0] ?? 0;
          const id = blob.subarray(1, 1 + n).toString();
          if (!keys.has(id) || blob.length < 1 + n + 12 + 16) return err(400, "InvalidCiphertextException", "");
          if (j.KeyId !== undefined && resolve(j.KeyId) !== id) return err(400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.");
          try {
            const d = createDecipheriv("aes-256-gcm", keys.get(id)!, blob.subarray(1 + n, 13 + n)).setAAD(contextAad(ctx));
            d.setAuthTag(blob.subarray(blob.length - 16));
            const pt = Buffer.concat([d.update(blob.subarray(13 + n, blob.length - 16)), d.final()]);
            return Response.json({ KeyId: arn(id), Plaintext: pt.toString("base64"), EncryptionAlgorithm: "SYMMETRIC_DEFAULT" });
          } catch {
            return err(400, "InvalidCiphertextException", "");
          }
        }
        case "TrentService.CreateKey": {
          const id = create();
          return Response.json({ KeyMetadata: { AWSAccountId: init.account, Arn: arn(id), KeyId: id, KeyState: "Enabled", KeyUsage: "ENCRYPT_DECRYPT", KeySpec: "SYMMETRIC_DEFAULT", Enabled: true } });
        }
        case "TrentService.UpdateAlias": {
          const id = resolve(j.TargetKeyId);
          if (!id || !aliases.has(String(j.AliasName))) return err(400, "NotFoundException", "alias or key not found");
          aliases.set(String(j.AliasName), id);
          return new Response("", { status: 200, headers: { "content-type": "application/x-amz-json-1.1" } });
        }
        default:
          return err(400, "UnknownOperationException", "");
      }
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}
