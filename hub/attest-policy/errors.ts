import { ConfigFileError, type ConfigProblem } from "../../plugins/host/config-file.ts";

export type PolicyProblem = ConfigProblem;

/** The policy file does not parse or does not validate. Every problem, with its field path and line. */
export class AttestPolicyError extends ConfigFileError {
  constructor(file: string, problems: readonly PolicyProblem[]) {
    super(file, problems, "ERR_ATTEST_POLICY");
  }
}
