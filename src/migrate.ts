import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner, type RunnerOption } from 'node-pg-migrate';

/** The schema that holds every pg-ai-cost object, including its migrations table. */
export const SCHEMA = 'ai_cost';
const MIGRATIONS_TABLE = 'schema_migrations';

/**
 * Advisory lock key held while migrating ("aicost" in ASCII). Two installers
 * started at once queue on it; the second then finds nothing left to run.
 */
const MIGRATION_LOCK = 0x6169636f7374;

/** Migrations ship inside the package, next to dist/ and src/, never in the user's cwd. */
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

export type MigrateDirection = 'up' | 'down';

export interface MigrateOptions {
  direction?: MigrateDirection;
  /** How many migrations to apply or revert; all by default. */
  count?: number;
  /** Receives node-pg-migrate's progress lines. Silent by default. */
  log?: (line: string) => void;
}

export interface MigrateResult {
  /** Names of the migrations applied (up) or reverted (down), in order. */
  ran: string[];
  /** Whether pg_cron is installed in this database, so refresh jobs can be scheduled. */
  pgCron: boolean;
}

/**
 * Brings the ai_cost schema up to date (or reverts it), in one transaction,
 * under an advisory lock. Needs no superuser: the database owner is enough.
 * Reverting everything also drops the migrations table and the schema.
 */
export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const direction = options.direction ?? 'up';
  const log = options.log ?? (() => {});
  const runnerOptions: RunnerOption = {
    databaseUrl,
    dir: MIGRATIONS_DIR,
    direction,
    count: options.count ?? Infinity,
    migrationsTable: MIGRATIONS_TABLE,
    migrationsSchema: SCHEMA,
    createMigrationsSchema: true,
    singleTransaction: true,
    lockValue: MIGRATION_LOCK,
    advisoryLockMode: 'wait',
    checkOrder: true,
    logger: { debug: () => {}, info: log, warn: log, error: log },
  };
  const ran = await runner(runnerOptions);
  return withClient(databaseUrl, async (client) => {
    if (direction === 'down') await dropEmptySchema(client);
    return { ran: ran.map((m) => m.name), pgCron: await hasPgCron(client) };
  });
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

/** Which shipped migrations this database has applied and which it still lacks. */
export async function migrationStatus(databaseUrl: string): Promise<MigrationStatus> {
  const shipped = await shippedMigrations();
  const applied = await withClient(databaseUrl, async (client) => {
    const table = await client.query<{ exists: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS exists',
      [`${SCHEMA}.${MIGRATIONS_TABLE}`],
    );
    if (!table.rows[0]?.exists) return [];
    const rows = await client.query<{ name: string }>(
      `SELECT name FROM ${SCHEMA}.${MIGRATIONS_TABLE} ORDER BY run_on, id`,
    );
    return rows.rows.map((row) => row.name);
  });
  return { applied, pending: shipped.filter((name) => !applied.includes(name)) };
}

/** Migration names shipped with this version of the package, in order. */
export async function shippedMigrations(): Promise<string[]> {
  const files = await readdir(MIGRATIONS_DIR);
  return files
    .filter((file) => /^\d+_.*\.sql$/.test(file))
    .sort()
    .map((file) => file.replace(/\.sql$/, ''));
}

async function dropEmptySchema(client: pg.Client): Promise<void> {
  const left = await client.query<{ count: string }>(
    `SELECT count(*) FROM ${SCHEMA}.${MIGRATIONS_TABLE}`,
  ).catch(() => undefined);
  if (left && left.rows[0]?.count === '0') {
    // RESTRICT: if the user keeps objects of their own in ai_cost, leave it be.
    await client.query(`DROP TABLE ${SCHEMA}.${MIGRATIONS_TABLE}`);
    await client.query(`DROP SCHEMA ${SCHEMA} RESTRICT`).catch(() => {});
  }
}

async function hasPgCron(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ installed: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') AS installed",
  );
  return result.rows[0]?.installed ?? false;
}

async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
