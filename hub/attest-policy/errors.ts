import { GreyError } from "../../plugins/sdk/errors.ts";

export type PolicyProblem = { path: string; line: number | null; message: string };

/** The policy file does not parse or does not validate. Every problem, with its field path and line. */
export class AttestPolicyError extends GreyError {
  constructor(readonly file: string, readonly problems: readonly PolicyProblem[]) {
    super("ERR_ATTEST_POLICY", problems.map((p) => `${file}${p.line !== null ? `:${p.line}` : ""}: ${p.path || "(top)"}: ${p.message}`).join("\n"));
  }
}
