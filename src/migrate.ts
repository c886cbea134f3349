import { readdir } from 'node:fs/promises';
import { setTimeout } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runner, type RunnerOption } from 'node-pg-migrate';
import { finishCatalogBackfills, type CatalogBackfill } from './catalog-backfill.js';
import { schemaScript } from './sql-files.js';
import { uninstallLedger } from './uninstall.js';
import { databaseRefusal, inTransaction, withClient, type DatabaseRefusal } from './db.js';

/** The schema users and BI tools read. */
export const SCHEMA = 'ai_cost';
/** The schema of pg-ai-cost's internals, its migrations table included. */
export const INTERNAL_SCHEMA = 'ai_cost_internal';
const MIGRATIONS_TABLE = 'schema_migrations';
/** The roles the install creates (sql/150_roles.sql). */
const ROLES = ['ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader'];

/**
 * Advisory lock key held while migrating ("aicost" in ASCII). Two installers
 * started at once queue on it; the second then finds nothing left to run.
 */
const MIGRATION_LOCK = 0x6169636f7374;

/**
 * Errors that come from another session, not from the schema: a deadlock,
 * or a serialization failure. The roles of pg-ai-cost are the server's, so
 * installs and upgrades in two databases of one server at once can deadlock
 * on them. The run is one transaction and rolled back whole, so it is tried
 * again, up to ATTEMPTS times in all, after a short random wait.
 */
const CONFLICTS_WITH_OTHER_SESSIONS = new Set(['40P01', '40001']);
const ATTEMPTS = 3;
const RETRY_DELAY_MS = 200;
/** The SQLSTATE of a refusal for want of a right: the login is not the one to run migrate. */
const INSUFFICIENT_PRIVILEGE = '42501';
/** RAISE EXCEPTION in pg-ai-cost's own SQL, worded for the user. */
const RAISED_BY_PG_AI_COST = 'P0001';

/** Migrations ship inside the package, next to dist/ and src/, never in the user's cwd. */
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

export type MigrateDirection = 'up' | 'down';

export interface MigrateOptions {
  direction?: MigrateDirection;
  /** How many migrations to revert (down; 1 by default) or apply (up; all by default). */
  count?: number;
  /** Receives node-pg-migrate's progress lines. Silent by default. */
  log?: (line: string) => void;
  /**
   * Up: carry out the backfills that catalog updates registered, once the
   * migrations are committed (true by default). With false they wait for
   * the next migrate up, or for `ai-cost reprice --resume <run>`.
   */
  backfill?: boolean;
}

export interface MigrateResult {
  /** Names of the migrations applied (up) or reverted (down), in order. */
  ran: string[];
  /** True when this run installed the schema from sql/ into a database without it. */
  installed: boolean;
  /** What the database said along the way (roles it could not create, grants it could not give). */
  notices: string[];
  /** Whether pg_cron is installed in this database, so refresh jobs can be scheduled. */
  pgCron: boolean;
  /** The catalog backfills this run carried out (up), each a reprice run audited in ai_cost.reprice_audit. */
  backfills: CatalogBackfill[];
}

/** The database holds a pg-ai-cost schema newer than this package knows. */
export class NewerSchemaError extends Error {
  constructor(unknown: string[]) {
    super(`this database has pg-ai-cost migrations this package does not know (${unknown.join(', ')}): ` +
      'it was installed or upgraded by a newer version; upgrade the package');
    this.name = 'NewerSchemaError';
  }
}

/** How ai-cost distribute and ai_cost.partition_calls() have laid out a ledger's calls. */
interface CallsLayout {
  distributed: boolean;
  partitioned: boolean;
}

/**
 * The steps that made a layout of the calls possible, latest first: the
 * Down section of each assumes a ledger not laid out that way.
 */
const LAYOUT_STEPS = [
  { step: '0037_partitioned_ledgers_distribute', layout: 'partitioned and distributed over Citus', holds: (l: CallsLayout) => l.distributed && l.partitioned },
  { step: '0016_distribution_over_citus', layout: 'distributed over Citus', holds: (l: CallsLayout) => l.distributed },
];

/** migrate down would take a distributed ledger below the step that made its layout possible. */
export class DistributedDowngradeError extends Error {
  constructor(count: number, step: string, layout: string) {
    super(`migrate down refused: reverting ${count} step(s) would take this ledger, ${layout}, below ${step}, ` +
      'whose Down section cannot undo ai-cost distribute; revert fewer steps, or uninstall with migrate down --all --yes');
    this.name = 'DistributedDowngradeError';
  }
}

