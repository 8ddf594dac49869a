/** The registry's SQLite file: opening, pragmas, schema. */
import { Database } from "bun:sqlite";
import { ConfigError } from "../../plugins/sdk/errors.ts";

export const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tokens (
  token_id    TEXT PRIMARY KEY,
  secret_hash BLOB NOT NULL,
  cluster_id  TEXT NOT NULL,
  org         TEXT NOT NULL,
  region      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS tokens_outstanding ON tokens (expires_at) WHERE used_at IS NULL;

CREATE TABLE IF NOT EXISTS members (
  cluster_id     TEXT PRIMARY KEY,
  org            TEXT NOT NULL,
  region         TEXT NOT NULL,
  peer_id        TEXT NOT NULL UNIQUE,
  multiaddrs     TEXT NOT NULL,
  cert_serial    TEXT NOT NULL,
  cert_not_after INTEGER NOT NULL,
  attestation    TEXT NOT NULL,
  joined_at      INTEGER NOT NULL,
  renewed_at     INTEGER,
  last_heartbeat INTEGER,
  last_seen      INTEGER NOT NULL,
  revoked_at     INTEGER,
  revoked_reason TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS members_last_seen ON members (last_seen);

CREATE TABLE IF NOT EXISTS counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;
`;

/**
 * Open (creating if needed) the registry database. WAL so a CLI process can
 * write tokens while the hub reads; synchronous=FULL so a consumed token or a
 * recorded join survives power loss; busy_timeout so two processes wait for
 * each other instead of failing.
 */
export function openDatabase(path: string): Database {
  const db = new Database(path, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("PRAGMA foreign_keys = ON");
  const { user_version } = db.query("PRAGMA user_version").get() as { user_version: number };
  if (user_version > SCHEMA_VERSION) {
    db.close();
    throw new ConfigError([`registry ${path}: schema ${user_version} is newer than this build's ${SCHEMA_VERSION}`]);
  }
  db.transaction(() => {
    db.exec(SCHEMA);
    migrate(db);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  return db;
}

/** v1 → v2: members lose their membership on failed re-attestation (revoked_at, revoked_reason). */
function migrate(db: Database): void {
  const cols = db.query<{ name: string }, []>("PRAGMA table_info(members)").all().map((c) => c.name);
  if (!cols.includes("revoked_at")) db.exec("ALTER TABLE members ADD COLUMN revoked_at INTEGER");
  if (!cols.includes("revoked_reason")) db.exec("ALTER TABLE members ADD COLUMN revoked_reason TEXT");
}
