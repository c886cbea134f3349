import { readFile } from 'node:fs/promises';
import type pg from 'pg';

const PLANTER = new URL('./planted-objects.sql', import.meta.url);

/**
 * Plants into `schema` (created if absent, open to PUBLIC) the objects a
 * hostile user could put on a victim's search_path: shadows of every
 * pg_catalog operator, function and aggregate on base types, better-matching
 * operators and functions on numeric type pairs, and domains named like
 * non-keyword types (see planted-objects.sql). Each records in
 * `<schema>.hits` that it ran. Needs a superuser; takes a few seconds.
 * Returns how many objects were planted.
 */
export async function plantObjects(client: pg.ClientBase, schema: string): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SET LOCAL search_path = pg_catalog, pg_temp');
    await client.query(await readFile(PLANTER, 'utf8'));
    const rows = (await client.query<{ planted: number }>('SELECT pg_temp.plant_objects($1) AS planted', [schema])).rows;
    await client.query('COMMIT');
    return rows[0]!.planted;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

/** What of the planted objects in `schema` ran, each once with how often ("operator *(integer,double precision) x2"). */
export async function plantedHits(client: pg.ClientBase, schema: string): Promise<string[]> {
  const rows = (await client.query<{ hit: string }>(
    `SELECT h.what || ' x' || count(*) AS hit FROM ${quoteIdent(schema)}.hits h GROUP BY h.what ORDER BY h.what`,
  )).rows;
  return rows.map((r) => r.hit);
}

/** Forgets the hits recorded so far in `schema`. */
export async function clearPlantedHits(client: pg.ClientBase, schema: string): Promise<void> {
  await client.query(`TRUNCATE ${quoteIdent(schema)}.hits`);
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
