import test from 'ava';
import { recordCall } from '../src/index.js';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// More than one billed unit in one call: extra_units on a call (unit:
// quantity) beside units and unit, priced by a price's unit and unit_price
// or its unit_prices. Every cost is worked out by hand; each case is priced
// by a single INSERT (the trigger), one for a tenant whose 0% discount keeps
// it from the compiled book, and by ai_cost.insert_calls, which must agree.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, unit, unit_price, unit_prices)
      VALUES ('bu', 'searcher', '2025-01-01', 3, 15, NULL, NULL, '{"web_search": 0.01}'),
             ('bu', 'imager', '2025-01-01', 5, 40, 'image', 0.04, '{"web_search": 0.025, "second": 0.0001}'),
             ('bu', 'cheap', '2025-01-01', 0.15, 0.6, NULL, NULL, '{"query": 0.0000025}'),
             ('bu', 'plain', '2025-01-01', 1, 2, NULL, NULL, NULL);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'bu', 0), ('acme', 'bu', 10);
      INSERT INTO ai_cost.service_tiers (name, provider, multiplier) VALUES ('fast', 'bu', 2);`);
  },
});

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  units?: number;
  unit?: string;
  extra_units?: Record<string, number>;
}

const { insert, everyWay } = pricingPaths<Usage>(db, 'bu', ['input_tokens', 'output_tokens', 'units', 'unit', 'extra_units']);

test('web searches beside tokens, and images beside searches, each at its own unit price, rounded up once', async (t) => {
  t.deepEqual(await everyWay([
    ['searcher', { input_tokens: 2_001, output_tokens: 301, extra_units: { web_search: 3 } }],
    ['imager', { input_tokens: 1_001, units: 2, unit: 'image', extra_units: { web_search: 1 } }],
    ['imager', { input_tokens: 1, output_tokens: 1, extra_units: { second: 2.5, web_search: 0 } }],
    ['cheap', { input_tokens: 7, output_tokens: 3, extra_units: { query: 1 } }],
  ]), [
    // 2,001 x 3 = 6,003; 301 x 15 = 4,515; 3 searches x $0.01 = 30,000: 40,518
    everywhere('40518'),
    // 1,001 x 5 = 5,005; 2 images x $0.04 = 80,000; 1 search x $0.025 = 25,000: 110,005
    everywhere('110005'),
    // 5 + 40; 2.5 seconds x $0.0001 = 250; 0 searches cost 0: 295
    everywhere('295'),
    // 7 x 0.15 = 1.05; 3 x 0.6 = 1.8; 1 query x $0.0000025 = 2.5: 5.35 -> 6 (each part rounded up first: 2 + 2 + 3 = 7)
    everywhere('6'),
  ]);
});

test('a call\'s units are priced by unit_prices too, and a call of units alone has usage', async (t) => {
  t.deepEqual(await everyWay([
    ['searcher', { input_tokens: 1_000, units: 4, unit: 'web_search' }],
    ['searcher', { extra_units: { web_search: 2 } }],
  ]), [
    // 1,000 x 3 = 3,000; 4 searches x $0.01 = 40,000: 43,000
    everywhere('43000'),
    // 2 searches, no tokens: 20,000
    everywhere('20000'),
  ]);
});

test('a billed unit without a price leaves the call unpriced, naming the unit; one of quantity 0 needs none', async (t) => {
  const reasons = async (model: string, usage: Usage) =>
    [(await insert(model, usage)).reason, (await insert(model, usage, 'by-lookup')).reason];
  t.deepEqual(await reasons('searcher', { input_tokens: 10, extra_units: { web_search: 1, search_context: 2 } }),
    ['no price per search_context', 'no price per search_context']);
  t.deepEqual(await reasons('plain', { input_tokens: 10, extra_units: { web_search: 1 } }),
    ['no price per web_search', 'no price per web_search']);
  t.deepEqual(await reasons('searcher', { input_tokens: 10, units: 1, unit: 'image' }),
    ['no price per image', 'no price per image']);
  t.deepEqual(await everyWay([['plain', { input_tokens: 10, extra_units: { web_search: 0 } }]]), [everywhere('10')]);
});

test('a discount and a tier\'s multiple apply to every unit', async (t) => {
  const usage = { input_tokens: 1_000, extra_units: { web_search: 3 } };
  // (3,000 + 30,000) x 0.9 = 29,700
  t.is((await insert('searcher', usage, 'acme')).cost, '29700');
  const [fast] = await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens, extra_units)
    VALUES ('bu', 'searcher', 'fast', 1000, '{"web_search": 3}') RETURNING cost_micros::text AS cost`);
  // 2 x (3,000 + 30,000) = 66,000
  t.is(fast!.cost, '66000');
});

