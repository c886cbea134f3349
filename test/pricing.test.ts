import test from 'ava';
import { useTestDatabase } from './support/database.js';

// Prices of a provider of our own, so the built-in catalog never changes what
// these tests see (the catalog gets its own checks at the end).
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, service_tier, above_input_tokens, tenant_id, valid_from,
        input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
        audio_input_per_mtok, audio_output_per_mtok, unit, unit_price)
      VALUES ('test', 'sonnet',   'standard', 0,      NULL,    '2024-01-01', 3,   15,   0.30, 3.75, 6,    NULL, NULL, NULL, NULL),
             ('test', 'sonnet',   'standard', 200000, NULL,    '2024-01-01', 6,   22.5, 0.60, 7.5,  12,   NULL, NULL, NULL, NULL),
             ('test', 'sonnet',   'batch',    0,      NULL,    '2024-01-01', 1.5, 7.5,  NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('test', 'sonnet',   'standard', 0,      'bigco', '2024-01-01', 1,   5,    NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('test', 'sonnet-20240101', 'standard', 0, NULL,  '2024-01-01', 10,  30,   NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('test', 'voice',    'standard', 0,      NULL,    '2024-01-01', 2.5, 10,   NULL, NULL, NULL, 40,   80,   NULL, NULL),
             ('test', 'imager',   'standard', 0,      NULL,    '2024-01-01', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'image', 0.04),
             ('test', 'dated',    'standard', 0,      NULL,    '2025-01-01', 1,   2,    NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('test', 'dated',    'standard', 0,      NULL,    '2025-06-01', 2,   4,    NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    await db.query(`INSERT INTO ai_cost.model_aliases (provider, alias, model) VALUES
      ('test', 'sonnet-20250101', 'sonnet'), ('test', 'sonnet-20240101', 'sonnet')`);
    await db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('acme', 'test', 20)`);
  },
});

interface Call {
  provider?: string;
  model?: string;
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
  cacheWrite1h?: number;
  reasoning?: number;
  audioIn?: number;
  audioOut?: number;
  units?: number;
  unit?: string;
  tier?: string;
  tenant?: string;
  at?: string;
}

/** Inserts one call as any SQL client would; returns what the trigger stored. */
async function insert(c: Call) {
  const [row] = await db.query<{ id: string; cost_micros: string | null; price_id: string | null; unpriced_reason: string | null }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       cache_write_1h_tokens, reasoning_tokens, audio_input_tokens, audio_output_tokens, units, unit, service_tier,
       tenant_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, coalesce($13, 'standard'), $14, coalesce($15::timestamptz, now()))
     RETURNING id, cost_micros, price_id, unpriced_reason`,
    [c.provider ?? 'test', c.model ?? 'sonnet', c.input ?? null, c.output ?? null, c.cacheRead ?? null, c.cacheWrite ?? null,
      c.cacheWrite1h ?? null, c.reasoning ?? null, c.audioIn ?? null, c.audioOut ?? null, c.units ?? null, c.unit ?? null,
      c.tier ?? null, c.tenant ?? null, c.at ?? null]);
  return { id: row!.id, cost: row!.cost_micros === null ? null : BigInt(row!.cost_micros), priceId: row!.price_id, reason: row!.unpriced_reason };
}

async function priceId(model: string, tier = 'standard', above = 0, tenant: string | null = null) {
  const [row] = await db.query<{ id: string }>(
    `SELECT id FROM ai_cost.prices WHERE provider = 'test' AND model = $1 AND service_tier = $2
        AND above_input_tokens = $3 AND tenant_id IS NOT DISTINCT FROM $4`, [model, tier, above, tenant]);
  return row!.id;
}

test('cache reads, 5-minute and 1-hour cache writes each at their own rate', async (t) => {
  // 10,000 input = 5,000 uncached + 2,000 cache reads + 3,000 cache writes (1,000 of them 1-hour):
  // 5,000 x 3 + 2,000 x 0.30 + 2,000 x 3.75 + 1,000 x 6 + 1,000 output x 15
  // = 15,000 + 600 + 7,500 + 6,000 + 15,000 = 44,100
  const call = await insert({ input: 10_000, cacheRead: 2_000, cacheWrite: 3_000, cacheWrite1h: 1_000, output: 1_000 });
  t.is(call.cost, 44_100n);
  t.is(call.priceId, await priceId('sonnet'));
});

test('reasoning tokens are output tokens, billed once', async (t) => {
  // 100 x 3 + 1,000 x 15 = 15,300, with or without the reasoning breakdown.
  t.is((await insert({ input: 100, output: 1_000, reasoning: 800 })).cost, 15_300n);
  t.is((await insert({ input: 100, output: 1_000 })).cost, 15_300n);
});

test('audio input and output tokens at the audio rates', async (t) => {
  // 1,000 input of which 600 audio, 500 output of which 200 audio:
  // 400 x 2.5 + 600 x 40 + 300 x 10 + 200 x 80 = 1,000 + 24,000 + 3,000 + 16,000 = 44,000
  t.is((await insert({ model: 'voice', input: 1_000, audioIn: 600, output: 500, audioOut: 200 })).cost, 44_000n);
});

test('a long-context tier prices the whole request above its threshold, not at it', async (t) => {
  // 200,000 input is not above 200,000: 200,000 x 3 + 1,000 x 15 = 600,000 + 15,000 = 615,000
  const at = await insert({ input: 200_000, output: 1_000 });
  t.is(at.cost, 615_000n);
  t.is(at.priceId, await priceId('sonnet'));
  // 200,001 input: every token at the higher rate: 200,001 x 6 + 1,000 x 22.5 = 1,200,006 + 22,500 = 1,222,506
  const above = await insert({ input: 200_001, output: 1_000 });
  t.is(above.cost, 1_222_506n);
  t.is(above.priceId, await priceId('sonnet', 'standard', 200_000));
});

test('the batch tier has its own price', async (t) => {
  // 10,000 x 1.5 + 1,000 x 7.5 = 15,000 + 7,500 = 22,500
  const call = await insert({ input: 10_000, output: 1_000, tier: 'batch' });
  t.is(call.cost, 22_500n);
  t.is(call.priceId, await priceId('sonnet', 'batch'));
});

test('per-image charges, and only for the unit priced', async (t) => {
  // 3 images x $0.04 = $0.12 = 120,000 micro-dollars
  t.is((await insert({ model: 'imager', units: 3, unit: 'image' })).cost, 120_000n);
  const seconds = await insert({ model: 'imager', units: 3, unit: 'second' });
  t.is(seconds.cost, null);
  t.is(seconds.reason, 'no price per second');
});

test('an alias is priced as its model; a snapshot with its own price is not', async (t) => {
  // sonnet-20250101 is an alias of sonnet: 100 x 3 + 1,000 x 15 = 15,300 at sonnet's price row
  const alias = await insert({ model: 'sonnet-20250101', input: 100, output: 1_000 });
  t.is(alias.cost, 15_300n);
  t.is(alias.priceId, await priceId('sonnet'));
  // sonnet-20240101 is also listed as an alias, but has a price of its own, which wins:
  // 100 x 10 + 1,000 x 30 = 31,000
  const own = await insert({ model: 'sonnet-20240101', input: 100, output: 1_000 });
  t.is(own.cost, 31_000n);
  t.is(own.priceId, await priceId('sonnet-20240101'));
  // It has no batch price of its own, so there the alias applies: 10,000 x 1.5 + 1,000 x 7.5 = 22,500
  t.is((await insert({ model: 'sonnet-20240101', input: 10_000, output: 1_000, tier: 'batch' })).cost, 22_500n);
  // An unknown dated id is not guessed at.
  const unknown = await insert({ model: 'sonnet-20990101', input: 100 });
  t.is(unknown.cost, null);
  t.is(unknown.reason, 'no price for model test/sonnet-20990101');
});

test('a tenant discount and a tenant price come ahead of the list price', async (t) => {
  // acme has 20% off test: (100 x 3 + 1,000 x 15) x 0.8 = 15,300 x 0.8 = 12,240
  const discounted = await insert({ input: 100, output: 1_000, tenant: 'acme' });
  t.is(discounted.cost, 12_240n);
  t.is(discounted.priceId, await priceId('sonnet'));
  const [{ discount_id }] = await db.query<{ discount_id: string }>('SELECT discount_id FROM ai_cost.calls WHERE id = $1', [discounted.id]) as [{ discount_id: string }];
  t.not(discount_id, null);
  // bigco has its own price: 100 x 1 + 1,000 x 5 = 5,100
  const own = await insert({ input: 100, output: 1_000, tenant: 'bigco' });
  t.is(own.cost, 5_100n);
  t.is(own.priceId, await priceId('sonnet', 'standard', 0, 'bigco'));
  // Anyone else pays list: 15,300
  t.is((await insert({ input: 100, output: 1_000, tenant: 'other' })).cost, 15_300n);
});

test('effective dating: each call at the price in force at its created_at', async (t) => {
  // 1,000 in + 1,000 out: before the change 1,000 x 1 + 1,000 x 2 = 3,000; from it 1,000 x 2 + 1,000 x 4 = 6,000
  t.is((await insert({ model: 'dated', input: 1_000, output: 1_000, at: '2025-05-31T23:59:59Z' })).cost, 3_000n);
  t.is((await insert({ model: 'dated', input: 1_000, output: 1_000, at: '2025-06-01T00:00:00Z' })).cost, 6_000n);
  const before = await insert({ model: 'dated', input: 1_000, at: '2024-12-31T00:00:00Z' });
  t.is(before.cost, null);
  t.is(before.reason, 'no price for model test/dated in force at the time of the call');
});

test('unpriced calls say why', async (t) => {
  t.is((await insert({ provider: 'nosuch', model: 'x', input: 1 })).reason, 'unknown provider nosuch');
  t.is((await insert({ model: 'nope', input: 1 })).reason, 'no price for model test/nope');
  t.is((await insert({ model: 'voice', input: 1, tier: 'flex' })).reason, 'no flex-tier price for model test/voice');
  t.is((await insert({ model: 'voice', input: 10, cacheRead: 5 })).reason, 'no price for cache read tokens');
  t.is((await insert({ model: 'imager', input: 10 })).reason, 'no price for input tokens');
});

test('strict mode refuses calls a provider cannot price', async (t) => {
  await db.query(`INSERT INTO ai_cost.providers (id, name, strict) VALUES ('strictco', 'Strict Co', true)`);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('strictco', 'known', '2024-01-01', 1, 1)`);
  t.is((await insert({ provider: 'strictco', model: 'known', input: 1_000 })).cost, 1_000n);
  await t.throwsAsync(insert({ provider: 'strictco', model: 'unknown', input: 1 }),
    { message: 'cannot price call of strictco/unknown: no price for model strictco/unknown' });
});

test('explain_cost shows the price row, each component and the stored total', async (t) => {
  const call = await insert({ input: 10_000, cacheRead: 2_000, cacheWrite: 3_000, cacheWrite1h: 1_000, output: 1_000, tenant: 'acme' });
  const rows = await db.query<{ component: string; micros: string | null; detail: string | null }>(
    'SELECT component, micros::text, detail FROM ai_cost.explain_cost($1::bigint)', [call.id]);
  t.deepEqual(rows.map((r) => r.component),
    ['price', 'input', 'cache read', 'cache write (5 min)', 'cache write (1 hour)', 'output', 'total']);
  t.regex(rows[0]!.detail!, /tenant acme discount \d+: 20% off/);
  // 44,100 x 0.8 = 35,280, as the trigger stored it
  t.is(rows.at(-1)!.micros, '35280');
  t.is(call.cost, 35_280n);
});

test('the catalog prices dated snapshots by their own price, and Bedrock profiles by pattern', async (t) => {
  // gpt-4o-2024-08-06 is gpt-4o: 1,000 x 2.5 + 1,000 x 10 = 12,500; 2024-05-13 has its own: 1,000 x 5 + 1,000 x 15 = 20,000
  t.is((await insert({ provider: 'openai', model: 'gpt-4o-2024-08-06', input: 1_000, output: 1_000 })).cost, 12_500n);
  t.is((await insert({ provider: 'openai', model: 'gpt-4o-2024-05-13', input: 1_000, output: 1_000 })).cost, 20_000n);
  // Regional Claude Sonnet 4.5 on Bedrock costs 10% more: 1,000 x 3.3 = 3,300
  t.is((await insert({ provider: 'amazon', model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', input: 1_000 })).cost, 3_300n);
  // eu.amazon.nova-micro-v1:0 has no row: the profile pattern prices it as amazon.nova-micro-v1:0
  // (1,000 x 0.035 + 1,000 x 0.14 = 175)
  t.is((await insert({ provider: 'amazon', model: 'eu.amazon.nova-micro-v1:0', input: 1_000, output: 1_000 })).cost, 175n);
  // Gemini 2.5 Pro above 200k prompt tokens: 200,001 x 2.5 + 1,000 x 15 = 500,002.5 + 15,000 -> 515,003
  t.is((await insert({ provider: 'google', model: 'gemini-2.5-pro', input: 200_001, output: 1_000 })).cost, 515_003n);
  const [counts] = await db.query<{ models: string; providers: string; unchecked: string }>(
    `SELECT count(DISTINCT (provider, model)) AS models, count(DISTINCT provider) AS providers,
            count(*) FILTER (WHERE checked_on IS NULL OR source IS NULL) AS unchecked
       FROM ai_cost.prices WHERE provider <> 'test' AND provider <> 'strictco'`);
  t.true(Number(counts!.models) >= 150);
  t.true(Number(counts!.providers) >= 10);
  t.is(counts!.unchecked, '0');
});
