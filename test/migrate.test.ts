import test from 'ava';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { migrate, MigrationFailedError, migrationStatus, NewerSchemaError, shippedMigrations } from '../src/migrate.js';
import { runCli } from './support/cli.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';

const cleanups: Array<() => Promise<void>> = [];
test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated: false });
  cleanups.push(() => db.drop());
  return db;
}

/** Every object pg-ai-cost could leave behind in a database. */
async function leftovers(db: TestDatabase): Promise<string[]> {
  const rows = await db.query<{ object: string }>(`
    SELECT 'schema ' || nspname AS object FROM pg_namespace WHERE nspname IN ('ai_cost', 'ai_cost_internal')
    UNION ALL
    SELECT 'relation ' || oid::regclass::text FROM pg_class WHERE relnamespace::regnamespace::text IN ('ai_cost', 'ai_cost_internal')
    UNION ALL
    SELECT 'function ' || oid::regprocedure::text FROM pg_proc WHERE pronamespace::regnamespace::text IN ('ai_cost', 'ai_cost_internal')`)
    .catch(() => [] as Array<{ object: string }>);
  return rows.map((row) => row.object);
}

test('migrate up installs every shipped migration, and again changes nothing', async (t) => {
  const db = await emptyDatabase();
  const first = await migrate(db.url);
  t.deepEqual(first.ran, await shippedMigrations());
  const second = await migrate(db.url);
  t.deepEqual(second.ran, []);
  t.deepEqual((await migrationStatus(db.url)).pending, []);
});

test('two installers at once: one installs, the other waits and finds nothing to do', async (t) => {
  const db = await emptyDatabase();
  const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
  const ran = results.map((r) => r.ran.length).sort();
  t.deepEqual(ran, [0, 0, (await shippedMigrations()).length]);
  const [row] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost_internal.schema_migrations');
  t.is(Number(row!.n), (await shippedMigrations()).length);
});

test('migrate down --all leaves nothing of ai_cost behind, and up works again', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url);
  t.true((await leftovers(db)).length > 5);
  const down = await migrate(db.url, { direction: 'down', count: Infinity });
  t.deepEqual(down.ran, [...(await shippedMigrations())].reverse());
  t.deepEqual(await leftovers(db), []);
  t.deepEqual((await migrationStatus(db.url)).applied, []);
  await migrate(db.url);
  const [row] = await db.query<{ cost: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o-mini', 7, 3) RETURNING cost_micros::text AS cost`);
  t.is(row!.cost, '3');
});

