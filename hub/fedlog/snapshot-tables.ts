/**
 * Whole-table images for federation log snapshots: a store the log's commands
 * build (tasks.db, agreements.db) exports its tables as columns + rows in a
 * fixed order (columns by name, rows by primary key), so equal tables encode
 * to equal CBOR; import REPLACES the tables with the image in one transaction.
 *
 * Column names of an image are checked against the local table (never put in
 * SQL unchecked); a column the local table lacks is refused (a newer build's
 * snapshot: roll upgrades first); a local column the image lacks gets NULL or
 * its default.
 */
import type { Database } from "bun:sqlite";
import { z } from "zod";
import { MalformedInputError } from "../../plugins/sdk/errors.ts";

const cell = z.union([z.string(), z.number(), z.null(), z.custom<Uint8Array>((b) => b instanceof Uint8Array)]);
export const TableImage = z.object({ columns: z.array(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/)).max(64), rows: z.array(z.array(cell)) });
export type TableImage = z.infer<typeof TableImage>;
export const TablesImage = z.record(z.string(), TableImage);
export type TablesImage = z.infer<typeof TablesImage>;

/** A table of a snapshot part: its name (a constant of the store, never input) and its ordering key. */
export interface TableSpec {
  table: string;
  orderBy: string;
}

function columnsOf(db: Database, table: string): string[] {
  return db.query<{ name: string }, []>(`PRAGMA table_info(${table})`).all().map((c) => c.name).sort();
}

export function exportTables(db: Database, specs: readonly TableSpec[]): TablesImage {
  const out: TablesImage = {};
  for (const s of specs) {
    const columns = columnsOf(db, s.table);
    const rows = db.query<Record<string, unknown>, []>(`SELECT ${columns.join(", ")} FROM ${s.table} ORDER BY ${s.orderBy}`).all()
      .map((r) => columns.map((c) => normalise(r[c])));
    out[s.table] = { columns, rows };
  }
  return out;
}

/** Replace every table of `specs` with the image's rows (tables missing from the image end up empty). Call inside a transaction. */
export function importTables(db: Database, specs: readonly TableSpec[], raw: unknown): void {
  const parsed = TablesImage.safeParse(raw);
  if (!parsed.success) throw new MalformedInputError(`snapshot tables: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const image = parsed.data;
  for (const s of specs) {
    const t = image[s.table] ?? { columns: [], rows: [] };
    const local = new Set(columnsOf(db, s.table));
    const unknown = t.columns.filter((c) => !local.has(c));
    if (unknown.length) throw new MalformedInputError(`snapshot table ${s.table}: columns ${unknown.join(", ")} unknown to this build`);
    db.exec(`DELETE FROM ${s.table}`);
    if (t.rows.length === 0) continue;
    const insert = db.query(`INSERT INTO ${s.table} (${t.columns.join(", ")}) VALUES (${t.columns.map(() => "?").join(", ")})`);
    for (const row of t.rows) {
      if (row.length !== t.columns.length) throw new MalformedInputError(`snapshot table ${s.table}: a row of ${row.length} cells for ${t.columns.length} columns`);
      insert.run(...(row as never[]));
    }
  }
}

/** sqlite hands BLOBs back as Uint8Array (bun) or Buffer: always a plain Uint8Array, so encodings are equal. */
type Cell = z.infer<typeof cell>;
function normalise(v: unknown): Cell {
  if (v instanceof Uint8Array && v.constructor !== Uint8Array) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return (v ?? null) as Cell;
}
