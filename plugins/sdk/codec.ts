/**
 * The wire codec: every protocol message is one CBOR map with a `v` (version)
 * and a `type`, framed by libp2p's length prefix, size-checked before decoding
 * and schema-validated after. Anything else is a typed error.
 */
import { Decoder, Encoder } from "cbor-x";
import type { z } from "zod";
import { MalformedInputError, MessageTooLargeError, UnsupportedVersionError } from "./errors.ts";
import { wireMessageBytesMax } from "./limits.ts";

/** Versions of the wire format this build speaks. */
export const WIRE_VERSIONS = [1] as const;
export const WIRE_VERSION = 1;

// No shared structures / records: plain, self-describing CBOR other implementations can read.
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

export function encodeCbor(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decode CBOR bytes, refusing oversize input and turning decoder failures into MalformedInputError. */
export function decodeCbor(bytes: Uint8Array, limit = wireMessageBytesMax): unknown {
  if (bytes.byteLength > limit) throw new MessageTooLargeError(bytes.byteLength, limit);
  if (bytes.byteLength === 0) throw new MalformedInputError("empty CBOR message");
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new MalformedInputError(`invalid CBOR: ${(err as Error).message}`, { cause: err });
  }
}

/** Encode a wire message (adds the current version). */
export function encodeMessage<T extends { type: string }>(msg: T): Uint8Array {
  const bytes = encodeCbor({ v: WIRE_VERSION, ...msg });
  if (bytes.byteLength > wireMessageBytesMax) throw new MessageTooLargeError(bytes.byteLength, wireMessageBytesMax);
  return bytes;
}

/**
 * Decode and validate one wire message against a zod schema. Order of checks:
 * size, CBOR, shape {v,type}, version, schema.
 */
export function decodeMessage<S extends z.ZodType>(bytes: Uint8Array, schema: S, limit = wireMessageBytesMax): z.infer<S> {
  const raw = decodeCbor(bytes, limit);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new MalformedInputError("wire message is not a CBOR map");
  }
  const v = (raw as { v?: unknown }).v;
  if (!(WIRE_VERSIONS as readonly unknown[]).includes(v)) throw new UnsupportedVersionError(v, WIRE_VERSIONS);
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new MalformedInputError(`invalid message: ${first.join("; ")}`);
  }
  return parsed.data;
}
