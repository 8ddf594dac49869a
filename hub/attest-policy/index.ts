/** Attestation policy per trust boundary: see parse.ts for the file format, evaluate.ts for the rules. */
export { AttestPolicyError, type PolicyProblem } from "./errors.ts";
export { BOUNDARIES, FORMATS, loadAttestPolicy, parseAttestPolicy, type AttestPolicy, type Boundary, type BoundaryRule, type VerifierSettings } from "./parse.ts";
export { AK_ACTIVATED, AK_PENDING, boundaryOf, failureReason, judge, type Judged } from "./evaluate.ts";
export { policyAttestors } from "./attestors.ts";
