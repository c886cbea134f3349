import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

async function price(model: string, validFrom: string, input: number) {
  await db.query(
    `INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
     VALUES ('dated', $1, $2, $3, 0)`, [model, validFrom, input]);
}

async function costAt(model: string, createdAt: string): Promise<string | null> {
  const [row] = await db.query<{ cost_micros: string | null }>(
    `INSERT INTO ai_cost.calls (provider, model, created_at, input_tokens)
     VALUES ('dated', $1, $2, 1000000) RETURNING cost_micros`, [model, createdAt]);
  return row!.cost_micros;
}

async function validity(model: string) {
  return db.query<{ valid_from: Date; valid_to: Date | null }>(
    `SELECT valid_from, valid_to FROM ai_cost.prices WHERE provider = 'dated' AND model = $1 ORDER BY valid_from`, [model]);
}

test('a new price ends the previous one at its valid_from', async (t) => {
  await price('m1', '2025-01-01T00:00:00Z', 1);
  await price('m1', '2025-06-01T00:00:00Z', 2);
  const rows = await validity('m1');
  t.is(rows.length, 2);
  t.deepEqual(rows[0]!.valid_to, new Date('2025-06-01T00:00:00Z'));
  t.is(rows[1]!.valid_to, null);
});

test('a call keeps the price in force at its created_at, before and after a change', async (t) => {
  await price('m2', '2025-01-01T00:00:00Z', 1);
  await price('m2', '2025-06-01T00:00:00Z', 2);
  t.is(await costAt('m2', '2025-05-31T23:59:59.999Z'), '1000000');
  t.is(await costAt('m2', '2025-06-01T00:00:00Z'), '2000000'); // valid_from is inclusive
  t.is(await costAt('m2', '2024-12-31T23:59:59Z'), null); // before any price: unpriced
});

test('a back-dated price slots in between and ends where the next one starts', async (t) => {
  await price('m3', '2025-01-01T00:00:00Z', 1);
  await price('m3', '2025-09-01T00:00:00Z', 3);
  await price('m3', '2025-05-01T00:00:00Z', 2);
  const rows = await validity('m3');
  t.deepEqual(rows.map((r) => r.valid_to?.toISOString() ?? null),
    ['2025-05-01T00:00:00.000Z', '2025-09-01T00:00:00.000Z', null]);
  t.is(await costAt('m3', '2025-06-15T00:00:00Z'), '2000000');
});

test('overlapping validity is impossible', async (t) => {
  await price('m4', '2025-01-01T00:00:00Z', 1);
  const same = await t.throwsAsync(price('m4', '2025-01-01T00:00:00Z', 5));
  t.regex(same!.message, /prices for one model.* must not overlap in time/);
  const overlapping = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.prices (provider, model, valid_from, valid_to, input_per_mtok)
     VALUES ('dated', 'm4', '2024-06-01', '2025-03-01', 9)`));
  t.regex(overlapping!.message, /must not overlap/);
});

test('price rows are history: deleting one is refused with a hint', async (t) => {
  await price('m5', '2025-01-01T00:00:00Z', 1);
  const error = await t.throwsAsync(db.query(`DELETE FROM ai_cost.prices WHERE provider = 'dated' AND model = 'm5'`));
  t.regex(error!.message, /history and cannot be deleted/);
  t.is((await validity('m5')).length, 1);
});

test('negative prices are refused', async (t) => {
  const error = await t.throwsAsync(price('m6', '2025-01-01T00:00:00Z', -1));
  t.regex(error!.message, /prices must not be negative/);
});

test('the starter catalog prices the flagship models of OpenAI, Anthropic and Google now', async (t) => {
  const rows = await db.query<{ provider: string; models: string }>(
    `SELECT provider, count(*)::text AS models FROM ai_cost.prices
      WHERE valid_from <= now() AND (valid_to IS NULL OR valid_to > now())
        AND provider IN ('openai', 'anthropic', 'google') AND checked_on IS NOT NULL
      GROUP BY provider ORDER BY provider`);
  t.deepEqual(rows.map((r) => r.provider), ['anthropic', 'google', 'openai']);
  for (const row of rows) t.true(Number(row.models) >= 3, `${row.provider} has ${row.models} priced models`);
});
