import test from 'ava';
import { useTestDatabase } from './support/database.js';

// A provider of our own so the catalog never changes what these tests see.
const db = useTestDatabase(test, {
  setup: (db) => db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok)
    VALUES ('test', 'mini',      '2024-01-01', 0.15, 0.60, 0.075, NULL),
           ('test', 'cachy',     '2024-01-01', 3.00, 15.00, 0.30, 3.75),
           ('test', 'free',      '2024-01-01', 0, 0, 0, 0),
           ('test', 'no-output', '2024-01-01', 0.02, NULL, NULL, NULL)`).then(() => {}),
});

interface Tokens {
  model?: string;
  input?: number | null;
  output?: number | null;
  cacheRead?: number | null;
  cacheWrite?: number | null;
  reasoning?: number | null;
  cached?: boolean;
  createdAt?: string;
}

/** Inserts one call the way any SQL client would and returns what the trigger stored. */
async function insert(tokens: Tokens) {
  const [row] = await db.query<{ cost_micros: string | null; price_id: string | null }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens,
                                cache_write_tokens, reasoning_tokens, cached, created_at)
     VALUES ('test', $1, $2, $3, $4, $5, $6, $7, coalesce($8::timestamptz, now()))
     RETURNING cost_micros, price_id`,
    [tokens.model ?? 'mini', tokens.input ?? null, tokens.output ?? null, tokens.cacheRead ?? null,
      tokens.cacheWrite ?? null, tokens.reasoning ?? null, tokens.cached ?? false, tokens.createdAt ?? null],
  );
  return { cost: row!.cost_micros === null ? null : BigInt(row!.cost_micros), priceId: row!.price_id };
}

test('one input token at $0.15/1M costs 1 micro-dollar (rounded up)', async (t) => {
  t.is((await insert({ input: 1 })).cost, 1n);
});

test('7 input + 3 output at $0.15/$0.60 costs 3 (2.85 rounded up once)', async (t) => {
  t.is((await insert({ input: 7, output: 3 })).cost, 3n);
});

test('components are summed before rounding, not rounded each', async (t) => {
  // 1 uncached input (0.15) + 1 output (0.60) = 0.75 -> 1; rounding each would give 2.
  t.is((await insert({ input: 1, output: 1 })).cost, 1n);
});

test('zero tokens cost 0, and 0 is not NULL', async (t) => {
  const { cost, priceId } = await insert({ input: 0, output: 0 });
  t.is(cost, 0n);
  t.not(priceId, null);
});

test('an unknown model is unpriced: NULL, not 0', async (t) => {
  const { cost, priceId } = await insert({ model: 'no-such-model', input: 1000, output: 10 });
  t.is(cost, null);
  t.is(priceId, null);
});

test('a large call is exact to the micro-dollar', async (t) => {
  // 1,234,567 input at $0.15 = 185,185.05; 765,432 output at $0.60 = 459,259.2 -> 644,444.25 -> 644,445
  t.is((await insert({ input: 1_234_567, output: 765_432 })).cost, 644_445n);
});

test('cache reads and writes are part of input_tokens and priced at their own rates', async (t) => {
  // 10,000 input of which 6,000 cache reads and 1,000 cache writes:
  // 3,000 x 3.00 + 6,000 x 0.30 + 1,000 x 3.75 + 500 x 15.00 = 9,000 + 1,800 + 3,750 + 7,500 = 22,050
  t.is((await insert({ model: 'cachy', input: 10_000, cacheRead: 6_000, cacheWrite: 1_000, output: 500 })).cost, 22_050n);
});

test('reasoning tokens are part of output_tokens: billed once, as output', async (t) => {
  const withReasoning = await insert({ input: 100, output: 1_000, reasoning: 800 });
  const withoutBreakdown = await insert({ input: 100, output: 1_000 });
  t.is(withReasoning.cost, 615n); // 100 x 0.15 + 1,000 x 0.60 = 615
  t.is(withReasoning.cost, withoutBreakdown.cost);
});

test('a used token kind with no price makes the call unpriced', async (t) => {
  // 'mini' has no cache-write price: writing to the cache cannot silently cost 0.
  t.is((await insert({ input: 100, cacheWrite: 50 })).cost, null);
  // 'no-output' prices input only: an embedding with no output is priced...
  t.is((await insert({ model: 'no-output', input: 1_000 })).cost, 20n);
  // ...but output it has no price for is not.
  t.is((await insert({ model: 'no-output', input: 1_000, output: 1 })).cost, null);
});

test('NULL token counts mean not applicable and add nothing', async (t) => {
  t.is((await insert({ input: 1_000, output: null })).cost, 150n);
});

test('a free model costs 0, distinct from unpriced', async (t) => {
  t.is((await insert({ model: 'free', input: 5_000, output: 5_000 })).cost, 0n);
});

test('answers served from the app cache cost 0 whatever their tokens', async (t) => {
  const { cost, priceId } = await insert({ input: 10_000, output: 1_000, cached: true });
  t.is(cost, 0n);
  t.not(priceId, null, 'price_id names the list price of what the call would have cost (computed_cost_micros)');
});

test('a client cannot set its own cost', async (t) => {
  const [row] = await db.query<{ cost_micros: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, cost_micros) VALUES ('test', 'mini', 1, 999999)
     RETURNING cost_micros`);
  t.is(row!.cost_micros, '1');
  const [updated] = await db.query<{ cost_micros: string }>(
    `UPDATE ai_cost.calls SET cost_micros = 0 WHERE cost_micros = 1 AND input_tokens = 1 AND model = 'mini'
     RETURNING cost_micros`);
  t.is(updated!.cost_micros, '1');
});

test('correcting token counts re-prices the call', async (t) => {
  const [row] = await db.query<{ id: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('test', 'mini', 10) RETURNING id`);
  const [updated] = await db.query<{ cost_micros: string }>(
    'UPDATE ai_cost.calls SET input_tokens = 1000000 WHERE id = $1 RETURNING cost_micros', [row!.id]);
  t.is(updated!.cost_micros, '150000');
});

test('cost_micros agrees with ai_cost.cost_micros() called directly', async (t) => {
  const [row] = await db.query<{ cost: string }>(
    `SELECT ai_cost.cost_micros(ai_cost.price_at('test', 'cachy', now()), 10000, 500, 6000, 1000)::text AS cost`);
  t.is(row!.cost, '22050');
});
