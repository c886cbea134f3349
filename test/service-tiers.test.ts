import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// Service tiers as data (ai_cost.service_tiers): a tier priced by price rows
// of its own, a tier priced as a multiple of the standard price (Anthropic's
// fast mode), multiples that change over time, the narrowest tier row
// deciding, and calls and prices on a tier nobody declared. Every cost is
// worked out by hand; each case is priced by a single INSERT on the book
// path, one on the lookup path (a tenant with a 0% discount has no compiled
// book) and by ai_cost.insert_calls, which must all agree.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, above_input_tokens, input_per_mtok, output_per_mtok,
                                  cache_read_per_mtok, cache_write_per_mtok)
      VALUES ('st', 'opus', '2025-01-01', 0, 5, 25, 0.5, 6.25),
             ('st', 'opus', '2025-01-01', 200000, 10, 37.5, 1, 12.5),
             ('st', 'haiku', '2025-01-01', 0, 1, 5, 0.1, 1.25),
             ('st', 'sonnet', '2025-01-01', 0, 3, 15, 0.3, 3.75);
      INSERT INTO ai_cost.model_aliases (provider, alias, model) VALUES ('st', 'opus-20250101', 'opus');
      -- fast: 6x standard for opus, 2x for every other model of st, and
      -- price rows of its own for sonnet; ultra: 1.5x for every provider.
      INSERT INTO ai_cost.service_tiers (name, provider, model, multiplier, source) VALUES
        ('fast', 'st', 'opus', 6, 'https://platform.claude.com/docs/en/build-with-claude/fast-mode'),
        ('fast', 'st', NULL, 2, NULL),
        ('fast', 'st', 'sonnet', NULL, NULL),
        ('ultra', NULL, NULL, 1.5, NULL);
      INSERT INTO ai_cost.prices (provider, model, service_tier, valid_from, input_per_mtok, output_per_mtok)
      VALUES ('st', 'sonnet', 'fast', '2025-01-01', 7, 33);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'st', 0), ('acme', 'st', 10);
      -- slow: 0.5x until June 2025, 0.4x from then on (the second row ends the first).
      INSERT INTO ai_cost.service_tiers (name, provider, model, multiplier, valid_from) VALUES ('slow', 'st', NULL, 0.5, '-infinity');
      INSERT INTO ai_cost.service_tiers (name, provider, model, multiplier, valid_from) VALUES ('slow', 'st', NULL, 0.4, '2025-06-01');
      INSERT INTO ai_cost.providers (id, name, strict) VALUES ('st-strict', 'Strict', true);
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('st-strict', 'm', '2025-01-01', 1, 1);`);
  },
});

interface Usage {
  service_tier: string;
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  cache_write_tokens?: number;
}

const COLUMNS = ['service_tier', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens'] as const;
const { insert, batchOf, costsOf, everyWay } = pricingPaths<Usage>(db, 'st', COLUMNS);

const CALL = { input_tokens: 10_001, cache_read_tokens: 4_000, cache_write_tokens: 1_000, output_tokens: 1_501 };

test('a tier priced as a multiple of standard bills every rate at that multiple, summed exactly and rounded up once', async (t) => {
  t.deepEqual(await everyWay([
    ['opus', { service_tier: 'standard', ...CALL }],
    ['opus', { service_tier: 'fast', ...CALL }],
    ['opus-20250101', { service_tier: 'fast', ...CALL }],
    ['haiku', { service_tier: 'fast', ...CALL }],
    ['haiku', { service_tier: 'ultra', ...CALL }],
  ]), [
    // standard: 5,001 x 5 = 25,005; 4,000 x 0.5 = 2,000; 1,000 x 6.25 = 6,250; 1,501 x 25 = 37,525: 70,780
    everywhere('70780'),
    // fast, 6x: 5,001 x 30 = 150,030; 4,000 x 3 = 12,000; 1,000 x 37.5 = 37,500; 1,501 x 150 = 225,150: 424,680
    everywhere('424680'),
    // an alias of opus is opus, on its tier too
    everywhere('424680'),
    // fast for the rest of st, 2x: 5,001 x 2 = 10,002; 4,000 x 0.2 = 800; 1,000 x 2.5 = 2,500; 1,501 x 10 = 15,010: 28,312
    everywhere('28312'),
    // ultra, 1.5x for every provider: 5,001 x 1.5 = 7,501.5; 4,000 x 0.15 = 600; 1,000 x 1.875 = 1,875;
    // 1,501 x 7.5 = 11,257.5: 21,234 (rounding each part up first would give 21,235)
    everywhere('21234'),
  ]);
});

test('a multiple applies to long-context prices, and a model with price rows of its own for the tier keeps them', async (t) => {
  t.deepEqual(await everyWay([
    ['opus', { service_tier: 'fast', input_tokens: 250_000, output_tokens: 1_000 }],
    ['sonnet', { service_tier: 'fast', input_tokens: 1_000, output_tokens: 100 }],
  ]), [
    // above 200k input: 250,000 x 10 x 6 = 15,000,000; 1,000 x 37.5 x 6 = 225,000: 15,225,000
    everywhere('15225000'),
    // sonnet's own fast rows, not 2x its standard price: 1,000 x 7 + 100 x 33 = 10,300
    everywhere('10300'),
  ]);
  // Its own fast rows have no cache read rate: unpriced, not 2x standard's.
  t.is((await insert('sonnet', { service_tier: 'fast', input_tokens: 1_000, cache_read_tokens: 500 })).reason, 'no price for cache read tokens');
});

test('a tenant discount applies to the tier\'s multiple, once', async (t) => {
  const call = await insert('opus', { service_tier: 'fast', input_tokens: 1_000, output_tokens: 100 }, 'acme');
  // (1,000 x 30 + 100 x 150) x 0.9 = 45,000 x 0.9 = 40,500
  t.is(call.cost, '40500');
});

test('a call on a tier nobody declared is unpriced with its reason, never priced as standard', async (t) => {
  const usage = { service_tier: 'warp', input_tokens: 1_000, output_tokens: 100 };
  const byTrigger = await insert('opus', usage);
  t.deepEqual([byTrigger.cost, byTrigger.reason], [null, 'unknown service tier warp for provider st']);
  t.is((await insert('opus', usage, 'by-lookup')).reason, 'unknown service tier warp for provider st');
  const { json, ids } = batchOf([['opus', usage]]);
  await db.query('SELECT ai_cost.insert_calls($1::jsonb)', [json]);
  t.deepEqual(await costsOf((text, params) => db.query(text, params), ids), [null]);
  const [batched] = await db.query<{ reason: string }>('SELECT unpriced_reason AS reason FROM ai_cost.calls WHERE request_id = $1', [ids[0]]);
  t.is(batched!.reason, 'unknown service tier warp for provider st');
  // A tier declared for another provider is unknown to this one.
  await db.query("INSERT INTO ai_cost.service_tiers (name, provider, multiplier) VALUES ('elsewhere', 'someone-else', 2)");
  t.is((await insert('opus', { ...usage, service_tier: 'elsewhere' })).reason, 'unknown service tier elsewhere for provider st');
  // A known tier without a price for the model says so.
  t.is((await insert('haiku', { ...usage, service_tier: 'batch' })).reason, 'no batch-tier price for model st/haiku');
  // A strict provider refuses the call.
  const refused = await t.throwsAsync(db.query(
    "INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens) VALUES ('st-strict', 'm', 'warp', 10)"));
  t.regex(refused!.message, /cannot price call of st-strict\/m: unknown service tier warp for provider st-strict/);
});

test('a price for a tier nobody declared is refused, and a tier prices use cannot be removed', async (t) => {
  const refused = await t.throwsAsync(db.query(
    "INSERT INTO ai_cost.prices (provider, model, service_tier, input_per_mtok) VALUES ('st', 'haiku', 'warp', 1)"));
  t.is(refused!.message, 'unknown service tier warp for provider st');
  // The provider-wide fast row still names fast for st: the model's row may go.
  await t.notThrowsAsync(db.query("DELETE FROM ai_cost.service_tiers WHERE name = 'fast' AND model = 'sonnet'"));
  const lastOne = await t.throwsAsync(db.query("DELETE FROM ai_cost.service_tiers WHERE name = 'batch'"));
  t.regex(lastOne!.message, /^service tier batch is used by prices of .+: it cannot be removed while they name it$/);
  const shape = await t.throwsAsync(db.query("INSERT INTO ai_cost.service_tiers (name, multiplier) VALUES ('Fast Mode', 2)"));
  t.regex(shape!.message, /tier name must be 1-100 lowercase letters, digits, _ or -/);
  const standard = await t.throwsAsync(db.query("INSERT INTO ai_cost.service_tiers (name, provider, multiplier) VALUES ('standard', 'st', 2)"));
  t.regex(standard!.message, /the standard tier is priced by its own price rows/);
  // Put back what this test removed, for the tests after it.
  await db.query("INSERT INTO ai_cost.service_tiers (name, provider, model) VALUES ('fast', 'st', 'sonnet')");
});

test('a multiple is effective-dated: a call is priced at the multiple in force at its created_at', async (t) => {
  const [first] = await db.query<{ valid_to: string }>(
    "SELECT valid_to::date::text AS valid_to FROM ai_cost.service_tiers WHERE name = 'slow' AND multiplier = 0.5");
  t.is(first!.valid_to, '2025-06-01');
  const at = async (when: string) => (await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, created_at, input_tokens, output_tokens)
    VALUES ('st', 'haiku', 'slow', $1, 1000, 100) RETURNING cost_micros::text AS cost`, [when]))[0]!.cost;
  // (1,000 x 1 + 100 x 5) = 1,500 x 0.5 = 750 before June, x 0.4 = 600 after
  t.is(await at('2025-03-01'), '750');
  t.is(await at('2025-07-01'), '600');
  t.is(await at('2025-06-01'), '600');
});

