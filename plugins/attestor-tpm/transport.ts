/**
 * Byte transports to a TPM. Both carry raw TPM 2.0 command/response bytes (no framing of their own):
 * the Linux in-kernel resource manager /dev/tpmrm0, and swtpm's TCP "server" channel
 * (`swtpm socket --server type=tcp,...`), which also speaks raw commands — the MS-simulator
 * framing that `mssim` TCTIs expect is NOT used by swtpm's data channel.
 *
 * A transport reads exactly one response per command, sized by the response header, and refuses
 * one that announces more than `responseBytesMax`. If a command is aborted mid-flight the channel is
 * torn down (a late response would otherwise be read as the answer to the next command) and reopened
 * on the next transmit.
 */
import { open, type FileHandle } from "node:fs/promises";
import { Socket } from "node:net";
import { tpmConnectTimeoutMsDefault, tpmResponseBytesMax } from "./constants.ts";
import { TpmError } from "./errors.ts";

export interface TransmitOptions {
  readonly signal: AbortSignal;
}

export interface TpmTransport {
  /** Send one complete command; resolve with one complete response. */
  transmit(command: Uint8Array, options: TransmitOptions): Promise<Uint8Array>;
  close(): Promise<void>;
}

const headerBytes = 10;

/** The response size announced in a header, validated against the limit. */
export function announcedResponseSize(header: Uint8Array, responseBytesMax: number): number {
  const size = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(2);
  if (size < headerBytes) throw new TpmError("malformed-response", `response header announces ${size} bytes`);
  if (size > responseBytesMax) {
    throw new TpmError("too-large", `response announces ${size} bytes, limit is ${responseBytesMax}`);
  }
  return size;
}

function abortError(signal: AbortSignal): TpmError {
  const reason = signal.reason;
  if (reason instanceof TpmError) return reason;
  const timedOut = (reason as { name?: string } | undefined)?.name === "TimeoutError";
  const text = reason instanceof Error ? reason.message : String(reason ?? "aborted");
  return new TpmError(timedOut ? "timeout" : "aborted", text, { cause: reason });
}

export interface TcpTransportInit {
  readonly host: string;
  readonly port: number;
  readonly connectTimeoutMs?: number;
  readonly responseBytesMax?: number;
}

export function tcpTransport(init: TcpTransportInit): TpmTransport {
  const responseBytesMax = init.responseBytesMax ?? tpmResponseBytesMax;
  const connectTimeoutMs = init.connectTimeoutMs ?? tpmConnectTimeoutMsDefault;
  let socket: Socket | undefined;

  async function connect(signal: AbortSignal): Promise<Socket> {
    if (socket && !socket.destroyed) return socket;
    const s = new Socket();
    s.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new TpmError("timeout", `connect to ${init.host}:${init.port} timed out after ${connectTimeoutMs} ms`)), connectTimeoutMs);
      const onAbort = () => fail(abortError(signal));
      function fail(err: unknown) {
        cleanup();
        s.destroy();
        reject(err instanceof TpmError ? err : new TpmError("transport", `connect to ${init.host}:${init.port} failed: ${(err as Error).message}`, { cause: err }));
      }
      function cleanup() {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        s.off("error", fail);
      }
      signal.addEventListener("abort", onAbort, { once: true });
      s.once("error", fail);
      s.connect(init.port, init.host, () => {
        cleanup();
        resolve();
      });
    });
    // Errors between commands are surfaced by the next transmit (the socket is then destroyed).
    s.on("error", () => s.destroy());
    socket = s;
    return s;
  }

  async function transmit(command: Uint8Array, { signal }: TransmitOptions): Promise<Uint8Array> {
    if (signal.aborted) throw abortError(signal);
    const s = await connect(signal);
    return new Promise<Uint8Array>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let have = 0;
      let expected = -1;
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        have += chunk.length;
        try {
          if (expected < 0 && have >= headerBytes) {
            expected = announcedResponseSize(Buffer.concat(chunks).subarray(0, headerBytes), responseBytesMax);
          }
        } catch (err) {
          return fail(err);
        }
        if (expected >= 0 && have >= expected) {
          if (have > expected) return fail(new TpmError("malformed-response", `${have - expected} bytes after the response`));
          done();
          resolve(new Uint8Array(Buffer.concat(chunks, have)));
        }
      };
      const onClose = () => fail(new TpmError("transport", `connection to ${init.host}:${init.port} closed after ${have} response bytes`));
      const onError = (err: Error) => fail(new TpmError("transport", `socket error: ${err.message}`, { cause: err }));
      const onAbort = () => fail(abortError(signal));
      function done() {
        s.off("data", onData);
        s.off("close", onClose);
        s.off("error", onError);
        signal.removeEventListener("abort", onAbort);
      }
      function fail(err: unknown) {
        done();
        s.destroy(); // the stream position is unknown now; reconnect on the next command
        reject(err);
      }
      s.on("data", onData);
      s.once("close", onClose);
      s.once("error", onError);
      signal.addEventListener("abort", onAbort, { once: true });
      s.write(command);
    });
  }

  return {
    transmit,
    async close() {
      socket?.destroy();
      socket = undefined;
    },
  };
}

export interface DeviceTransportInit {
  /** Normally /dev/tpmrm0 (kernel resource manager); /dev/tpm0 works but leaves object cleanup to us. */
  readonly path: string;
  readonly responseBytesMax?: number;
}

export function deviceTransport(init: DeviceTransportInit): TpmTransport {
  const responseBytesMax = init.responseBytesMax ?? tpmResponseBytesMax;
  let fh: FileHandle | undefined;

  async function transmit(command: Uint8Array, { signal }: TransmitOptions): Promise<Uint8Array> {
    if (signal.aborted) throw abortError(signal);
    try {
      fh ??= await open(init.path, "r+");
    } catch (err) {
      throw new TpmError("transport", `cannot open ${init.path}: ${(err as Error).message}`, { cause: err });
    }
    const handle = fh;
    const io = (async () => {
      await handle.write(command);
      // The kernel driver hands over one whole response per read().
      const buf = new Uint8Array(responseBytesMax);
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead < headerBytes) throw new TpmError("malformed-response", `read ${bytesRead} bytes from ${init.path}`);
      const size = announcedResponseSize(buf.subarray(0, headerBytes), responseBytesMax);
      if (size !== bytesRead) throw new TpmError("malformed-response", `response announces ${size} bytes, read ${bytesRead}`);
      return buf.slice(0, bytesRead);
    })();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([io, aborted]);
    } catch (err) {
      // A blocked read cannot be cancelled; closing the handle discards any late response.
      fh = undefined;
      handle.close().catch(() => {});
      io.catch(() => {});
      if (err instanceof TpmError) throw err;
      throw new TpmError("transport", `${init.path}: ${(err as Error).message}`, { cause: err });
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
  }

  return {
    transmit,
    async close() {
      const h = fh;
      fh = undefined;
      await h?.close();
    },
  };
}
