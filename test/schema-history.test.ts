import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { migrate, shippedMigrations } from '../src/migrate.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { installRelease, RELEASES_DIR } from './support/releases.js';
import { schemaSnapshot } from './support/schema-snapshot.js';

const databases: TestDatabase[] = [];
test.after.always(async () => {
  for (const db of databases) await db.drop();
});

async function emptyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated: false });
  databases.push(db);
  return db;
}

const SQL_DIR = new URL('../sql/', import.meta.url);

// The tests that install, upgrade and uninstall run one at a time: each is
// one long transaction over every role's grants, and three at once, each in
// its database, were seen to deadlock on PostgreSQL 15.

test('sql/ defines every table, view, function and aggregate once, in one file', async (t) => {
  const files = (await readdir(SQL_DIR)).filter((file) => file.endsWith('.sql'));
  const definedIn = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(new URL(file, SQL_DIR), 'utf8');
    const pattern = /CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(?:MATERIALIZED\s+VIEW|VIEW|FUNCTION|PROCEDURE|AGGREGATE|TABLE)\s+(ai_cost(?:_internal)?\.\w+)(\s*\([^)]*\))?/gi;
    for (const match of text.matchAll(pattern)) {
      // Overloads are one object each: tell them apart by their argument types.
      const name = `${match[1]}${(match[2] ?? '').replace(/\s+/g, '').replace(/\w+(?=\s|,|\))/g, '')}`;
      definedIn.set(name, [...(definedIn.get(name) ?? []), file]);
    }
  }
  t.true(definedIn.size > 100, `found ${definedIn.size} definitions`);
  const twice = [...definedIn].filter(([, where]) => where.length > 1).map(([name, where]) => `${name} in ${where.join(', ')}`);
  t.deepEqual(twice, []);
});

test.serial('migrate up, down --all and up again gives an identical schema, and down --all leaves an empty database', async (t) => {
  const db = await emptyDatabase();
  const empty = await schemaSnapshot(db);
  await migrate(db.url);
  const installed = await schemaSnapshot(db);
  t.true(installed.length > 500);
  await migrate(db.url, { direction: 'down', count: Infinity });
  t.deepEqual(await schemaSnapshot(db), empty);
  await migrate(db.url);
  t.deepEqual(await schemaSnapshot(db), installed);
});

/** Every row a user keeps in pg-ai-cost: calls, prices, rollups, budgets, audit. */
async function userData(db: TestDatabase): Promise<Record<string, string[]>> {
  const tables = ['ai_cost.calls', 'ai_cost.prices', 'ai_cost.tenant_discounts', 'ai_cost.model_aliases',
    'ai_cost.budgets', 'ai_cost.budget_alerts', 'ai_cost.calls_hourly', 'ai_cost.conversations_hourly',
    'ai_cost_internal.dimensions_daily', 'ai_cost_internal.activity_hourly', 'ai_cost.reprice_runs', 'ai_cost.reprice_audit'];
  const data: Record<string, string[]> = {};
  for (const table of tables) {
    const rows = await db.query<{ row: string }>(`SELECT to_jsonb(t)::text AS row FROM ${table} t ORDER BY 1`);
    data[table] = rows.map((r) => r.row);
  }
  return data;
}

/** The built-in catalog as a database holds it: every catalog price row (without ids and insert times) and alias. */
async function catalogData(db: TestDatabase): Promise<Record<string, string[]>> {
  const prices = await db.query<{ row: string }>(`
    SELECT (to_jsonb(p) - 'id' - 'created_at')::text AS row FROM ai_cost.prices p WHERE p.catalog IS NOT NULL ORDER BY 1`);
  const aliases = await db.query<{ row: string }>(`
    SELECT to_jsonb(a)::text AS row FROM ai_cost.model_aliases a WHERE a.note = 'built-in catalog' ORDER BY 1`);
  return { prices: prices.map((r) => r.row), aliases: aliases.map((r) => r.row) };
}

