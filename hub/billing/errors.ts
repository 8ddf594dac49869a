import { GreyError } from "../../plugins/sdk/errors.ts";

/** A usage record id was applied before with different content. */
export class UsageConflictError extends GreyError {
  constructor(readonly id: string) {
    super("ERR_USAGE_CONFLICT", `usage record ${id} was already recorded with different content`);
  }
}

/** A rate card file that does not parse or validate; every problem listed with its path. */
export class RateCardError extends GreyError {
  constructor(readonly source: string, readonly problems: readonly string[]) {
    super("ERR_RATE_CARD", `rate card ${source}: ${problems.join("; ")}`);
  }
}

/** No rate card with that id is effective at the asked time. */
export class UnknownRateCardError extends GreyError {
  constructor(readonly id: string, at: Date) {
    super("ERR_UNKNOWN_RATE_CARD", `no version of rate card ${id} is effective at ${at.toISOString()}`);
  }
}

/** An invoice period that is empty, reversed or too long. */
export class InvoicePeriodError extends GreyError {
  constructor(message: string) {
    super("ERR_INVOICE_PERIOD", message);
  }
}

/** An invoice amount that does not fit a safe integer of minor units. */
export class InvoiceOverflowError extends GreyError {
  constructor(readonly amountMinor: bigint) {
    super("ERR_INVOICE_OVERFLOW", `invoice amount ${amountMinor} minor units exceeds the largest safe integer`);
  }
}
