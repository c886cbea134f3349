import test from 'ava';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// A missing rate never silently falls back: a call that uses it is unpriced.
// Where falling back is the provider's published rule, the price declares it
// (rates_from: a rate as a multiple of another rate of the same row), and a
// tier priced at a fraction of standard is a service tier row (batch at 50%).
// Every cost is worked out by hand; each case is priced by the trigger (the
// book, and the lookup for a tenant with a 0% discount) and insert_calls.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, rates_from)
      VALUES ('df', 'undeclared', '2025-01-01', 2, 8, NULL, NULL),
             ('df', 'at-input', '2025-01-01', 2, 8, NULL, '{"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 1}}'),
             -- Anthropic's prompt-caching multipliers: 5-minute writes 1.25x, 1-hour writes 2x, reads 0.1x the input rate.
             ('df', 'claude-like', '2025-01-01', 3, 15, NULL,
              '{"cache_write_per_mtok": {"rate": "input_per_mtok", "times": 1.25},
                "cache_write_1h_per_mtok": {"rate": "input_per_mtok", "times": 2},
                "cache_read_per_mtok": {"rate": "input_per_mtok", "times": 0.1}}');
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'df', 0);
      INSERT INTO ai_cost.service_tiers (name, provider, multiplier) VALUES ('batch', 'df', 0.5);`);
  },
});

interface Usage {
  service_tier?: string;
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  cache_write_tokens?: number;
  cache_write_1h_tokens?: number;
}

const { insert, everyWay } = pricingPaths<Usage>(db, 'df',
  ['service_tier', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'cache_write_1h_tokens']);

const standard = (usage: Omit<Usage, 'service_tier'>): Usage => ({ service_tier: 'standard', ...usage });

test('a missing cache rate is unpriced unless the price declares the fallback', async (t) => {
  const usage = standard({ input_tokens: 10_001, cache_read_tokens: 4_000, output_tokens: 101 });
  t.deepEqual([(await insert('undeclared', usage)).reason, (await insert('undeclared', usage, 'by-lookup')).reason],
    ['no price for cache read tokens', 'no price for cache read tokens']);
  t.deepEqual(await everyWay([['at-input', usage]]), [
    // 6,001 x 2 = 12,002; 4,000 cache reads at the input rate, x 2 = 8,000; 101 x 8 = 808: 20,810
    everywhere('20810'),
  ]);
});

test('rates declared as multiples of the input rate, Anthropic\'s caching rule, are summed exactly and rounded up once', async (t) => {
  t.deepEqual(await everyWay([
    ['claude-like', standard({ input_tokens: 10_003, cache_read_tokens: 5_001, cache_write_tokens: 3_001, cache_write_1h_tokens: 1_000,
      output_tokens: 333 })],
  ]), [
    // input 10,003 - 5,001 - 3,001 = 2,001 x 3 = 6,003; cache read 5,001 x 0.3 = 1,500.3;
    // 5-minute writes 2,001 x 3.75 = 7,503.75; 1-hour writes 1,000 x 6 = 6,000; output 333 x 15 = 4,995:
    // 26,002.05 -> 26,003
    everywhere('26003'),
  ]);
});

test('a tier declared as a fraction of standard prices batch calls; without it they are unpriced', async (t) => {
  t.deepEqual(await everyWay([['at-input', { service_tier: 'batch', input_tokens: 10_001, cache_read_tokens: 4_000, output_tokens: 101 }]]), [
    // half of 20,810
    everywhere('10405'),
  ]);
  await db.query("INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('df-other', 'm', '2025-01-01', 1)");
  const [row] = await db.query<{ reason: string }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens) VALUES ('df-other', 'm', 'batch', 10) RETURNING unpriced_reason AS reason`);
  t.is(row!.reason, 'no batch-tier price for model df-other/m');
});

test('the catalog declares Anthropic\'s batch tier at 50% of standard, and keeps the batch rows it lists', async (t) => {
  const cost = async (model: string, tier: string) => (await db.query<{ cost: string | null }>(`
    INSERT INTO ai_cost.calls (provider, model, service_tier, input_tokens, output_tokens) VALUES ('anthropic', $1, $2, 10000, 1000)
    RETURNING cost_micros::text AS cost`, [model, tier]))[0]!.cost;
  // Claude 3 Haiku lists no batch row: $0.25 and $1.25 per 1M, halved: (2,500 + 1,250) / 2 = 1,875
  t.is(await cost('claude-3-haiku-20240307', 'standard'), '3750');
  t.is(await cost('claude-3-haiku-20240307', 'batch'), '1875');
  // Claude Opus 4.6 has its batch row, $2.50 and $12.50: 25,000 + 12,500 = 37,500
  t.is(await cost('claude-opus-4-6', 'batch'), '37500');
});

