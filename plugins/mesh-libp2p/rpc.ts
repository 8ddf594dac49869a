/**
 * Request/response over libp2p streams: length-prefixed CBOR frames with a
 * size limit enforced by the framing (oversize frames never reach the
 * decoder), a timeout per exchange, and typed errors both ways.
 */
import type { Connection, Stream } from "@libp2p/interface";
import { lpStream, type LengthPrefixedStream } from "@libp2p/utils";
import { z } from "zod";
import { decodeMessage, encodeMessage } from "../sdk/codec.ts";
import { GreyError, MalformedInputError, MessageTooLargeError, TimeoutError } from "../sdk/errors.ts";
import { streamExchangeTimeoutMs, wireMessageBytesMax } from "../sdk/limits.ts";
import { ErrorReply } from "../sdk/wire.ts";

export class RemoteError extends GreyError {
  constructor(readonly remoteCode: string, message: string) {
    super(remoteCode, message);
  }
}

export interface Channel {
  send(msg: { type: string; [k: string]: unknown }): Promise<void>;
  /** Read one message; a remote `error` reply becomes a thrown RemoteError. */
  receive<S extends z.ZodType>(schema: S): Promise<z.infer<S>>;
  close(): Promise<void>;
  abort(err: Error): void;
}

/** Remote peers whose byte counts are kept (least recently active evicted first). */
export const peerBytesTrackedMax = 1024;

export interface PeerBytes {
  sent: number;
  received: number;
}

/**
 * Bytes of framed traffic (length prefix + message) per remote peer, on every protocol stream that
 * goes through `channel` — i.e. all of ours. Bounded at `peerBytesTrackedMax` peers, LRU: an evicted
 * peer that comes back counts from zero again (connector-health treats a counter going backwards as
 * a restart). One table per process (in-process test nodes share it; keys are remote peer ids).
 */
export class PeerBytesTable {
  private readonly table = new Map<string, PeerBytes>();
  constructor(readonly max = peerBytesTrackedMax) {}

  add(peer: string, direction: keyof PeerBytes, n: number): void {
    let e = this.table.get(peer);
    if (e) this.table.delete(peer);
    else {
      e = { sent: 0, received: 0 };
      while (this.table.size >= this.max) this.table.delete(this.table.keys().next().value as string);
    }
    e[direction] += n;
    this.table.set(peer, e);
  }

  get(peer: string): PeerBytes | undefined {
    const e = this.table.get(peer);
    return e ? { ...e } : undefined;
  }

  get size(): number {
    return this.table.size;
  }

  clear(): void {
    this.table.clear();
  }
}

export const peerBytes = new PeerBytesTable();

/** Bytes a frame of `n` payload bytes takes on the stream: unsigned varint length prefix + payload. */
export function frameBytes(n: number): number {
  let prefix = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) prefix++;
  return prefix + n;
}

/** A peer id string from what `request` is given (PeerId, Multiaddr with /p2p, or a string). */
function peerKey(peer: unknown): string | undefined {
  if (peer === undefined || peer === null) return undefined;
  const getPeerId = (peer as { getPeerId?: () => string | null }).getPeerId;
  if (typeof getPeerId === "function") return getPeerId.call(peer) ?? undefined;
  return String(peer);
}

export function channel(stream: Stream, signal: AbortSignal, remotePeer?: string): Channel {
  const lp: LengthPrefixedStream<Stream> = lpStream(stream, { maxDataLength: wireMessageBytesMax });
  return {
    async send(msg) {
      const bytes = encodeMessage(msg);
      await lp.write(bytes, { signal });
      if (remotePeer) peerBytes.add(remotePeer, "sent", frameBytes(bytes.byteLength));
    },
    async receive(schema) {
      let frame;
      try {
        frame = await lp.read({ signal });
      } catch (err) {
        const name = (err as Error).name;
        if (name === "InvalidDataLengthError") throw new MessageTooLargeError(-1, wireMessageBytesMax);
        if (signal.aborted) throw new TimeoutError("stream exchange", streamExchangeTimeoutMs);
        throw new MalformedInputError(`stream read failed: ${(err as Error).message}`, { cause: err });
      }
      if (remotePeer) peerBytes.add(remotePeer, "received", frameBytes(frame.byteLength));
      // An error reply is valid on every protocol: accept it before the expected schema.
      const msg = decodeMessage(frame.subarray(), z.union([ErrorReply, schema])) as { type?: string; code?: string; message?: string };
      if (msg.type === "error") throw new RemoteError(String(msg.code), String(msg.message));
      return msg as z.infer<typeof schema>;
    },
    async close() {
      await stream.close({ signal }).catch(() => stream.abort(new Error("close failed")));
    },
    abort(err) {
      stream.abort(err);
    },
  };
}

export function errorReply(err: unknown): { type: "error"; code: string; message: string } {
  if (err instanceof GreyError) return { type: "error", code: err.code, message: err.message.slice(0, 1000) };
  return { type: "error", code: "ERR_INTERNAL", message: "internal error" };
}

export type Handler = (ch: Channel, connection: Connection) => Promise<void>;

export interface HandlerHooks {
  /** Called for every rejected exchange (bad input, refused credentials). Never throws. */
  onRejected?: (protocol: string, err: unknown, connection: Connection) => void;
  /** Admission before any byte is read (allow-lists, per-peer rate limits): throw a typed error to refuse. */
  admit?: (protocol: string, connection: Connection) => void;
}

/**
 * Wrap a protocol handler: bounded time, error replies for typed errors, and
 * the stream always closed. A bad peer never takes the process down.
 */
export function serve(protocol: string, handler: Handler, hooks: HandlerHooks = {}) {
  return async (stream: Stream, connection: Connection): Promise<void> => {
    const signal = AbortSignal.timeout(streamExchangeTimeoutMs);
    const ch = channel(stream, signal, connection.remotePeer?.toString());
    try {
      hooks.admit?.(protocol, connection);
      await handler(ch, connection);
      await ch.close();
    } catch (err) {
      hooks.onRejected?.(protocol, err, connection);
      try {
        if (!signal.aborted) await ch.send(errorReply(err));
        await ch.close();
      } catch {
        ch.abort(err instanceof Error ? err : new Error(String(err)));
      }
    }
  };
}

/** Open a stream to `peer` for `protocol` and run `fn` on a channel with a deadline. */
export async function request<T>(
  node: { dialProtocol: (peer: never, protocol: string, opts: { signal: AbortSignal }) => Promise<Stream> },
  peer: unknown,
  protocol: string,
  fn: (ch: Channel) => Promise<T>,
  timeoutMs = streamExchangeTimeoutMs,
): Promise<T> {
  const signal = AbortSignal.timeout(timeoutMs);
  const stream = await node.dialProtocol(peer as never, protocol, { signal });
  const ch = channel(stream, signal, peerKey(peer));
  try {
    const out = await fn(ch);
    await ch.close();
    return out;
  } catch (err) {
    ch.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
