/** Encoding of configuration changes carried in "conf" entries, and the bootstrap log. */
import { MalformedInputError } from "../../sdk/errors.ts";
import type { ConfChange, Entry, NodeId, Storage } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(data));
  } catch (cause) {
    throw new MalformedInputError("conf change entry is not valid JSON", { cause });
  }
  const o = v as { kind?: unknown; node?: unknown };
  const kinds = ["addLearner", "addVoter", "remove"];
  if (typeof o !== "object" || o === null || !kinds.includes(o.kind as string) || !isNodeId(o.node)) {
    throw new MalformedInputError("conf change entry has an unknown shape");
  }
  return { kind: o.kind as ConfChange["kind"], node: o.node as NodeId };
}

export function isNodeId(v: unknown): v is NodeId {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0;
}

/**
 * The initial durable state of every founding member: one committed addVoter
 * entry per voter at term 1 (as etcd's Bootstrap does). Every founder must
 * start from the same list; nodes added later start from `emptyStorage()`.
 */
export function bootstrapStorage(voters: readonly NodeId[]): Storage {
  const entries: Entry[] = voters.map((node, i) => ({
    index: i + 1,
    term: 1,
    type: "conf",
    data: encodeConfChange({ kind: "addVoter", node }),
  }));
  return { hardState: { term: 1, vote: 0, commit: entries.length }, entries };
}

export function emptyStorage(): Storage {
  return { hardState: { term: 0, vote: 0, commit: 0 }, entries: [] };
}
