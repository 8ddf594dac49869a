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

export function channel(stream: Stream, signal: AbortSignal): Channel {
  const lp: LengthPrefixedStream<Stream> = lpStream(stream, { maxDataLength: wireMessageBytesMax });
  return {
    async send(msg) {
      await lp.write(encodeMessage(msg), { signal });
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
    const ch = channel(stream, signal);
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
  const ch = channel(stream, signal);
  try {
    const out = await fn(ch);
    await ch.close();
    return out;
  } catch (err) {
    ch.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
