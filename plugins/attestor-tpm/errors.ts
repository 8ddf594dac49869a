import { GreyError } from "../sdk/errors.ts";
import { decodeRc, type DecodedRc } from "./rc.ts";

/**
 * What went wrong talking to the TPM. Stable; tests and operators match on it.
 * - "response-code": the TPM answered with an error/warning code (see `rc`, `rcName`).
 * - "malformed-response": the bytes that came back do not parse (truncated, bad tag, bad size).
 * - "too-large": a command or announced response exceeds the named byte limit.
 * - "timeout": no complete response within the read timeout (or the connect timeout).
 * - "aborted": the caller's AbortSignal fired first (its reason is the cause).
 * - "transport": the device or socket could not be opened, or failed mid-command.
 */
export type TpmErrorKind = "response-code" | "malformed-response" | "too-large" | "timeout" | "aborted" | "transport";

export class TpmError extends GreyError {
  readonly kind: TpmErrorKind;
  /** Raw TPM_RC, for kind "response-code". */
  readonly rc: number | undefined;
  /** Decoded TPM_RC name, e.g. "TPM_RC_INTEGRITY", for kind "response-code". */
  readonly rcName: string | undefined;
  /** The command that failed, e.g. "Quote". */
  readonly command: string | undefined;
  readonly decoded: DecodedRc | undefined;

  constructor(
    kind: TpmErrorKind,
    message: string,
    options: { rc?: number; command?: string; cause?: unknown } = {},
  ) {
    const decoded = options.rc === undefined ? undefined : decodeRc(options.rc);
    const where = options.command ? `TPM2_${options.command}: ` : "";
    const rcText = decoded ? ` (${decoded.name}, rc 0x${options.rc!.toString(16)}${subjectText(decoded)})` : "";
    super(`ERR_TPM_${kind.toUpperCase().replaceAll("-", "_")}`, `${where}${message}${rcText}`, { cause: options.cause });
    this.kind = kind;
    this.rc = options.rc;
    this.rcName = decoded?.name;
    this.command = options.command;
    this.decoded = decoded;
  }

  /** True when the TPM answered with this base code (ignores which parameter/handle/session it names). */
  is(baseRc: number): boolean {
    return this.decoded?.base === baseRc;
  }
}

function subjectText(d: DecodedRc): string {
  return d.subject ? `, ${d.subject.kind} ${d.subject.index}` : "";
}
