import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// Reasoning tokens and cached audio input at rates of their own
// (reasoning_per_mtok, cache_read_audio_per_mtok), and NULL rates that bill
// them as output and as cache reads. Every cost is worked out by hand; each
// case is priced by a single INSERT on the book path, by one on the lookup
// path (a tenant with a 0% discount has no compiled book), and by
// ai_cost.insert_calls, which must all agree.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok,
                                  audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok)
      VALUES ('rr', 'deep',             '2025-01-01', 2.2, 8.8, NULL, NULL, NULL, 3.3, NULL),
             ('rr', 'plain',            '2025-01-01', 2.2, 8.8, NULL, NULL, NULL, NULL, NULL),
             ('rr', 'realtime',         '2025-01-01', 5, 20, 2.5, 100, 200, NULL, 20),
             ('rr', 'realtime-plain',   '2025-01-01', 5, 20, 2.5, 100, 200, NULL, NULL),
             ('rr', 'omni',             '2025-01-01', 1, 10, NULL, NULL, 40, 4, NULL),
             ('rr', 'audio-cache-only', '2025-01-01', 1, 1, NULL, 10, NULL, NULL, 0.5),
             ('rr', 'reasoning-only',   '2025-01-01', 1, NULL, NULL, NULL, NULL, 2, NULL);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'rr', 0);`);
  },
});

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  audio_input_tokens?: number;
  audio_output_tokens?: number;
  reasoning_tokens?: number;
  cache_read_audio_tokens?: number;
}

const USAGE_COLUMNS = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'audio_input_tokens', 'audio_output_tokens',
  'reasoning_tokens', 'cache_read_audio_tokens'] as const;

const { insert, batchOf, costsOf, everyWay } = pricingPaths<Usage>(db, 'rr', USAGE_COLUMNS);

test('reasoning at a rate of its own: the rest of the output at the output rate, summed exactly and rounded up once', async (t) => {
  const usage = { input_tokens: 1_000, output_tokens: 5_000, reasoning_tokens: 1_234 };
  t.deepEqual(await everyWay([['deep', usage], ['plain', usage], ['deep', { input_tokens: 1_000, output_tokens: 5_000 }]]), [
    // 1,000 input x 2.2 = 2,200; (5,000 - 1,234) = 3,766 output x 8.8 = 33,140.8;
    // 1,234 reasoning x 3.3 = 4,072.2; 2,200 + 33,140.8 + 4,072.2 = 39,413 exactly
    // (rounding each part up would make it 39,414)
    everywhere('39413'),
    // No reasoning rate: billed as output, as before. 2,200 + 5,000 x 8.8 = 46,200
    everywhere('46200'),
    // A call that reports no reasoning is all output at the output rate: 46,200
    everywhere('46200'),
  ]);
});

test('cached audio at a rate of its own, counted once though it is in both the cache reads and the audio input', async (t) => {
  const usage = {
    input_tokens: 10_000, cache_read_tokens: 6_000, audio_input_tokens: 3_000, cache_read_audio_tokens: 1_500,
    output_tokens: 700, audio_output_tokens: 500,
  };
  const withoutTheCount = { ...usage, cache_read_audio_tokens: undefined };
  t.deepEqual(await everyWay([['realtime', usage], ['realtime-plain', usage], ['realtime', withoutTheCount], ['realtime-plain', withoutTheCount]]), [
    // uncached text input 10,000 - 6,000 - (3,000 - 1,500) = 2,500 x 5 = 12,500
    // cached text 6,000 - 1,500 = 4,500 x 2.5 = 11,250; cached audio 1,500 x 20 = 30,000
    // uncached audio 3,000 - 1,500 = 1,500 x 100 = 150,000
    // text output 700 - 500 = 200 x 20 = 4,000; audio output 500 x 200 = 100,000
    // 12,500 + 11,250 + 30,000 + 150,000 + 4,000 + 100,000 = 307,750
    everywhere('307750'),
    // No cached audio rate: cached audio is a cache read, 1,500 x 2.5 = 3,750 instead of 30,000: 281,500
    everywhere('281500'),
    // A call that does not say how much of its cache reads was audio is priced as before, whatever the rate:
    // 10,000 - 6,000 - 3,000 = 1,000 x 5 = 5,000; 6,000 x 2.5 = 15,000; 3,000 x 100 = 300,000;
    // 200 x 20 = 4,000; 500 x 200 = 100,000: 424,000
    everywhere('424000'),
    everywhere('424000'),
  ]);
});

test('reasoning beside audio output: text output is what is left, and never below 0', async (t) => {
  t.deepEqual(await everyWay([
    ['omni', { input_tokens: 100, output_tokens: 1_000, audio_output_tokens: 300, reasoning_tokens: 200 }],
    ['omni', { input_tokens: 100, output_tokens: 100, audio_output_tokens: 80, reasoning_tokens: 50 }],
  ]), [
    // 100 x 1 = 100; (1,000 - 300 - 200) = 500 x 10 = 5,000; 200 x 4 = 800; 300 x 40 = 12,000: 17,900
    everywhere('17900'),
    // Reasoning and audio output reported beyond the output: 100 - 80 - 50 < 0 text output costs 0;
    // 100 x 1 + 50 x 4 + 80 x 40 = 100 + 200 + 3,200 = 3,500
    everywhere('3500'),
  ]);
});

test('a used dimension without a rate is unpriced; a part billed by default needs the default rate', async (t) => {
  const allAudio = { input_tokens: 2_000, cache_read_tokens: 1_000, audio_input_tokens: 1_500, cache_read_audio_tokens: 1_000 };
  t.deepEqual(await everyWay([
    ['audio-cache-only', allAudio],
    ['reasoning-only', { input_tokens: 10, output_tokens: 100, reasoning_tokens: 100 }],
  ]), [
    // Every cache read is audio, at the cached audio rate: no text cache read rate is needed.
    // (2,000 - 1,000 - (1,500 - 1,000)) = 500 x 1 = 500; 1,000 x 0.5 = 500; 500 x 10 = 5,000: 6,000
    everywhere('6000'),
    // All output is reasoning, at the reasoning rate: no output rate is needed. 10 x 1 + 100 x 2 = 210
    everywhere('210'),
  ]);
  const unpriced = async (model: string, usage: Usage) =>
    [(await insert(model, usage)).reason, (await insert(model, usage, 'by-lookup')).reason];
  t.deepEqual(await unpriced('audio-cache-only', { ...allAudio, cache_read_tokens: 1_200 }),
    ['no price for cache read tokens', 'no price for cache read tokens']);
  // Cached audio without a rate of its own is billed as a cache read, which this price has no rate for.
  t.deepEqual(await unpriced('plain', { input_tokens: 100, cache_read_tokens: 50, audio_input_tokens: 50, cache_read_audio_tokens: 50 }),
    ['no price for cache read tokens', 'no price for cache read tokens']);
  t.deepEqual(await unpriced('reasoning-only', { input_tokens: 10, output_tokens: 150, reasoning_tokens: 100 }),
    ['no price for output tokens', 'no price for output tokens']);
});

test('the price book compiles reasoning and cached audio at the rate that bills them', async (t) => {
  const book = await db.query<{ key: string; output_rate: string; reasoning_rate: string; cache_read_rate: string; cache_read_audio_rate: string }>(`
    SELECT key, output_rate::text, reasoning_rate::text, cache_read_rate::text, cache_read_audio_rate::text
      FROM ai_cost_internal.price_book WHERE provider = 'rr' AND model IN ('deep', 'plain', 'realtime', 'realtime-plain') ORDER BY key`);
  // Picodollars per token: USD per 1M tokens x 10^6.
  t.deepEqual(book.map((b) => [b.key, b.output_rate, b.reasoning_rate, b.cache_read_rate, b.cache_read_audio_rate]), [
    ['rr standard deep', '8800000', '3300000', '0', '0'],
    ['rr standard plain', '8800000', '8800000', '0', '0'],
    ['rr standard realtime', '20000000', '20000000', '2500000', '20000000'],
    ['rr standard realtime-plain', '20000000', '20000000', '2500000', '2500000'],
  ]);
});

test('the cost trigger prices reasoning and cached audio from the book, without the lookup', async (t) => {
  // With the lookup emptied (in a transaction rolled back), only the book can price.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN; DELETE FROM ai_cost_internal.price_lookup');
    const cost = async (model: string, usage: Usage) => (await client.query<{ cost: string | null }>(`
      INSERT INTO ai_cost.calls (provider, model, ${USAGE_COLUMNS.join(', ')})
      VALUES ('rr', $1, ${USAGE_COLUMNS.map((_, i) => `$${i + 2}`).join(', ')}) RETURNING cost_micros::text AS cost`,
    [model, ...USAGE_COLUMNS.map((c) => usage[c] ?? null)])).rows[0]!.cost;
    t.is(await cost('plain', { input_tokens: 1_000, output_tokens: 5_000, reasoning_tokens: 1_234 }), '46200');
    t.is(await cost('realtime', { input_tokens: 10_000, cache_read_tokens: 6_000, audio_input_tokens: 3_000,
      cache_read_audio_tokens: 1_500, output_tokens: 700, audio_output_tokens: 500 }), '307750');
    t.is(await cost('omni', { input_tokens: 100, output_tokens: 1_000, audio_output_tokens: 300, reasoning_tokens: 200 }), '17900');
    // Reasoning billed apart with nothing else to take the second book path: the lookup prices it.
    t.is(await cost('deep', { input_tokens: 1_000, output_tokens: 5_000, reasoning_tokens: 1_234 }), null);
    t.is(await cost('deep', { input_tokens: 1_000, output_tokens: 5_000 }), '46200');
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
});

test('insert_calls prices reasoning and cached audio in its own statement', async (t) => {
  // With the cost trigger disabled (in a transaction rolled back), whatever
  // insert_calls priced, it priced itself.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN; ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call');
    const { json, ids } = batchOf([
      ['deep', { input_tokens: 1_000, output_tokens: 5_000, reasoning_tokens: 1_234 }],
      ['realtime', { input_tokens: 10_000, cache_read_tokens: 6_000, audio_input_tokens: 3_000, cache_read_audio_tokens: 1_500,
        output_tokens: 700, audio_output_tokens: 500 }],
      ['omni', { input_tokens: 100, output_tokens: 1_000, audio_output_tokens: 300, reasoning_tokens: 200 }],
      // Left to the trigger, which bills text output as 0 when the parts exceed the output.
      ['omni', { input_tokens: 100, output_tokens: 100, audio_output_tokens: 80, reasoning_tokens: 50 }],
    ]);
    await client.query('SELECT ai_cost.insert_calls($1::jsonb)', [json]);
    t.deepEqual(await costsOf((text, params) => client.query(text, params).then((r) => r.rows), ids), ['39413', '307750', '17900', null]);
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
});

interface Component { component: string; quantity: number | null; rate: number | null; micros: number | null; detail: string | null }

function components(rows: Array<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null; detail: string | null }>): Component[] {
  const number = (value: string | null) => (value === null ? null : Number(value));
  return rows.map((r) => ({ component: r.component, quantity: number(r.quantity), rate: number(r.usd_rate), micros: number(r.micros), detail: r.detail }))
    .filter((r) => r.component !== 'price');
}

const explainRows = 'SELECT component, quantity::text, usd_rate::text, micros::text, detail FROM ai_cost.explain_cost';
const TOTAL = 'sum rounded up once to whole micro-dollars';

test('explain_cost shows reasoning as a component where the price bills it apart, and only there', async (t) => {
  const explain = (model: string) => db.query<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null; detail: string | null }>(
    `${explainRows}('rr', $1, now(), input_tokens => 1000, output_tokens => 5000, reasoning_tokens => 1234)`, [model]);
  t.deepEqual(components(await explain('deep')), [
    { component: 'input', quantity: 1_000, rate: 2.2, micros: 2_200, detail: null },
    { component: 'output', quantity: 3_766, rate: 8.8, micros: 33_140.8, detail: null },
    { component: 'reasoning', quantity: 1_234, rate: 3.3, micros: 4_072.2, detail: null },
    { component: 'total', quantity: null, rate: null, micros: 39_413, detail: TOTAL },
  ]);
  t.deepEqual(components(await explain('plain')), [
    { component: 'input', quantity: 1_000, rate: 2.2, micros: 2_200, detail: null },
    { component: 'output', quantity: 5_000, rate: 8.8, micros: 44_000, detail: null },
    { component: 'total', quantity: null, rate: null, micros: 46_200, detail: TOTAL },
  ]);
});

test('explain_cost of a recorded call shows cached audio apart from the other cache reads and the other audio input', async (t) => {
  const usage = {
    input_tokens: 10_000, cache_read_tokens: 6_000, audio_input_tokens: 3_000, cache_read_audio_tokens: 1_500,
    output_tokens: 700, audio_output_tokens: 500,
  };
  const explain = async (model: string) => {
    const call = await insert(model, usage);
    return components(await db.query(`${explainRows}($1::bigint)`, [call.id]));
  };
  const common = (cachedAudio: Component, total: number) => [
    { component: 'input', quantity: 2_500, rate: 5, micros: 12_500, detail: null },
    { component: 'cache read', quantity: 4_500, rate: 2.5, micros: 11_250, detail: null },
    cachedAudio,
    { component: 'audio input', quantity: 1_500, rate: 100, micros: 150_000, detail: null },
    { component: 'output', quantity: 200, rate: 20, micros: 4_000, detail: null },
    { component: 'audio output', quantity: 500, rate: 200, micros: 100_000, detail: null },
    { component: 'total', quantity: null, rate: null, micros: total, detail: TOTAL },
  ];
  t.deepEqual(await explain('realtime'),
    common({ component: 'cache read (audio)', quantity: 1_500, rate: 20, micros: 30_000, detail: null }, 307_750));
  t.deepEqual(await explain('realtime-plain'),
    common({ component: 'cache read (audio)', quantity: 1_500, rate: 2.5, micros: 3_750,
      detail: 'at the cache read rate: the price has no cache_read_audio_per_mtok' }, 281_500));
});

test('ai-cost prices set takes both rates, and prices history shows them', async (t) => {
  const env = { DATABASE_URL: db.url };
  const set = await runCli(['prices', 'set', 'rr', 'cli-rates', '--input', '5', '--output', '20', '--cache-read', '2.5', '--audio-input', '100',
    '--reasoning', '3.3', '--cache-read-audio', '20', '--from', '2025-01-01'], env);
  t.is(set.code, 0, set.stderr);
  t.deepEqual(await db.query(`SELECT reasoning_per_mtok::text AS reasoning, cache_read_audio_per_mtok::text AS cache_read_audio
                                FROM ai_cost.prices WHERE model = 'cli-rates'`), [{ reasoning: '3.3', cache_read_audio: '20' }]);
  const history = await runCli(['prices', 'history', 'rr', 'cli-rates', '--format', 'json'], env);
  t.like((JSON.parse(history.stdout) as object[])[0], { reasoning_per_mtok: '3.3', cache_read_audio_per_mtok: '20' });
  const table = await runCli(['prices', 'history', 'rr', 'cli-rates'], env);
  t.regex(table.stdout, /│ reasoning │ cache read audio │/);
  t.regex(table.stdout, /│ 3\.3 +│ 20 +│/);
  const refused = await runCli(['prices', 'set', 'rr', 'cli-rates', '--input', '1', '--reasoning', 'lots'], env);
  t.regex(refused.stderr, /^ai-cost: invalid price: --reasoning must be a non-negative decimal number$/m);
});

test('the catalog bills Sonar Deep Research reasoning at the $3 per 1M Perplexity publishes', async (t) => {
  const [call] = await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, reasoning_tokens)
    VALUES ('perplexity', 'sonar-deep-research', 1000, 5000, 1234) RETURNING cost_micros::text AS cost`);
  // 1,000 input x 2 = 2,000; (5,000 - 1,234) = 3,766 output x 8 = 30,128; 1,234 reasoning x 3 = 3,702: 35,830
  t.is(call!.cost, '35830');
});
