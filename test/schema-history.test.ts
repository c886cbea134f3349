import test from 'ava';
import { migrate, shippedMigrations } from '../src/migrate.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
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

test('each migration\'s down undoes exactly its up, and up/down/up gives an identical schema', async (t) => {
  const db = await emptyDatabase();
  const names = await shippedMigrations();
  const snapshots: string[][] = [await schemaSnapshot(db)];
  for (const name of names) {
    const { ran } = await migrate(db.url, { count: 1 });
    t.deepEqual(ran, [name]);
    snapshots.push(await schemaSnapshot(db));
  }
  for (let applied = names.length; applied > 0; applied -= 1) {
    await migrate(db.url, { direction: 'down', count: 1 });
    const name = names[applied - 1]!;
    // Dropping the last migration also drops the migrations table and schema,
    // which is what the empty snapshot describes.
    t.deepEqual(await schemaSnapshot(db), snapshots[applied - 1], `down of ${name}`);
  }
  await migrate(db.url);
  t.deepEqual(await schemaSnapshot(db), snapshots[names.length], 'up after down --all');
});

test('upgrading from the first migration to the latest keeps every call and its priced cost', async (t) => {
  const db = await emptyDatabase();
  await migrate(db.url, { count: 1 });
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
    VALUES ('upgrade', 'model-a', '2025-01-01', 1.25, 10, 0.125);
    INSERT INTO ai_cost.calls (created_at, provider, model, operation, status, tenant_id, feature, request_id,
                               input_tokens, output_tokens, cache_read_tokens, reasoning_tokens, metadata)
    SELECT '2025-06-01'::timestamptz + i * interval '1 minute',
           CASE WHEN i % 5 = 0 THEN 'nobody' ELSE 'upgrade' END, 'model-a', 'chat',
           CASE WHEN i % 7 = 0 THEN 'error' ELSE 'success' END, 'tenant-' || i % 3, 'feature-' || i % 2,
           'req-' || i, 1000 + i, 100 + i, i % 500, i % 50, jsonb_build_object('i', i)
      FROM generate_series(1, 500) AS i;`);
  const before = await db.query<{ request_id: string; cost_micros: string | null; price_id: string | null }>(
    'SELECT request_id, cost_micros, price_id FROM ai_cost.calls ORDER BY request_id');

  await migrate(db.url);

  const after = await db.query<{ request_id: string; cost_micros: string | null; price_id: string | null }>(
    'SELECT request_id, cost_micros, price_id FROM ai_cost.calls ORDER BY request_id');
  t.is(after.length, before.length);
  const priced = before.filter((row) => row.cost_micros !== null);
  t.true(priced.length > 300);
  const afterById = new Map(after.map((row) => [row.request_id, row]));
  for (const row of priced) {
    t.deepEqual(afterById.get(row.request_id), row, `priced history of ${row.request_id} is untouched`);
  }
  t.is(after.filter((row) => row.request_id.startsWith('req-')).length, 500);
});