/**
 * A migration step the database refused: a schema changed by hand, or a
 * step that does not fit this database. The run was one transaction, so
 * nothing of it was written.
 */
export class MigrationFailedError extends Error {
  /** steps: those it was applying or reverting; none for an install or an uninstall. */
  constructor(direction: 'up' | 'down', steps: string[], refusal: DatabaseRefusal, cause: unknown) {
    const doing = steps.length > 0 ? `${direction === 'up' ? 'applying' : 'reverting'} ${steps.join(', ')}` : direction === 'up' ? 'installing' : 'uninstalling';
    const failed = `migrate ${direction} failed and changed nothing (${doing}): ${refusal.message}`;
    // The uninstall's own refusal (views of the user's) says what to do.
    super(doing === 'uninstalling' && refusal.code === RAISED_BY_PG_AI_COST ? failed : `${failed} [SQLSTATE ${refusal.code}]; ` +
      (CONFLICTS_WITH_OTHER_SESSIONS.has(refusal.code)
        ? `other sessions kept getting in its way (${ATTEMPTS} tries): run it again`
        : refusal.code === INSUFFICIENT_PRIVILEGE
          ? 'run it as the owner of the database'
          : 'has the pg-ai-cost schema been changed by hand? `ai-cost migrate status` lists the steps'), { cause });
    this.name = 'MigrationFailedError';
  }
}

/** Notices that are not news to the user, left out of what migrate reports. */
const QUIET_NOTICES = [
  // PostgreSQL's own chatter about idempotent statements.
  /already exists, skipping|does not exist, skipping|is already a member of role|^drop cascades to/,
  // Citus's, on objects that depend on local tables and so stay on the
  // coordinator: the ledger is local there until ai-cost distribute.
  /that is not in Citus' metadata$|has dependency on unsupported object/,
];

/**
 * Installs, upgrades or uninstalls pg-ai-cost, in one transaction, under an
 * advisory lock. Needs no superuser: the database owner is enough.
 *
 * A database without pg-ai-cost gets the current schema straight from sql/,
 * and every shipped migration is recorded as applied (as pg-boss and pgmq
 * install). A database with it runs only the migrations it lacks: the upgrade
 * steps since its release. Reverting everything uninstalls: both schemas and
 * the migrations table go.
 */