/** The rows of `after` with only the columns the same table had in `before`: what a column added since leaves unchanged. */
function keepKeysOf(after: Record<string, string[]>, before: Record<string, string[]>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(after).map(([table, rows]) => {
    const kept = new Set(Object.keys(JSON.parse(before[table]?.[0] ?? '{}') as object));
    return [table, rows.map((row) => JSON.stringify(Object.fromEntries(
      Object.entries(JSON.parse(row) as Record<string, unknown>).filter(([column]) => kept.has(column)))))
      .sort()];
  }));
}

test.serial('every frozen release, upgraded with data in place, equals a fresh install and keeps every row', async (t) => {
  const releases = (await readdir(RELEASES_DIR)).sort();
  t.true(releases.includes('0.1.0'), 'release 0.1.0 is frozen in test/fixtures/releases');
  const fresh = await emptyDatabase();
  await migrate(fresh.url);
  const current = await schemaSnapshot(fresh);

  for (const version of releases) {
    const db = await emptyDatabase();
    await installRelease(db, version);
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
      VALUES ('upgrade', 'model-a', '2025-01-01', 1.25, 10, 0.125);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('tenant-1', 'upgrade', 10);
      INSERT INTO ai_cost.calls (created_at, provider, model, operation, status, tenant_id, user_id, feature,
                                 conversation_id, request_id, input_tokens, output_tokens, cache_read_tokens,
                                 reasoning_tokens, total_ms, metadata)
      SELECT '2025-06-01'::timestamptz + i * interval '7 minutes',
             CASE WHEN i % 5 = 0 THEN 'nobody' ELSE 'upgrade' END, 'model-a', 'chat',
             CASE WHEN i % 7 = 0 THEN 'error' ELSE 'success' END, 'tenant-' || i % 3, 'user-' || i % 4,
             'feature-' || i % 2, 'conversation-' || i % 10, 'req-' || i, 1000 + i, 100 + i, i % 500, i % 50,
             20 + i, jsonb_build_object('i', i)
        FROM generate_series(1, 500) AS i;
      INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
      VALUES ('tenant 1 monthly', 'tenant', 'tenant-1', 'month', 1000000);
      SELECT * FROM ai_cost.refresh();
      INSERT INTO ai_cost.calls (provider, model, input_tokens, request_id) VALUES ('upgrade', 'model-a', 10, 'pending');`);
    const before = await userData(db);
    t.true(before['ai_cost.calls']!.length === 501 && before['ai_cost.calls_hourly']!.length > 100);

    const { ran } = await migrate(db.url);
    const shipped = await shippedMigrations();
    const frozen = JSON.parse(await readFile(new URL(`${version}/migrations.json`, RELEASES_DIR), 'utf8')) as string[];
    t.deepEqual(ran, shipped.filter((name) => !frozen.includes(name)), `${version}: the upgrade runs the steps since the release`);
    t.deepEqual(await schemaSnapshot(db), current, `${version} upgraded equals a fresh install`);
    const after = keepKeysOf(await userData(db), before);
    t.deepEqual(
      Object.fromEntries(Object.entries(after).map(([table, rows]) => [table, rows.filter((row) => keepKeysOf(before, before)[table]!.includes(row))])),
      keepKeysOf(before, before), `${version}: no row lost or changed by the upgrade`);
    // What an upgrade may add: the price rows and aliases of a newer catalog,
    // the reprice runs that backfill the calls they price, and the rows a
    // rollup gains for a new dimension of the calls already folded.
    const added = (table: string) => after[table]!.length - before[table]!.length;
    t.deepEqual(
      Object.keys(after).filter((table) => added(table) !== 0),
      ['ai_cost.prices', 'ai_cost.model_aliases', 'ai_cost_internal.dimensions_daily', 'ai_cost.reprice_runs']
        .filter((table) => added(table) !== 0),
      `${version}: rows added to no other table`);
    t.deepEqual(await catalogData(db), await catalogData(fresh), `${version} upgraded has the prices and aliases of a fresh install`);
    // Counts a rollup gained in an upgrade are filled from the calls already folded.
    t.deepEqual(
      await db.query(`SELECT day, value, unpriced_successes FROM ai_cost_internal.dimensions_daily
                       WHERE dimension = 'provider' AND unpriced_successes <> 0 ORDER BY 1, 2`),
      await db.query(`SELECT date_trunc('day', created_at, 'UTC') AS day, provider AS value, count(*) AS unpriced_successes
                        FROM ai_cost.calls WHERE cost_micros IS NULL AND status = 'success' AND request_id <> 'pending'
                       GROUP BY 1, 2 ORDER BY 1, 2`),
      `${version}: unpriced successes per day`);
    t.deepEqual(
      await db.query(`SELECT day, value, calls, cost_micros FROM ai_cost_internal.dimensions_daily
                       WHERE dimension = 'model_id' ORDER BY 1, 2`),
      await db.query(`SELECT date_trunc('day', created_at, 'UTC') AS day, model AS value, count(*) AS calls,
                             coalesce(sum(cost_micros), 0) AS cost_micros
                        FROM ai_cost.calls WHERE request_id <> 'pending' GROUP BY 1, 2 ORDER BY 1, 2`),
      `${version}: calls and spend per model id and day`);
    t.deepEqual(
      await db.query(`SELECT hour, sum(unpriced_calls) AS unpriced_calls FROM ai_cost_internal.activity_hourly
                       GROUP BY 1 HAVING sum(unpriced_calls) <> 0 ORDER BY 1`),
      await db.query(`SELECT date_trunc('hour', created_at, 'UTC') AS hour, count(*)::numeric AS unpriced_calls
                        FROM ai_cost.calls WHERE cost_micros IS NULL AND request_id <> 'pending' GROUP BY 1 ORDER BY 1`),
      `${version}: unpriced calls per hour`);
    // The compiled price book is the one the new compiler writes, which the new trigger reads
    // (each compile numbers its slots afresh: the rows are compared, not their bounds).
    const book = `SELECT ${['price_book_rates', 'price_book_plain_rates', 'price_book_ids']
      .map((array) => `regexp_replace(ai_cost_internal.${array}()::text, '^[^=]*=', '') AS ${array}`).join(', ')}`;
    const upgradedBook = await db.query(book);
    await db.query('SELECT ai_cost_internal.compile_price_book()');
    t.deepEqual(upgradedBook, await db.query(book), `${version}: the upgrade compiles the price book again`);
    // The call captured on insert before the upgrade and one read by id after it are each folded once.
    await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, request_id) VALUES ('upgrade', 'model-a', 20, 'after-upgrade')`);
    await db.query('SELECT * FROM ai_cost.refresh()');
    t.deepEqual(
      await db.query('SELECT sum(calls)::int AS calls, sum(input_tokens)::bigint::text AS input FROM ai_cost.calls_hourly'),
      await db.query('SELECT count(*)::int AS calls, sum(input_tokens)::bigint::text AS input FROM ai_cost.calls'),
      `${version}: every call is in the rollups once after the upgrade`);
  }
});

test.serial('migrate down from the current schema, one step at a time, passes through each frozen release', async (t) => {
  const releases = (await readdir(RELEASES_DIR)).sort();
  const shipped = await shippedMigrations();
  const db = await emptyDatabase();
  await migrate(db.url);
  for (const version of [...releases].reverse()) {
    const frozen = JSON.parse(await readFile(new URL(`${version}/migrations.json`, RELEASES_DIR), 'utf8')) as string[];
    const steps = shipped.length - frozen.length;
    if (steps === 0) continue;
    const { ran } = await migrate(db.url, { direction: 'down', count: steps });
    t.deepEqual(ran, shipped.slice(frozen.length).reverse());
    const release = await emptyDatabase();
    await installRelease(release, version);
    t.deepEqual(await schemaSnapshot(db), await schemaSnapshot(release), `down to ${version}`);
    return;
  }
  t.pass('no migration since the last frozen release');
});