test('the price book compiles a multiple tier at its multiplied rates, and the trigger prices it without the lookup', async (t) => {
  const [book] = await db.query<{ input: string; output: string; cache_read: string; price_id: string }>(`
    SELECT input_rate::text AS input, output_rate::text AS output, cache_read_rate::text AS cache_read, price_id::text
      FROM ai_cost_internal.price_book WHERE key = 'st fast opus'`);
  const [standard] = await db.query<{ id: string }>(
    "SELECT id::text FROM ai_cost.prices WHERE provider = 'st' AND model = 'opus' AND service_tier = 'standard' AND above_input_tokens = 0");
  // Picodollars per token: 30, 150 and 3 USD per 1M; the row is the standard price's.
  t.deepEqual(book, { input: '30000000', output: '150000000', cache_read: '3000000', price_id: standard!.id });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN; DELETE FROM ai_cost_internal.price_lookup');
    const { rows: [row] } = await client.query<{ cost: string; price_id: string }>(`
      INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens, output_tokens)
      VALUES ('st', 'opus', 'fast', 1000, 100) RETURNING cost_micros::text AS cost, price_id::text`);
    // 1,000 x 30 + 100 x 150 = 45,000
    t.deepEqual(row, { cost: '45000', price_id: standard!.id });
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
});

