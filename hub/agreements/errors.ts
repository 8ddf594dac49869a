import { GreyError } from "../../plugins/sdk/errors.ts";

/** One problem in an agreement document: dotted field path, 1-based line (null when unknown), message. */
export type AgreementProblem = { path: string; line: number | null; message: string };

/** An agreement document that does not parse or validate. Lists every problem at once. */
export class AgreementInvalidError extends GreyError {
  constructor(readonly problems: readonly AgreementProblem[]) {
    super(
      "ERR_AGREEMENT_INVALID",
      problems.map((p) => `${p.path || "(document)"}${p.line === null ? "" : ` (line ${p.line})`}: ${p.message}`).join("; "),
    );
  }
}

/** The store already holds `agreementsMax` agreements and a new provider/consumer pair was applied. */
export class AgreementLimitError extends GreyError {
  constructor(readonly limit: number) {
    super("ERR_AGREEMENT_LIMIT", `the hub already holds ${limit} agreements; remove one before adding another`);
  }
}