export async function migrate(databaseUrl: string, options: MigrateOptions = {}): Promise<MigrateResult> {
  const direction = options.direction ?? 'up';
  const log = options.log ?? (() => {});
  const notices: string[] = [];
  return withClient(databaseUrl, async (client) => {
    client.on('notice', (notice) => {
      if (!QUIET_NOTICES.some((quiet) => quiet.test(notice.message ?? ''))) notices.push(notice.message ?? '');
    });
    // The install binds every view and default to the operators and functions
    // it finds, as the installing user: nothing on a user's path may take part.
    // withClient pins the search_path at connection start; a pooler may drop
    // that option, and migrate needs a session of its own anyway (it holds a
    // session-level advisory lock), so a SET holds for the whole run.
    await client.query('SET search_path = pg_catalog, pg_temp');
    // On a Citus coordinator, Citus copies each role the install grants
    // rights to onto the workers the first time a database uses it: it
    // alters a role there already (made by another database of the cluster)
    // to match, with ALTER ROLE ... NOSUPERUSER, and grants it its
    // memberships again as whoever granted them, both of which only a
    // superuser may do. pg-ai-cost never changes its roles' attributes, and
    // roles are the cluster's: Citus only creates the roles missing, and once
    // all of them exist it copies none, so that a database owner that is not
    // a superuser can install there.
    await client.query(`
      SELECT pg_catalog.set_config('citus.enable_alter_role_propagation', 'off', false),
             pg_catalog.set_config('citus.enable_create_role_propagation',
                                   CASE WHEN (SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = ANY ($1)) = cardinality($1)
                                        THEN 'off' ELSE pg_catalog.current_setting('citus.enable_create_role_propagation') END, false)
        FROM pg_catalog.pg_extension
       WHERE extname = 'citus'`, [ROLES]);
    await client.query('SELECT pg_catalog.pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const runnerOptions: RunnerOption = {
        dbClient: client,
        dir: MIGRATIONS_DIR,
        direction,
        count: options.count ?? (direction === 'down' ? 1 : Infinity),
        migrationsTable: MIGRATIONS_TABLE,
        migrationsSchema: INTERNAL_SCHEMA,
        createMigrationsSchema: true,
        singleTransaction: true,
        noLock: true,
        checkOrder: true,
        logger: { debug: () => {}, info: log, warn: log, error: log },
      };
      let ran: string[] | undefined;
      let installed = false;
      for (let attempt = 1; ran === undefined; attempt += 1) {
        const applied = await appliedMigrations(client);
        const unknown = applied.filter((name) => !SHIPPED.has(name));
        if (unknown.length > 0) throw new NewerSchemaError(unknown);
        const steps = direction === 'up' ? [...SHIPPED].filter((name) => !applied.includes(name)) : applied.slice(-(options.count ?? 1));
        const uninstalling = direction === 'down' && applied.length > 0 && steps.length === applied.length;
        try {
          if (direction === 'up' && applied.length === 0) {
            ran = await install(client, runnerOptions);
            installed = true;
          } else if (uninstalling) {
            ran = await uninstallLedger(client, applied);
          } else if (direction === 'down') {
            // Only reverting through a step that made a layout possible can meet what distribute() made.
            const crossed = LAYOUT_STEPS.filter(({ step }) => steps.includes(step));
            if (crossed.length > 0) {
              const layout = await callsLayout(client);
              const refused = crossed.find(({ holds }) => holds(layout));
              if (refused) throw new DistributedDowngradeError(steps.length, refused.step, refused.layout);
            }
            ran = (await runner(runnerOptions)).map((migration) => migration.name);
          } else {
            // The steps and the grants after them commit together: a grant
            // refused after the steps leaves the database as it was.
            ran = await inTransaction(client, async () => {
              const migrations = await runner({ ...runnerOptions, dbClient: withoutTransactionControl(client) });
              await grantRoles(client);
              await restoreClusterFunctionSettings(client);
              return migrations.map((migration) => migration.name);
            });
          }
        } catch (error) {
          // A database error here is the database refusing a step; anything
          // else (a bug, a lost connection) keeps its own message and stack.
          const refusal = databaseRefusal(error);
          if (!refusal) throw error;
          // The run was rolled back whole, so it can start again.
          if (CONFLICTS_WITH_OTHER_SESSIONS.has(refusal.code) && attempt < ATTEMPTS) {
            await setTimeout(RETRY_DELAY_MS * attempt * (1 + Math.random()));
            continue;
          }
          throw new MigrationFailedError(direction, applied.length === 0 || uninstalling ? [] : steps, refusal, error);
        }
      }
      if (direction === 'down') {
        await dropWhenEmpty(client);
        await restoreClusterFunctionSettings(client);
      }
      const pgCron = await hasPgCron(client);
      // pg_cron 1.4 reloads its jobs when told that cron.job changed, but a
      // transaction with as many catalog changes as an install overflows the
      // queue that tells it, and then it keeps the jobs it had: scheduling
      // again in a transaction of its own makes it see them.
      if (direction === 'up' && pgCron && ran.length > 0) await client.query('SELECT ai_cost.schedule_refresh()');
      const backfills = direction === 'up' && (options.backfill ?? true) ? await finishCatalogBackfills(client) : [];
      return { ran, installed, notices, pgCron, backfills };
    } finally {
      await client.query('SELECT pg_catalog.pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
    }
  });
}

/** The current schema from sql/, with every shipped migration recorded as applied, in one transaction. */
async function install(client: pg.Client, runnerOptions: RunnerOption): Promise<string[]> {
  const script = await schemaScript();
  return inTransaction(client, async () => {
    // SQL functions may name objects of files that come later in sql/; their
    // bodies are checked when they first run instead, as pg_dump's scripts do.
    await client.query('SET LOCAL check_function_bodies = off');
    await client.query(script);
    const recorded = await runner({ ...runnerOptions, direction: 'up', count: Infinity, fake: true });
    // One refresh, so that ai_cost.refresh_status dates the (empty) rollups
    // and materialized views from the install rather than showing no refresh.
    await client.query('SELECT ai_cost.refresh()');
    return recorded.map((migration) => migration.name);
  });
}

/**
 * Creates the roles it may and grants every existing role its rights, again:
 * a role an administrator created since the last run gets them now. Says
 * (through a NOTICE) which roles it could not create, and how to.
 */
async function grantRoles(client: pg.Client): Promise<void> {
  if (!(await functionExists(client, 'ai_cost_internal.grant_roles()'))) return;
  await client.query('SELECT ai_cost_internal.create_roles()');
  await client.query('SELECT ai_cost_internal.grant_roles()');
}