const explainRows = 'SELECT component, quantity::text, usd_rate::text, micros::text, detail FROM ai_cost.explain_cost';

test('explain_cost names the tier and its multiple, and shows each component at the multiplied rate', async (t) => {
  const rows = await db.query<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null; detail: string | null }>(
    `${explainRows}('st', 'opus', now(), input_tokens => 10001, cache_read_tokens => 4000, cache_write_tokens => 1000,
                    output_tokens => 1501, service_tier => 'fast')`);
  t.regex(rows[0]!.detail!, /^price row \d+ \(st\/opus, fast tier: 6 x the standard price, base price\) in force /);
  t.deepEqual(rows.slice(1).map((r) => [r.component, r.quantity, r.usd_rate, r.micros]), [
    ['input', '5001', '30', '150030'],
    ['cache read', '4000', '3', '12000'],
    ['cache write (5 min)', '1000', '37.5', '37500.0'],
    ['output', '1501', '150', '225150'],
    ['total', null, null, '424680'],
  ]);
  // At an instant with another multiple, that multiple.
  const slow = await db.query<{ detail: string | null; micros: string | null }>(
    `${explainRows}('st', 'haiku', '2025-03-01', input_tokens => 1000, output_tokens => 100, service_tier => 'slow')`);
  t.regex(slow[0]!.detail!, /slow tier: 0\.5 x the standard price/);
  t.is(slow.at(-1)!.micros, '750');
  const own = await db.query<{ detail: string | null }>(
    `${explainRows}('st', 'sonnet', now(), input_tokens => 1000, service_tier => 'fast')`);
  t.regex(own[0]!.detail!, /^price row \d+ \(st\/sonnet, fast tier, base price\)/);
  const unknown = await db.query<{ component: string; detail: string | null }>(
    `${explainRows}('st', 'opus', now(), input_tokens => 1000, service_tier => 'warp')`);
  t.deepEqual(unknown.map((r) => [r.component, r.detail]), [['unpriced', 'unknown service tier warp for provider st']]);
});

test('the catalog bills Anthropic fast mode at the multiple Anthropic publishes per model', async (t) => {
  const cost = async (model: string, tier: string) => (await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens, output_tokens, cache_read_tokens)
    VALUES ('anthropic', $1, $2, 11000, 1000, 1000) RETURNING cost_micros::text AS cost`, [model, tier]))[0]!.cost;
  // Claude Opus 4.6 standard: 10,000 x 5 + 1,000 x 0.5 + 1,000 x 25 = 75,500; fast, 6x: 453,000
  t.is(await cost('claude-opus-4-6', 'standard'), '75500');
  t.is(await cost('claude-opus-4-6', 'fast'), '453000');
  // Claude Opus 4.8, 2x
  t.is(await cost('claude-opus-4-8', 'fast'), '151000');
  // No fast mode for Haiku: a known tier with no price for the model.
  const [haiku] = await db.query<{ reason: string }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens) VALUES ('anthropic', 'claude-haiku-4-5', 'fast', 10)
    RETURNING unpriced_reason AS reason`);
  t.is(haiku!.reason, 'no fast-tier price for model anthropic/claude-haiku-4-5');
});
