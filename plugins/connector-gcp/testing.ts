/**
 * A loopback GCE metadata server (Metadata-Flavor: Google required on requests and set on
 * responses) that mints RS256 identity tokens in Google's format=full shape with a test key,
 * and a JWKS endpoint serving that key. With `workload`, it is the GKE metadata server instead: the
 * identity endpoint returns Workload Identity tokens (service account, no compute_engine claims).
 */
import { createSign, generateKeyPairSync } from "node:crypto";

export function gceMock(init: { project: string; email?: string; zone?: string; now?: () => number; ttlS?: number; workload?: { email: string } }) {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = "test" + crypto.randomUUID().replace(/-/g, "").slice(0, 12);
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
  const now = init.now ?? Date.now;
  const zone = init.zone ?? "europe-west1-b";
  const calls: string[] = [];
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  function mint(aud: string, full: boolean, project = init.project): string {
    const iat = Math.floor(now() / 1000);
    const payload: Record<string, unknown> = {
      aud, azp: "109422233875895820585", email: init.email ?? `326694433618-compute@developer.gserviceaccount.com`, email_verified: true,
      exp: iat + (init.ttlS ?? 3600), iat, iss: "https://accounts.google.com", sub: "109422233875895820585",
    };
    if (full) payload.google = { compute_engine: { instance_creation_timestamp: iat - 86_400, instance_id: "2875949485074006138", instance_name: "grey-test-vm", project_id: project, project_number: 326694433618, zone } };
    const head = `${b64({ alg: "RS256", kid, typ: "JWT" })}.${b64(payload)}`;
    return `${head}.${createSign("RSA-SHA256").update(head).sign(privateKey).toString("base64url")}`;
  }
  /**
   * A GKE Workload Identity token as the GKE metadata server issues it: the Google service account's
   * identity (email, email_verified, sub, azp), no google.compute_engine claims, signed with the JWKS key.
   * `payload` overrides claims (e.g. exp, email_verified); `signWith` signs with another key (forgery).
   */
  function mintWorkload(aud: string, opts: { email?: string; payload?: Record<string, unknown>; signWith?: typeof privateKey } = {}): string {
    const iat = Math.floor(now() / 1000);
    const payload: Record<string, unknown> = {
      aud, azp: "117374950471204338917", email: opts.email ?? init.workload?.email ?? `grey-agent@${init.project}.iam.gserviceaccount.com`, email_verified: true,
      exp: iat + (init.ttlS ?? 3600), iat, iss: "https://accounts.google.com", sub: "117374950471204338917", ...opts.payload,
    };
    const head = `${b64({ alg: "RS256", kid, typ: "JWT" })}.${b64(payload)}`;
    return `${head}.${createSign("RSA-SHA256").update(head).sign(opts.signWith ?? privateKey).toString("base64url")}`;
  }
  const server = Bun.serve({
    hostname: "127.0.0.1", port: 0,
    fetch(req) {
      const u = new URL(req.url);
      calls.push(u.pathname);
      if (u.pathname === "/oauth2/v3/certs") return Response.json({ keys: [jwk] }, { headers: { "cache-control": "public, max-age=300" } });
      const flavor = { "metadata-flavor": "Google", "content-type": "application/text" };
      if (req.headers.get("metadata-flavor") !== "Google") return new Response("Missing Metadata-Flavor:Google header.", { status: 403 });
      const p = u.pathname.replace(/^\/computeMetadata\/v1\//, "");
      if (p === "instance/service-accounts/default/identity") {
        const aud = u.searchParams.get("audience");
        if (!aud) return new Response("non-empty audience parameter required", { status: 400, headers: flavor });
        return new Response(init.workload ? mintWorkload(aud) : mint(aud, u.searchParams.get("format") === "full"), { headers: flavor });
      }
      const values: Record<string, string> = {
        "": "instance/\nproject/\n", "instance/zone": `projects/326694433618/zones/${zone}`,
        "instance/network-interfaces/0/ip": "10.132.0.2", "instance/network-interfaces/0/access-configs/0/external-ip": "34.76.0.10",
      };
      const v = values[p];
      return v === undefined ? new Response("", { status: 404, headers: flavor }) : new Response(v, { headers: flavor });
    },
  });
  const url = `http://127.0.0.1:${server.port}`;
  return { url, jwksUrl: `${url}/oauth2/v3/certs`, calls, mint, mintWorkload, stop: () => server.stop(true) };
}