test('migrate down --all uninstalls whatever the ledger holds, and refuses in one line while views of the user\'s read any of it', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url);
  // What an earlier release's schema could not hold, which stepping down through the releases refused.
  await db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off, valid_from, note)
                  VALUES (NULL, 'openai', 12, '2026-04-01', 'OpenAI enterprise agreement 2026')`);
  await db.query('CREATE VIEW public.my_calls AS SELECT id FROM ai_cost.calls');
  await db.query('CREATE VIEW public.my_days AS SELECT day, cost_micros FROM ai_cost.spend_by_day');
  const refused = await runCli(['migrate', 'down', '--all', '--yes', '--database-url', db.url]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^ai-cost: migrate down failed and changed nothing \(uninstalling\): pg-ai-cost was not uninstalled: your views (public\.my_calls, public\.my_days|public\.my_days, public\.my_calls) read its objects; drop them first\n$/);
  t.true((await leftovers(db)).length > 5, 'nothing was dropped');
  await db.query('DROP VIEW public.my_calls, public.my_days');
  const down = await runCli(['migrate', 'down', '--all', '--yes', '--database-url', db.url]);
  t.is(down.code, 0, down.stderr);
  t.notRegex(down.stdout + down.stderr, /note:/, 'nothing for anyone to do after it');
  t.deepEqual(await leftovers(db), []);
});

test('a failing migration leaves the database as it was (one transaction)', async (t) => {
  const db = await emptyDatabase();
  // Make the install fail halfway: a table in the way of one it creates.
  await db.query('CREATE SCHEMA ai_cost; CREATE TABLE ai_cost.calls (x int)');
  await t.throwsAsync(migrate(db.url));
  const [row] = await db.query<{ prices: string | null }>(`SELECT to_regclass('ai_cost.prices')::text AS prices`);
  t.is(row!.prices, null);
});

test('an upgrade whose grants are refused after its steps leaves the database as it was', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url);
  const [last] = (await shippedMigrations()).slice(-1);
  await migrate(db.url, { direction: 'down' });
  // A schema changed by hand: creating the roles, which migrate does after
  // the steps, fails (create_roles, which no step replaces, unlike grant_roles).
  await db.query(`CREATE OR REPLACE FUNCTION ai_cost_internal.create_roles() RETURNS text[] LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'changed by hand'; END $$`);
  const refused = await t.throwsAsync(migrate(db.url), { instanceOf: MigrationFailedError });
  t.regex(refused.message, new RegExp(`^migrate up failed and changed nothing \\(applying ${last}\\): changed by hand`));
  t.deepEqual((await migrationStatus(db.url)).pending, [last], 'the step it was applying is not applied');
  const cli = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(cli.code, 1);
  t.regex(cli.stderr, new RegExp(`^ai-cost: migrate up failed and changed nothing \\(applying ${last}\\): changed by hand \\[SQLSTATE P0001\\]`));
  t.notRegex(cli.stderr, /\n\s+at /, 'one line, no stack');
  t.deepEqual((await migrationStatus(db.url)).pending, [last]);
});

test('an upgrade another session deadlocks is tried again, and after three tries it says so', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url);
  const [last] = (await shippedMigrations()).slice(-1);
  await migrate(db.url, { direction: 'down' });
  // A deadlock detected in migrate's session, for the first `failing` tries
  // (counted by a sequence: nextval is not rolled back with the run).
  const deadlockedTries = async (failing: number) => {
    await db.query(`DROP SEQUENCE IF EXISTS public.grant_tries; CREATE SEQUENCE public.grant_tries`);
    await db.query(`CREATE OR REPLACE FUNCTION ai_cost_internal.create_roles() RETURNS text[] LANGUAGE plpgsql AS
      $$ BEGIN
        IF pg_catalog.nextval('public.grant_tries') <= ${failing} THEN
          RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected';
        END IF;
        RETURN '{}';
      END $$`);
  };
  const tries = async () => (await db.query<{ tries: string }>('SELECT last_value::text AS tries FROM public.grant_tries'))[0]!.tries;

  await deadlockedTries(1);
  t.deepEqual((await migrate(db.url)).ran, [last], 'the second try applies the step');
  t.is(await tries(), '2');

  await migrate(db.url, { direction: 'down' });
  await deadlockedTries(100);
  const refused = await t.throwsAsync(migrate(db.url), { instanceOf: MigrationFailedError });
  t.is(refused.message, `migrate up failed and changed nothing (applying ${last}): deadlock detected [SQLSTATE 40P01]; ` +
    'other sessions kept getting in its way (3 tries): run it again');
  t.is(await tries(), '3');
  t.deepEqual((await migrationStatus(db.url)).pending, [last]);
});

test('installs as a non-superuser that owns the database, as on managed PostgreSQL', async (t) => {
  const suffix = randomBytes(4).toString('hex');
  const role = `owner_${suffix}`;
  const database = `owned_${suffix}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'owner-pw' NOSUPERUSER NOCREATEDB NOCREATEROLE`);
  await admin.query(`CREATE DATABASE ${database} OWNER ${role}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });
  const url = new URL(serverUrl(database));
  url.username = role;
  url.password = 'owner-pw';
  const result = await migrate(url.toString());
  t.deepEqual(result.ran, await shippedMigrations());
  const owner = new pg.Client({ connectionString: url.toString() });
  await owner.connect();
  try {
    const { rows } = await owner.query(
      `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('openai', 'gpt-4o-mini', 1) RETURNING cost_micros::text AS cost`);
    t.is(rows[0].cost, '1');
    const { rows: superuser } = await owner.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    t.false(superuser[0].rolsuper);
  } finally {
    await owner.end();
  }
});

test('a database upgraded by a newer package is refused, and nothing is touched', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url);
  await db.query(`INSERT INTO ai_cost_internal.schema_migrations (name, run_on) VALUES ('9999_from_the_future', now())`);
  await t.throwsAsync(migrate(db.url), { instanceOf: NewerSchemaError, message: /9999_from_the_future.*upgrade the package/ });
  await t.throwsAsync(migrate(db.url, { direction: 'down', count: Infinity }), { instanceOf: NewerSchemaError });
  const [row] = await db.query<{ calls: string | null }>(`SELECT to_regclass('ai_cost.calls')::text AS calls`);
  t.is(row!.calls, 'ai_cost.calls');
  const cli = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(cli.code, 1);
  t.regex(cli.stderr.trim(), /^ai-cost: this database has pg-ai-cost migrations this package does not know \(9999_from_the_future\)/);
  t.is(cli.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
});
