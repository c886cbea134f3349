import { readFile } from 'node:fs/promises';
import pg from 'pg';
import type { TestDatabase } from './database.js';

/** Frozen releases: each one's install script and the migrations it recorded as applied. */
export const RELEASES_DIR = new URL('../fixtures/releases/', import.meta.url);

/** What a user of the given release has: its install script run, and its migrations recorded as its migrate up does. */
export async function installRelease(db: TestDatabase, version: string): Promise<void> {
  const dir = new URL(`${version}/`, RELEASES_DIR);
  const script = await readFile(new URL('install.sql', dir), 'utf8');
  const migrations = JSON.parse(await readFile(new URL('migrations.json', dir), 'utf8')) as string[];
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL check_function_bodies = off');
    await client.query(script);
    await client.query(`CREATE TABLE ai_cost_internal.schema_migrations (id SERIAL PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)`);
    for (const name of migrations) {
      await client.query('INSERT INTO ai_cost_internal.schema_migrations (name, run_on) VALUES ($1, now())', [name]);
    }
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}
