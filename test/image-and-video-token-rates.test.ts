import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// Image input, image output and video input tokens at rates of their own
// (image_input_per_mtok, image_output_per_mtok, video_input_per_mtok), and
// NULL rates that leave them in their whole, billed as other input or output
// as before. Every cost is worked out by hand; each case is priced by a
// single INSERT on the book path, by one on the lookup path (a tenant with a
// 0% discount has no compiled book), and by ai_cost.insert_calls, which must
// all agree.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok,
                                  audio_input_per_mtok, image_input_per_mtok, image_output_per_mtok, video_input_per_mtok)
      VALUES ('iv', 'picture',       '2025-01-01', 5, NULL, 1.25, NULL, 10, 40, NULL),
             ('iv', 'picture-plain', '2025-01-01', 5, 10, 1.25, NULL, NULL, NULL, NULL),
             ('iv', 'flash',         '2025-01-01', 0.3, 2.5, 0.03, NULL, NULL, 30, NULL),
             ('iv', 'vision',        '2025-01-01', 1, 4, 0.5, 7, 2, NULL, 3),
             ('iv', 'image-only',    '2025-01-01', NULL, NULL, NULL, NULL, 10, 40, NULL);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'iv', 0);`);
  },
});

interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
  audio_input_tokens?: number;
  reasoning_tokens?: number;
  image_input_tokens?: number;
  image_output_tokens?: number;
  video_input_tokens?: number;
}

const USAGE_COLUMNS = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'audio_input_tokens', 'reasoning_tokens',
  'image_input_tokens', 'image_output_tokens', 'video_input_tokens'] as const;

const { insert, batchOf, costsOf, everyWay } = pricingPaths<Usage>(db, 'iv', USAGE_COLUMNS);

// gpt-image-1 shaped: a 1024x1024 high-quality image is 4,160 output tokens.
const IMAGE_EDIT = { input_tokens: 1_033, image_input_tokens: 617, output_tokens: 4_160, image_output_tokens: 4_160 };
// Gemini image generation shaped: one image is 1,290 output tokens, beside a little text.
const GENERATED = { input_tokens: 1_001, output_tokens: 1_301, image_output_tokens: 1_290 };
// A vision call with every kind of input: text, cache reads, audio, image, video.
const EVERY_INPUT = {
  input_tokens: 10_002, cache_read_tokens: 1_001, audio_input_tokens: 500, image_input_tokens: 2_500, video_input_tokens: 4_000,
  output_tokens: 1_000, image_output_tokens: 300,
};

test('image input and output at rates of their own, text at the text rates, summed exactly and rounded up once', async (t) => {
  t.deepEqual(await everyWay([['picture', IMAGE_EDIT], ['flash', GENERATED], ['vision', EVERY_INPUT]]), [
    // text input 1,033 - 617 = 416 x 5 = 2,080; image input 617 x 10 = 6,170;
    // image output 4,160 x 40 = 166,400 (no text output, so no output rate needed): 174,650
    everywhere('174650'),
    // input 1,001 x 0.3 = 300.3; text output 1,301 - 1,290 = 11 x 2.5 = 27.5; image output 1,290 x 30 = 38,700;
    // 300.3 + 27.5 + 38,700 = 39,027.8 -> 39,028 (rounding each part up would make it 301 + 28 + 38,700 = 39,029)
    everywhere('39028'),
    // text input 10,002 - 1,001 - 500 - 2,500 - 4,000 = 2,001 x 1 = 2,001; cache read 1,001 x 0.5 = 500.5;
    // audio 500 x 7 = 3,500; image 2,500 x 2 = 5,000; video 4,000 x 3 = 12,000;
    // output 1,000 x 4 = 4,000 (image output has no rate of its own: it is output);
    // 2,001 + 500.5 + 3,500 + 5,000 + 12,000 + 4,000 = 27,001.5 -> 27,002
    everywhere('27002'),
  ]);
});

test('without rates of their own, image and video tokens cost what they cost before the counts existed', async (t) => {
  const { image_input_tokens: _image, image_output_tokens: _imageOut, ...withoutTheCounts } = IMAGE_EDIT;
  t.deepEqual(await everyWay([
    ['picture-plain', IMAGE_EDIT], ['picture-plain', withoutTheCounts],
    ['flash', { input_tokens: 2_000, cache_read_tokens: 500, image_input_tokens: 100, video_input_tokens: 200, output_tokens: 10 }],
    ['flash', { input_tokens: 2_000, cache_read_tokens: 500, output_tokens: 10 }],
  ]), [
    // 1,033 input x 5 = 5,165; 4,160 output x 10 = 41,600: 46,765 either way
    everywhere('46765'),
    everywhere('46765'),
    // Image and video at the input rate, the cached ones as cache reads:
    // (2,000 - 500) x 0.3 = 450; 500 x 0.03 = 15; 10 x 2.5 = 25: 490 either way
    everywhere('490'),
    everywhere('490'),
  ]);
});

test('image and video beyond the rest of the input: the text input is 0, never below, and a part without a rate stays in its whole', async (t) => {
  const beyond = { input_tokens: 1_000, image_input_tokens: 800, video_input_tokens: 700, output_tokens: 100, image_output_tokens: 100 };
  t.deepEqual(await everyWay([['vision', beyond], ['flash', beyond]]), [
    // text input 1,000 - 800 - 700 < 0 costs 0; image 800 x 2 = 1,600; video 700 x 3 = 2,100; output 100 x 4 = 400: 4,100
    everywhere('4100'),
    // No image input or video rate: both stay in the input, 1,000 x 0.3 = 300; image output 100 x 30 = 3,000: 3,300
    everywhere('3300'),
  ]);
});

test('a part billed at its own rate needs no rate for its whole, and a part without one needs the whole\'s', async (t) => {
  t.deepEqual(await everyWay([['image-only', { input_tokens: 500, image_input_tokens: 500, output_tokens: 100, image_output_tokens: 100 }]]), [
    // 500 x 10 = 5,000; 100 x 40 = 4,000: 9,000
    everywhere('9000'),
  ]);
  const unpriced = async (model: string, usage: Usage) =>
    [(await insert(model, usage)).reason, (await insert(model, usage, 'by-lookup')).reason];
  t.deepEqual(await unpriced('image-only', { input_tokens: 600, image_input_tokens: 500 }),
    ['no price for input tokens', 'no price for input tokens']);
  t.deepEqual(await unpriced('image-only', { input_tokens: 500, video_input_tokens: 500 }),
    ['no price for input tokens', 'no price for input tokens']);
  t.deepEqual(await unpriced('picture', { input_tokens: 10, output_tokens: 4_200, image_output_tokens: 4_160 }),
    ['no price for output tokens', 'no price for output tokens']);
});

test('CHECK constraints refuse an image or video part larger than its whole, or negative', async (t) => {
  const refused = async (usage: Usage) => t.throwsAsync(() => insert('vision', usage));
  t.regex((await refused({ input_tokens: 10, image_input_tokens: 11 }))!.message, /"input_tokens must include image_input_tokens"/);
  t.regex((await refused({ input_tokens: 10, video_input_tokens: 11 }))!.message, /"input_tokens must include video_input_tokens"/);
  t.regex((await refused({ image_input_tokens: 1 }))!.message, /"input_tokens must include image_input_tokens"/);
  t.regex((await refused({ output_tokens: 10, image_output_tokens: 11 }))!.message, /"output_tokens must include image_output_tokens"/);
  t.regex((await refused({ input_tokens: 10, video_input_tokens: -1 }))!.message, /"image and video token counts must not be negative"/);
  t.is((await insert('vision', { input_tokens: 10, image_input_tokens: 10, video_input_tokens: 10, output_tokens: 5, image_output_tokens: 5 })).cost,
    // Each part fits its whole; together they exceed it, which the text input absorbs at 0: 10 x 2 + 10 x 3 + 5 x 4 = 70
    '70');
});

test('the price book compiles image and video at the rate that bills them', async (t) => {
  const book = await db.query<{ key: string; input: string; output: string; image_in: string; image_out: string; video_in: string }>(`
    SELECT key, input_rate::text AS input, output_rate::text AS output, image_input_rate::text AS image_in,
           image_output_rate::text AS image_out, video_input_rate::text AS video_in
      FROM ai_cost_internal.price_book WHERE provider = 'iv' ORDER BY key`);
  // Picodollars per token: USD per 1M tokens x 10^6; a NULL rate compiles as
  // the whole's, and no rate at all as 0.
  t.deepEqual(book.map((b) => [b.key, b.input, b.output, b.image_in, b.image_out, b.video_in]), [
    ['iv standard flash', '300000', '2500000', '300000', '30000000', '300000'],
    ['iv standard image-only', '0', '0', '10000000', '40000000', '0'],
    ['iv standard picture', '5000000', '0', '10000000', '40000000', '5000000'],
    ['iv standard picture-plain', '5000000', '10000000', '5000000', '10000000', '5000000'],
    ['iv standard vision', '1000000', '4000000', '2000000', '4000000', '3000000'],
  ]);
});

test('the cost trigger prices image and video from the book, without the lookup', async (t) => {
  // With the lookup emptied (in a transaction rolled back), only the book can price.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN; DELETE FROM ai_cost_internal.price_lookup');
    const cost = async (model: string, usage: Usage) => (await client.query<{ cost: string | null }>(`
      INSERT INTO ai_cost.calls (provider, model, ${USAGE_COLUMNS.join(', ')})
      VALUES ('iv', $1, ${USAGE_COLUMNS.map((_, i) => `$${i + 2}`).join(', ')}) RETURNING cost_micros::text AS cost`,
    [model, ...USAGE_COLUMNS.map((c) => usage[c] ?? null)])).rows[0]!.cost;
    t.is(await cost('flash', GENERATED), '39028');
    t.is(await cost('vision', EVERY_INPUT), '27002');
    t.is(await cost('picture-plain', IMAGE_EDIT), '46765');
    // Image and video beyond the rest of the input: the lookup prices it.
    t.is(await cost('vision', { input_tokens: 1_000, image_input_tokens: 800, video_input_tokens: 700 }), null);
    // So does output at a price without an output rate (gpt-image-1 lists
    // none): the book cannot tell text output, which would be unpriced, from
    // image output.
    t.is(await cost('picture', IMAGE_EDIT), null);
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
});

test('insert_calls prices image and video in its own statement', async (t) => {
  // With the cost trigger disabled (in a transaction rolled back), whatever
  // insert_calls priced, it priced itself.
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN; ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call');
    const { json, ids } = batchOf([
      ['flash', GENERATED],
      ['vision', EVERY_INPUT],
      ['picture-plain', IMAGE_EDIT],
      // Left to the trigger, which bills the text input as 0 when the parts exceed the input.
      ['vision', { input_tokens: 1_000, image_input_tokens: 800, video_input_tokens: 700 }],
      // Likewise reasoning and image output beyond the output.
      ['flash', { input_tokens: 10, output_tokens: 100, reasoning_tokens: 50, image_output_tokens: 60 }],
      // And output at a price without an output rate.
      ['picture', IMAGE_EDIT],
    ]);
    await client.query('SELECT ai_cost.insert_calls($1::jsonb)', [json]);
    t.deepEqual(await costsOf((text, params) => client.query(text, params).then((r) => r.rows), ids),
      ['39028', '27002', '46765', null, null, null]);
  } finally {
    await client.query('ROLLBACK');
    await client.end();
  }
});

interface Component { component: string; quantity: number | null; rate: number | null; micros: number | null }

function components(rows: Array<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null }>): Component[] {
  const number = (value: string | null) => (value === null ? null : Number(value));
  return rows.map((r) => ({ component: r.component, quantity: number(r.quantity), rate: number(r.usd_rate), micros: number(r.micros) }))
    .filter((r) => r.component !== 'price');
}

const explainRows = 'SELECT component, quantity::text, usd_rate::text, micros::text FROM ai_cost.explain_cost';

test('explain_cost shows image and video as components where the price bills them apart, and only there', async (t) => {
  const rows = await db.query<{ component: string; quantity: string | null; usd_rate: string | null; micros: string | null }>(
    `${explainRows}('iv', 'vision', now(), input_tokens => 10002, cache_read_tokens => 1001, audio_input_tokens => 500,
                    image_input_tokens => 2500, video_input_tokens => 4000, output_tokens => 1000, image_output_tokens => 300)`);
  t.deepEqual(components(rows), [
    { component: 'input', quantity: 2_001, rate: 1, micros: 2_001 },
    { component: 'image input', quantity: 2_500, rate: 2, micros: 5_000 },
    { component: 'video input', quantity: 4_000, rate: 3, micros: 12_000 },
    { component: 'cache read', quantity: 1_001, rate: 0.5, micros: 500.5 },
    { component: 'audio input', quantity: 500, rate: 7, micros: 3_500 },
    { component: 'output', quantity: 1_000, rate: 4, micros: 4_000 },
    { component: 'total', quantity: null, rate: null, micros: 27_002 },
  ]);
  const call = await insert('flash', GENERATED);
  t.deepEqual(components(await db.query(`${explainRows}($1::bigint)`, [call.id])), [
    { component: 'input', quantity: 1_001, rate: 0.3, micros: 300.3 },
    { component: 'output', quantity: 11, rate: 2.5, micros: 27.5 },
    { component: 'image output', quantity: 1_290, rate: 30, micros: 38_700 },
    { component: 'total', quantity: null, rate: null, micros: 39_028 },
  ]);
});

test('ai-cost prices set takes the three rates, and prices history shows them', async (t) => {
  const env = { DATABASE_URL: db.url };
  const set = await runCli(['prices', 'set', 'iv', 'cli-rates', '--input', '5', '--image-input', '10', '--image-output', '40',
    '--video-input', '7.5', '--from', '2025-01-01'], env);
  t.is(set.code, 0, set.stderr);
  t.deepEqual(await db.query(`SELECT image_input_per_mtok::text AS image_in, image_output_per_mtok::text AS image_out,
                                     video_input_per_mtok::text AS video_in FROM ai_cost.prices WHERE model = 'cli-rates'`),
  [{ image_in: '10', image_out: '40', video_in: '7.5' }]);
  const history = await runCli(['prices', 'history', 'iv', 'cli-rates', '--format', 'json'], env);
  t.like((JSON.parse(history.stdout) as object[])[0], { image_input_per_mtok: '10', image_output_per_mtok: '40', video_input_per_mtok: '7.5' });
  const table = await runCli(['prices', 'history', 'iv', 'cli-rates'], env);
  t.regex(table.stdout, /│ image in │ image out │ video in │/);
  t.regex(table.stdout, /│ 10 +│ 40 +│ 7\.5 +│/);
  const refused = await runCli(['prices', 'set', 'iv', 'cli-rates', '--input', '1', '--video-input', 'lots'], env);
  t.regex(refused.stderr, /^ai-cost: invalid price: --video-input must be a non-negative decimal number$/m);
});

test('the catalog bills GPT Image and Gemini 2.5 Flash Image tokens at the rates their providers publish', async (t) => {
  const cost = async (provider: string, model: string, usage: Usage) => (await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, ${USAGE_COLUMNS.join(', ')})
    VALUES ($1, $2, ${USAGE_COLUMNS.map((_, i) => `$${i + 3}`).join(', ')}) RETURNING cost_micros::text AS cost`,
  [provider, model, ...USAGE_COLUMNS.map((c) => usage[c] ?? null)]))[0]!.cost;
  // gpt-image-1: text $5, image $10, image output $40 per 1M: 416 x 5 + 617 x 10 + 4,160 x 40 = 2,080 + 6,170 + 166,400 = 174,650
  t.is(await cost('openai', 'gpt-image-1', IMAGE_EDIT), '174650');
  // gpt-image-1-mini: text $2, image $2.50, image output $8: 832 + 1,542.5 + 33,280 = 35,654.5 -> 35,655
  t.is(await cost('openai', 'gpt-image-1-mini', IMAGE_EDIT), '35655');
  // gemini-2.5-flash-image: input $0.30, output $2.50, image output $30 (the figures above): 39,028
  t.is(await cost('google', 'gemini-2.5-flash-image', GENERATED), '39028');
});