/** Whether the schema at hand (of any release) has the function `signature`. */
async function functionExists(client: pg.Client, signature: string): Promise<boolean> {
  const { rows: [found] } = await client.query<{ exists: boolean }>(
    'SELECT pg_catalog.to_regprocedure($1) IS NOT NULL AS exists', [signature]);
  return found?.exists ?? false;
}

/**
 * The client as node-pg-migrate's runner sees it inside a transaction of
 * ours: its own BEGIN, COMMIT and ROLLBACK (singleTransaction) are left out,
 * so what follows the steps commits or rolls back with them.
 */
function withoutTransactionControl(client: pg.Client): pg.Client {
  const query = (text: unknown, values?: unknown) =>
    typeof text === 'string' && /^(BEGIN|COMMIT|ROLLBACK)$/.test(text)
      ? Promise.resolve({ rows: [], rowCount: 0 })
      : client.query(text as string, values as unknown[]);
  return new Proxy(client, { get: (target, property) => (property === 'query' ? query : Reflect.get(target, property)) });
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
}

/** Which shipped migrations this database has applied and which it still lacks. */
export async function migrationStatus(databaseUrl: string): Promise<MigrationStatus> {
  const shipped = await shippedMigrations();
  const applied = await withClient(databaseUrl, appliedMigrations);
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
const SHIPPED = new Set(await shippedMigrations());

async function appliedMigrations(client: pg.ClientBase): Promise<string[]> {
  const table = await client.query<{ exists: boolean }>(
    'SELECT pg_catalog.to_regclass($1) IS NOT NULL AS exists', [`${INTERNAL_SCHEMA}.${MIGRATIONS_TABLE}`]);
  if (!table.rows[0]?.exists) return [];
  const rows = await client.query<{ name: string }>(
    `SELECT name FROM ${INTERNAL_SCHEMA}.${MIGRATIONS_TABLE} ORDER BY run_on, id`);
  return rows.rows.map((row) => row.name);
}

/**
 * On a ledger distributed over Citus, gives its functions back the Citus
 * settings `ai-cost distribute` gave them: a step that replaces one of
 * them drops its setting (sql/145_distribution.sql lists them). Nothing on
 * one server, or on a schema older than that list.
 */
async function restoreClusterFunctionSettings(client: pg.Client): Promise<void> {
  if (!(await functionExists(client, 'ai_cost_internal.apply_cluster_function_settings()'))) return;
  if (await callsAreDistributed(client)) await client.query('SELECT ai_cost_internal.apply_cluster_function_settings()');
}

/**
 * Whether ai_cost.calls is distributed over Citus, as the schema itself
 * says (ai_cost.distribute() makes ai_cost_internal.calls_are_distributed()
 * true); false on a schema older than distribution, which lacks it.
 */
async function callsAreDistributed(client: pg.Client): Promise<boolean> {
  if (!(await functionExists(client, 'ai_cost_internal.calls_are_distributed()'))) return false;
  const { rows: [answer] } = await client.query<{ distributed: boolean }>(
    'SELECT ai_cost_internal.calls_are_distributed() AS distributed');
  return answer?.distributed ?? false;
}

/** Whether the calls are distributed, and whether partitioned, as the schema says (false where it is older than either). */
async function callsLayout(client: pg.Client): Promise<CallsLayout> {
  const partitioned = await functionExists(client, 'ai_cost_internal.calls_partitioned()') &&
    (await client.query<{ partitioned: boolean }>('SELECT ai_cost_internal.calls_partitioned() AS partitioned')).rows[0]!.partitioned;
  return { distributed: await callsAreDistributed(client), partitioned };
}

/** After the last migration is reverted: the migrations table and the internal schema go too. */
async function dropWhenEmpty(client: pg.Client): Promise<void> {
  if ((await appliedMigrations(client)).length > 0) return;
  await client.query(`DROP TABLE IF EXISTS ${INTERNAL_SCHEMA}.${MIGRATIONS_TABLE}`);
  // RESTRICT: if the user keeps objects of their own there, leave it be.
  await client.query(`DROP SCHEMA IF EXISTS ${INTERNAL_SCHEMA} RESTRICT`).catch(() => {});
}

async function hasPgCron(client: pg.Client): Promise<boolean> {
  const result = await client.query<{ installed: boolean }>(
    "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') AS installed",
  );
  return result.rows[0]?.installed ?? false;
}
