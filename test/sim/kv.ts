/** The replicated key-value state machine of the workload, and its command encoding. */
import type { KvInput, KvOutput } from "./linearizability.ts";

export interface Command {
  readonly id: number;
  readonly key: string;
  readonly input: KvInput;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(c: Command): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): Command {
  return JSON.parse(dec.decode(data)) as Command;
}

export class KvStore {
  private readonly map: Map<string, string>;

  constructor(map?: Map<string, string>) {
    this.map = map ?? new Map();
  }

  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  apply(c: Command): KvOutput {
    const cur = this.get(c.key);
    switch (c.input.kind) {
      case "get":
        return { value: cur };
      case "put":
        this.map.set(c.key, c.input.value);
        return { ok: true };
      case "cas":
        if (cur !== c.input.expected) return { ok: false };
        this.map.set(c.key, c.input.value);
        return { ok: true };
    }
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.map]));
  }

  static restore(data: Uint8Array): KvStore {
    return new KvStore(new Map(JSON.parse(dec.decode(data)) as [string, string][]));
  }
}
