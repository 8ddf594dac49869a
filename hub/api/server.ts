/**
 * HTTPS with optional client certificates, so the handler can see who is
 * calling. Bun's HTTP servers do not expose the peer certificate, so a
 * node:tls server (TLS 1.3, requestCert, rejectUnauthorized false) hands each
 * TLS socket to a node:http server running Hono's request listener; each
 * request carries `env.peer`, the outcome of verifying the peer certificate
 * against the federation CA ourselves (so /v1/health works without one).
 */
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import { getRequestListener } from "@hono/node-server";
import type { Hono } from "hono";
import { verifyFederationCert, pemToDer, type FederationIdentity } from "../../plugins/sdk/identity.ts";
import type { Env, PeerAuth } from "./types.ts";

/** How long close() waits for in-flight requests before destroying sockets. */
export const apiCloseGraceMs = 2_000;
/** Idle keep-alive connections are closed after this long. */
export const apiKeepAliveTimeoutMs = 5_000;
/** Whole request (headers + body) must arrive within this. Then: 408 / socket closed. */
export const apiRequestTimeoutMs = 30_000;
/** Concurrent TLS connections. Beyond: new connections are dropped. */
export const apiConnectionsMax = 1024;

export type ApiServerOptions = {
  host: string;
  port: number;
  app: Hono<Env>;
  caCertPem: string;
  certPem: string;
  keyPem: string;
  /** Verification time (default: the system clock). */
  now?: () => Date;
};

/**
 * A client over its rate limit gets its 429, then its connection stops being
 * read for a while: answering each extra request costs the hub TLS, parsing
 * and routing, which is what slows everyone else under a flood. A paused
 * socket costs nothing; the flooder's requests wait in its own buffers.
 */
export const tarpitMsMax = 1_000;

function tarpit(socket: Socket, retryAfter: string | null): void {
  if (socket.isPaused() || socket.destroyed) return;
  const ms = Math.min(tarpitMsMax, Math.max(100, Number(retryAfter ?? "1") * 1000));
  socket.pause();
  const t = setTimeout(() => {
    if (!socket.destroyed) socket.resume();
  }, ms);
  socket.once("close", () => clearTimeout(t));
}

export type ApiServer = { url: string; port: number; close(): Promise<void> };

type Verified = { identity: FederationIdentity } | { refused: string };

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const caDer = pemToDer(opts.caCertPem, "CERTIFICATE");
  const now = opts.now ?? (() => new Date());
  // A connection presents one certificate: verify it once, re-check only the validity window per request.
  const verified = new WeakMap<TLSSocket, Promise<Verified>>();

  async function peerAuth(socket: TLSSocket): Promise<PeerAuth> {
    let v = verified.get(socket);
    if (!v) {
      const raw = socket.getPeerCertificate(false)?.raw;
      if (!raw || raw.byteLength === 0) return { none: true };
      v = verifyFederationCert(new Uint8Array(raw), caDer, now()).then(
        (identity) => ({ identity }),
        (err: unknown) => ({ refused: (err as Error).message }),
      );
      verified.set(socket, v);
    }
    const result = await v;
    if ("identity" in result) {
      const t = now().getTime();
      if (t > result.identity.notAfter.getTime()) return { refused: "certificate expired" };
      if (t < result.identity.notBefore.getTime()) return { refused: "certificate not yet valid" };
    }
    return result;
  }

  const listener = getRequestListener(async (request, env) => {
    const incoming = (env as { incoming: IncomingMessage }).incoming;
    const peer = await peerAuth(incoming.socket as TLSSocket);
    const res = await opts.app.fetch(request, { ...env, peer });
    if (res.status === 429) tarpit(incoming.socket, res.headers.get("retry-after"));
    return res;
    // Keep Bun's own Request/Response: overriding the globals (the default) breaks every
    // Bun.serve and fetch user in the process that builds a Response after this point.
  }, { overrideGlobalObjects: false });

  const http = createHttpServer({ keepAliveTimeout: apiKeepAliveTimeoutMs, requestTimeout: apiRequestTimeoutMs }, listener);
  const tls = createTlsServer({
    ca: opts.caCertPem,
    cert: opts.certPem,
    key: opts.keyPem,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["http/1.1"],
  });
  tls.maxConnections = apiConnectionsMax;
  const sockets = new Set<Socket>();
  tls.on("secureConnection", (socket: TLSSocket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    http.emit("connection", socket);
  });
  // A failed handshake is the client's problem; never let it take the server down.
  tls.on("tlsClientError", () => {});

  await new Promise<void>((resolve, reject) => {
    tls.once("error", reject);
    tls.listen(opts.port, opts.host, () => {
      tls.off("error", reject);
      resolve();
    });
  });
  const address = tls.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  const hostForUrl = opts.host.includes(":") ? `[${opts.host}]` : opts.host;

  return {
    url: `https://${hostForUrl}:${port}`,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => tls.close(() => resolve()));
      http.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, apiCloseGraceMs);
      await closed;
      clearTimeout(timer);
    },
  };
}
