import { randomBytes } from 'node:crypto';
import type { TestFn } from 'ava';
import pg from 'pg';
import type { DatabasePool } from 'slonik';
import { createPool } from '../../src/db.js';

/** Set by test/run.ts: where the test server is and which template holds a migrated schema. */
function env(name: 'AI_COST_TEST_SERVER_URL' | 'AI_COST_TEST_TEMPLATE'): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts a server first`);
  return value;
}

export function serverUrl(database = 'postgres'): string {
  const url = new URL(env('AI_COST_TEST_SERVER_URL'));
  url.pathname = `/${database}`;
  return url.toString();
}

/** True when the test server preloads pg_cron. */
export const serverHasPgCron = process.env.AI_COST_TEST_PG_CRON === '1';

export interface TestDatabase {
  name: string;
  url: string;
  /** A slonik pool (bigint for int8, numeric as string). */
  pool: DatabasePool;
  /** Plain pg for untyped checks; int8 arrives as a string. */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  drop(): Promise<void>;
}

/**
 * A database of its own for one test file: cloned from the migrated template
 * (fast), or empty when `migrated` is false (for install tests).
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const template = options.migrated === false ? 'template0' : env('AI_COST_TEST_TEMPLATE');
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  const url = serverUrl(name);
  const pool = await createPool(url, 4);
  const raw = new pg.Pool({ connectionString: url, max: 4 });
  return {
    name,
    url,
    pool,
    query: async (text, params) => (await raw.query(text, params)).rows,
    drop: async () => {
      await pool.end();
      await raw.end();
      await dropDatabase(name);
    },
  };
}

/**
 * Drops a test database once the connections just closed have gone. Backends
 * take a moment to exit after a client says goodbye; terminating them with
 * FORCE in that moment sends the client "terminating connection due to
 * administrator command", which fails the test file. So wait first, and use
 * FORCE only for a connection a test left open.
 */
async function dropDatabase(name: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    try {
      await adminQuery(`DROP DATABASE IF EXISTS ${name}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006') throw error; // object_in_use
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl() });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * Gives a test file its own database: created before its tests (then `setup`
 * runs, e.g. to insert prices), dropped after them. The returned handle is
 * filled in by the `before` hook, since ava wants tests declared synchronously.
 */
export function useTestDatabase(
  test: TestFn,
  options: { migrated?: boolean; setup?: (db: TestDatabase) => Promise<void> } = {},
): TestDatabase {
  const handle = {} as TestDatabase;
  test.before(async () => {
    Object.assign(handle, await createTestDatabase(options));
    await options.setup?.(handle);
  });
  test.after.always(async () => {
    await handle.drop?.();
  });
  return handle;
}
