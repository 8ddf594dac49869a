import { GreyError } from "../../plugins/sdk/errors.ts";

/** `init` on a data dir that already holds a federation CA. */
export class FederationExistsError extends GreyError {
  constructor(readonly dir: string) {
    super("ERR_FEDERATION_EXISTS", `${dir} already holds a federation CA (refusing to overwrite it)`);
  }
}

/** A data dir without a usable federation CA (missing or unreadable files). */
export class CaMissingError extends GreyError {
  constructor(readonly dir: string, detail: string, options?: { cause?: unknown }) {
    super("ERR_CA_MISSING", `${dir} has no usable federation CA: ${detail}`, options);
  }
}
