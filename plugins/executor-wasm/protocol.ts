/**
 * Messages between the executor (parent) and a runner child, over Bun's IPC
 * channel with structured-clone ("advanced") serialization, so byte arrays
 * cross without encoding. The parent validates every reply: a child that ran
 * untrusted code is not trusted either.
 */
import { z } from "zod";

export interface RunRequest {
  type: "run";
  seq: number;
  module: Uint8Array;
  input: Uint8Array;
  memoryBytes: number;
  outputBytes: number;
}

export const ChildMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }),
  z.object({
    type: z.literal("result"),
    seq: z.number().int().nonnegative(),
    outcome: z.discriminatedUnion("ok", [
      z.object({ ok: z.literal(true), output: z.custom<Uint8Array>((v) => v instanceof Uint8Array, "output must be bytes") }),
      z.object({
        ok: z.literal(false),
        reason: z.enum(["memory", "crash", "invalid-module", "output-too-large"]),
        detail: z.string().max(8192),
      }),
    ]),
    cpuMs: z.number().nonnegative(),
    maxRssBytes: z.number().int().nonnegative(),
  }),
]);
export type ChildMessage = z.infer<typeof ChildMessage>;
export type ResultMessage = Extract<ChildMessage, { type: "result" }>;
