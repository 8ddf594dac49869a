/**
 * The hub registry: join tokens and federation members in one bun:sqlite
 * file. Safe to open from several processes (the hub, `token create`).
 */
import { openDatabase } from "./schema.ts";
import { memberStore } from "./members.ts";
import { tokenStore } from "./tokens.ts";

export type RegistryOptions = {
  /** The members' heartbeat period; member state is derived from it. */
  heartbeatIntervalMs: number;
};

export type Registry = ReturnType<typeof tokenStore> & ReturnType<typeof memberStore> & { close(): void };

export function openRegistry(path: string, opts: RegistryOptions): Registry {
  const db = openDatabase(path);
  try {
    return { ...tokenStore(db), ...memberStore(db, opts.heartbeatIntervalMs), close: () => db.close() };
  } catch (err) {
    db.close();
    throw err;
  }
}

export { TokenLimitError } from "./errors.ts";
export type { AttestationRecord, Counters, JoinRecord, Member, MemberState, Page, StateCounts } from "./members.ts";
export type { CreatedToken, CreateTokenInput, TokenScope } from "./tokens.ts";
export { clampPageSize, memberState } from "./members.ts";