test('a declaration is checked: only for a rate the price leaves NULL, from a rate it sets, as a positive multiple', async (t) => {
  const refused = async (rates: number[], declared: string) => (await t.throwsAsync(db.query(`
    INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok, cache_read_per_mtok, rates_from)
    VALUES ('df', 'bad-' || md5($4), $1, $2, $3, $4::jsonb)`, [...rates, declared])))!.message;
  t.is(await refused([1, 2, 0.1], '{"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 1}}'),
    'rates_from: the price sets cache_read_per_mtok itself; declare a rate or set it, not both');
  t.regex(await refused([1, 2, 0.1], '{"cache_reads": {"rate": "input_per_mtok", "times": 1}}'),
    /^rates_from: cache_reads is not a rate \(one of input_per_mtok, /);
  t.is(await refused([1, 2, 0.1], '{"cache_write_per_mtok": {"rate": "audio_input_per_mtok", "times": 1.25}}'),
    'rates_from: cache_write_per_mtok is declared from audio_input_per_mtok, which is not a rate this price sets');
  t.is(await refused([1, 2, 0.1], '{"cache_write_per_mtok": {"rate": "input_per_mtok", "times": 0}}'),
    'rates_from: cache_write_per_mtok must be {"rate": "<rate>", "times": <multiple above 0 and below 1000>}');
  t.is(await refused([1, 2, 0.1], '{"cache_write_per_mtok": {"rate": "input_per_mtok", "times": "1.25"}}'),
    'rates_from: cache_write_per_mtok must be {"rate": "<rate>", "times": <multiple above 0 and below 1000>}');
  t.is(await refused([1, 2, 0.1], '{"cache_write_per_mtok": "input_per_mtok"}'),
    'rates_from: cache_write_per_mtok must be {"rate": "<rate>", "times": <multiple above 0 and below 1000>}');
  // A declared rate is no source: declarations are one step from a rate the row sets.
  t.is(await refused([1, 2, 0.1],
    '{"cache_write_per_mtok": {"rate": "input_per_mtok", "times": 1.25}, "cache_write_1h_per_mtok": {"rate": "cache_write_per_mtok", "times": 2}}'),
  'rates_from: cache_write_1h_per_mtok is declared from cache_write_per_mtok, which is not a rate this price sets');
  t.regex(await refused([1, 2, 0.1], '[1]'), /"rates_from must be a JSON object"/);
});

test('the price book compiles a declared rate, and explain_cost names the declaration', async (t) => {
  const [book] = await db.query<{ cache_read: string }>(
    "SELECT cache_read_rate::text AS cache_read FROM ai_cost_internal.price_book WHERE key = 'df standard claude-like'");
  t.is(book!.cache_read, '300000');
  const rows = await db.query<{ component: string; usd_rate: string | null; micros: string | null; detail: string | null }>(`
    SELECT component, usd_rate::text, micros::text, detail FROM ai_cost.explain_cost('df', 'claude-like', now(),
      input_tokens => 10003, cache_read_tokens => 5001, cache_write_tokens => 3001, cache_write_1h_tokens => 1000, output_tokens => 333)`);
  t.deepEqual(rows.slice(1).map((r) => [r.component, r.usd_rate, r.micros, r.detail]), [
    ['input', '3', '6003', null],
    ['cache read', '0.3', '1500.3', '0.1 x the input rate, as the price declares (rates_from)'],
    ['cache write (5 min)', '3.75', '7503.75', '1.25 x the input rate, as the price declares (rates_from)'],
    ['cache write (1 hour)', '6', '6000', '2 x the input rate, as the price declares (rates_from)'],
    ['output', '15', '4995', null],
    ['total', null, '26003', 'sum rounded up once to whole micro-dollars'],
  ]);
});

test('ai-cost prices set --rates-from declares rates by their flag names, and names a rate that is not one', async (t) => {
  const set = await runCli(['prices', 'set', 'df', 'set-by-cli', '--input', '3', '--output', '15', '--from', '2025-01-01',
    '--rates-from', 'cache-write=input*1.25,cache-write-1h=input*2,cache-read=input*0.1', '--database-url', db.url]);
  t.is(set.code, 0, set.stderr);
  t.deepEqual(await everyWay([
    ['set-by-cli', standard({ input_tokens: 10_003, cache_read_tokens: 5_001, cache_write_tokens: 3_001, cache_write_1h_tokens: 1_000,
      output_tokens: 333 })],
  ]), [
    // As the catalog row above declares the same rule: 26,003.
    everywhere('26003'),
  ]);
  const typo = await runCli(['prices', 'set', 'df', 'typo', '--input', '3', '--rates-from', 'cache-reed=input', '--database-url', db.url]);
  t.is(typo.code, 1);
  t.regex(typo.stderr, /^ai-cost: option '--rates-from <rate=rate\*times,...>' argument 'cache-reed=input' is invalid\. 'cache-reed' is not a rate: input, output, cache-read,/);
  const unset = await runCli(['prices', 'set', 'df', 'unset', '--input', '3', '--rates-from', 'cache-read=output', '--database-url', db.url]);
  t.is(unset.stderr.trim(), 'ai-cost: rates_from: cache_read_per_mtok is declared from output_per_mtok, which is not a rate this price sets');
  const [stored] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.prices WHERE model IN ('typo', 'unset')`);
  t.is(stored!.n, '0', 'nothing is written');
});
