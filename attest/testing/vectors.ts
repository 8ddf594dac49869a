/**
 * Test-only access to the shared attestation vectors. CI runs a fresh clone at X with the vectors at
 * X/../shared/vectors, so the path is always resolved from the repository root's parent.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export const vectorsDir = resolve(import.meta.dir, "../..", "../shared/vectors");

export function vectorPath(rel: string): string {
  return resolve(vectorsDir, rel);
}

export function vectorBytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(rel)));
}

export function vectorText(rel: string): string {
  return readFileSync(vectorPath(rel), "utf8");
}

export function vectorJson<T = unknown>(rel: string): T {
  return JSON.parse(vectorText(rel)) as T;
}

/** A copy with one byte XOR-ed (for tampering tests). */
export function flipByte(b: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = new Uint8Array(b);
  const i = index < 0 ? out.length + index : index;
  out[i] = out[i]! ^ mask;
  return out;
}