test('CHECK constraints refuse extra units that are not unit: quantity, or repeat the unit', async (t) => {
  const refused = async (extra: string, unit: string | null = null) => (await t.throwsAsync(db.query(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, units, unit, extra_units)
    VALUES ('bu', 'searcher', 10, CASE WHEN $2::text IS NOT NULL THEN 1 END, $2, $1::jsonb)`, [extra, unit])))!.message;
  t.regex(await refused('[1, 2]'), /"extra_units must map units to quantities from 0 to 1e12"/);
  t.regex(await refused('{"web_search": -1}'), /"extra_units must map units to quantities from 0 to 1e12"/);
  t.regex(await refused('{"web_search": "three"}'), /"extra_units must map units to quantities from 0 to 1e12"/);
  t.regex(await refused('{"": 1}'), /"extra_units must map units to quantities from 0 to 1e12"/);
  t.regex(await refused('{"web_search": 1e13}'), /"extra_units must map units to quantities from 0 to 1e12"/);
  t.regex(await refused('{"web_search": 1}', 'web_search'), /"extra_units must not repeat unit"/);
  const price = async (unitPrices: string, unit: string | null = null) => (await t.throwsAsync(db.query(`
    INSERT INTO ai_cost.prices (provider, model, input_per_mtok, unit, unit_price, unit_prices)
    VALUES ('bu', 'bad-' || md5($1 || coalesce($2, '')), 1, $2, CASE WHEN $2::text IS NOT NULL THEN 1 END, $1::jsonb)`, [unitPrices, unit])))!.message;
  t.regex(await price('{"web_search": -0.01}'), /"unit_prices must map units to USD per unit below 1000000"/);
  t.regex(await price('{"web_search": "0.01"}'), /"unit_prices must map units to USD per unit below 1000000"/);
  t.regex(await price('{"image": 0.04}', 'image'), /"a unit is priced once: in unit or in unit_prices"/);
});

const explainRows = 'SELECT component, quantity::text, usd_rate::text, micros::text FROM ai_cost.explain_cost';

test('explain_cost shows every billed unit as a component of its own', async (t) => {
  const rows = await db.query<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null }>(
    `${explainRows}('bu', 'imager', now(), input_tokens => 1001, units => 2, unit => 'image',
                    extra_units => '{"web_search": 1, "second": 2.5}')`);
  t.deepEqual(rows.slice(1).map((r) => [r.component, r.quantity, r.usd_rate, r.micros]), [
    ['input', '1001', '5', '5005'],
    ['per image', '2', '0.04', '80000.00'],
    ['per second', '2.5', '0.0001', '250.00000'],
    ['per web_search', '1', '0.025', '25000.000'],
    ['total', null, null, '110255'],
  ]);
  const [call] = await db.query<{ id: string }>(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, extra_units) VALUES ('bu', 'searcher', 10, '{"web_search": 1, "nope": 1}')
    RETURNING id::text`);
  const recorded = await db.query<{ component: string; detail: string | null }>(
    'SELECT component, detail FROM ai_cost.explain_cost($1::bigint)', [call!.id]);
  t.deepEqual(recorded, [{ component: 'unpriced', detail: 'no price per nope' }]);
  const bad = await t.throwsAsync(db.query(`${explainRows}('bu', 'searcher', now(), input_tokens => 1, extra_units => '[1]')`));
  t.regex(bad!.message, /^extra_units must be a JSON object of unit: quantity/);
});

test('recordCall and the recorder\'s batches write extra units', async (t) => {
  const recorded = await recordCall(db.pool, {
    provider: 'bu', model: 'searcher', inputTokens: 2_001, outputTokens: 301, extraUnits: { web_search: 3 },
  });
  t.is(recorded.costMicros, 40518n);
  await t.throwsAsync(() => recordCall(db.pool, { provider: 'bu', model: 'searcher', units: 1, unit: 'web_search', extraUnits: { web_search: 1 } }),
    { message: /extraUnits\.web_search: is the unit of units already/ });
});
