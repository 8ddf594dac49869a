import { GreyError } from "../../plugins/sdk/errors.ts";

/** `token create` while `outstandingTokensMax` tokens are unused and unexpired. */
export class TokenLimitError extends GreyError {
  constructor(readonly limit: number) {
    super("ERR_TOKEN_LIMIT", `${limit} join tokens are outstanding (unused, unexpired); wait for some to expire or be used`);
  }
}
