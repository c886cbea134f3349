import { randomBytes } from 'node:crypto';
import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl } from './support/logins.js';

// The cost trigger prices the common case itself and leaves the rest to
// ai_cost_internal.cost_of(), which reprice and explain_cost also use
// (sql/060_cost.sql says why). These tests hold the two to the same answer.

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      -- Reasoning, cached audio, image and video rates of their own on some
      -- rows, none on others (billed as output, as cache reads, as input).
      INSERT INTO ai_cost.prices (provider, model, valid_from, service_tier, above_input_tokens, input_per_mtok, output_per_mtok,
                                  cache_read_per_mtok, cache_write_per_mtok, cache_write_1h_per_mtok,
                                  audio_input_per_mtok, audio_output_per_mtok, reasoning_per_mtok, cache_read_audio_per_mtok,
                                  image_input_per_mtok, image_output_per_mtok, video_input_per_mtok, unit, unit_price)
      VALUES ('fp', 'full',  '2025-01-01', 'standard', 0,      1.10, 4.40, 0.11, 1.375, 2.2, 40, 80, NULL, NULL, NULL, NULL, NULL, 'image', 0.04),
             ('fp', 'full',  '2025-01-01', 'standard', 200000, 2.20, 8.80, 0.22, 2.75, 4.4, 80, 160, 4.4, NULL, 3.3, 33, NULL, 'image', 0.04),
             ('fp', 'full',  '2025-01-01', 'batch',    0,      0.55, 2.20, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('fp', 'full',  '2025-07-01', 'standard', 0,      0.90, 3.60, 0.09, 1.125, 1.8, 32, 64, 1.35, 6.4, 1.8, 30, 2.7, 'image', 0.03),
             ('fp', 'bare',  '2025-01-01', 'standard', 0,      0.25, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('fp', 'image', '2025-01-01', 'standard', 0,      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'image', 0.019);
      INSERT INTO ai_cost.prices (provider, model, valid_from, tenant_id, input_per_mtok, output_per_mtok)
      VALUES ('fp', 'full', '2025-03-01', 'tenant-own-price', 0.5, 2);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('tenant-discount', 'fp', 15);
      -- Organisation discounts: one from mid-period that the book compiles
      -- into its rates, and one whose discounted rates are no whole number of
      -- picodollars (0.25 x 2/3), which the book leaves to the lookup.
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, model, percent_off, valid_from)
      VALUES (NULL, 'fp', 'full', 20, '2025-05-01'), (NULL, 'fp', 'bare', 33.3333333333, '-infinity');
      INSERT INTO ai_cost.model_aliases (provider, alias, model) VALUES ('fp', 'full-2025-01-01', 'full');
      INSERT INTO ai_cost.providers (id, name, strict) VALUES ('fp-strict', 'Strict test provider', true) ON CONFLICT (id) DO UPDATE SET strict = true;
      -- A tier priced as a multiple of standard, whose multiple changes
      -- mid-period (an exact 4x and 6x, and a 1.7x of 0.25 whose rates are
      -- whole picodollars), and one with price rows of its own for one model.
      INSERT INTO ai_cost.service_tiers (name, provider, multiplier, valid_from) VALUES ('fast', 'fp', 6, '-infinity');
      INSERT INTO ai_cost.service_tiers (name, provider, multiplier, valid_from) VALUES ('fast', 'fp', 4, '2025-09-01');
      INSERT INTO ai_cost.service_tiers (name, provider, model, multiplier) VALUES ('fast', 'fp', 'bare', 1.7);
      INSERT INTO ai_cost.service_tiers (name, provider) VALUES ('turbo', 'fp');
      INSERT INTO ai_cost.prices (provider, model, service_tier, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
      VALUES ('fp', 'full', 'turbo', '2025-01-01', 3, 12, 0.3);
      -- Further units beside the unit of the row, for calls billed more than one kind.
      UPDATE ai_cost.prices SET unit_prices = '{"query": 0.005, "second": 0.0002}'
       WHERE provider = 'fp' AND model = 'full' AND tenant_id IS NULL AND service_tier = 'standard';
      -- Rates declared as multiples of another (rates_from): on a row the book
      -- compiles, and on one the lookup prices.
      UPDATE ai_cost.prices SET rates_from = '{"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 0.5}}'
       WHERE provider = 'fp' AND model = 'full' AND service_tier = 'batch';
      UPDATE ai_cost.prices SET rates_from = '{"output_per_mtok": {"rate": "input_per_mtok", "times": 4},
                                               "cache_read_per_mtok": {"rate": "input_per_mtok", "times": 0.1}}'
       WHERE provider = 'fp' AND model = 'bare';
      -- Off-peak hours for part of the period, in a time zone with daylight saving.
      INSERT INTO ai_cost.prices (provider, model, valid_from, valid_to, input_per_mtok, output_per_mtok, cache_read_per_mtok,
                                  cache_write_per_mtok, daily_from, daily_to, time_zone)
      VALUES ('fp', 'full', '2024-11-01', '2025-06-01', 0.5, 2, 0.05, 0.6, '20:00', '12:00', 'America/New_York');`);
  },
});

/**
 * 4,000 calls across every path (both pricing paths, tiers, tenants, units,
 * provided costs, unknown models), labelled with a feature; the same calls
 * each time after setseed(0.17).
 */
const generatedCalls = (feature: string) => `
SELECT '2024-10-01'::timestamptz + r.age * interval '600 days' AS created_at,
       CASE WHEN r.pick < 0.75 THEN 'fp' WHEN r.pick < 0.9 THEN 'openai' ELSE 'anthropic' END AS provider,
       CASE WHEN r.pick < 0.75 THEN (ARRAY['full', 'full', 'full-2025-01-01', 'bare', 'image', 'unknown'])[1 + floor(r.m * 6)::int]
            WHEN r.pick < 0.9 THEN (ARRAY['gpt-4o-mini', 'gpt-4.1', 'gpt-4o-2024-08-06', 'gpt-5.4'])[1 + floor(r.m * 4)::int]
            ELSE (ARRAY['claude-sonnet-4-5', 'claude-haiku-4-5-20251001', 'claude-opus-4-1'])[1 + floor(r.m * 3)::int] END AS model,
       -- fast: a multiple of standard; turbo: rows of its own; warp: unknown.
       (ARRAY['standard', 'standard', 'standard', 'standard', 'standard', 'standard', 'batch', 'priority', 'flex', 'fast', 'turbo', 'warp'])[1 + floor(r.tier * 12)::int] AS service_tier,
       (ARRAY[NULL, 'tenant-own-price', 'tenant-discount', 'someone'])[1 + floor(r.tenant * 4)::int] AS tenant_id,
       CASE WHEN r.status < 0.1 THEN 'error' ELSE 'success' END AS status,
       r.cached < 0.03 AS cached,
       CASE WHEN r.cached > 0.97 THEN 1234 END AS provided_cost_micros,
       t.input AS input_tokens, t.output AS output_tokens, t.cache_read AS cache_read_tokens,
       t.cache_write AS cache_write_tokens, t.cache_write_1h AS cache_write_1h_tokens,
       -- Sometimes all of the output, so that with audio output the parts exceed the whole.
       CASE WHEN t.output IS NOT NULL AND r.m < 0.05 THEN t.output WHEN t.output IS NOT NULL AND r.m < 0.3 THEN t.output / 2 END AS reasoning_tokens,
       t.audio_input AS audio_input_tokens, t.audio_output AS audio_output_tokens, t.cache_read_audio AS cache_read_audio_tokens,
       t.image_input AS image_input_tokens, t.image_output AS image_output_tokens, t.video_input AS video_input_tokens,
       CASE WHEN r.units < 0.15 THEN round((r.units * 40)::numeric, 1) END AS units,
       CASE WHEN r.units < 0.15 THEN (ARRAY['image', 'image', 'second'])[1 + floor(r.units * 20)::int % 3] END AS unit,
       -- Further units: beside units, alone, several, one without a price (search), one of quantity 0.
       CASE WHEN r.units < 0.05 THEN '{"query": 2}'::jsonb
            WHEN r.units BETWEEN 0.15 AND 0.25 THEN jsonb_build_object('query', floor(r.units * 100)::int % 4)
            WHEN r.units BETWEEN 0.25 AND 0.28 THEN '{"query": 1, "second": 2.5}'::jsonb
            WHEN r.units BETWEEN 0.28 AND 0.31 THEN '{"search": 1}'::jsonb END AS extra_units,
       '${feature}' AS feature
  FROM generate_series(1, 4000) AS g(i)
  CROSS JOIN LATERAL (SELECT random() AS pick, random() AS m, random() AS tier, random() AS tenant, random() AS status,
                             random() AS cached, random() AS units, random() AS age, random() AS size, random() AS parts
                       WHERE g.i > 0) r
  CROSS JOIN LATERAL (
    SELECT CASE WHEN r.parts < 0.05 THEN NULL ELSE floor(r.size * r.size * 400000)::bigint END AS input,
           CASE WHEN r.parts < 0.05 OR r.parts > 0.93 THEN NULL ELSE floor(r.size * 5000)::bigint END AS output,
           CASE WHEN r.parts BETWEEN 0.2 AND 0.5 OR r.parts BETWEEN 0.6 AND 0.68 THEN floor(r.size * r.size * 400000 * 0.4)::bigint END AS cache_read,
           CASE WHEN r.parts BETWEEN 0.4 AND 0.6 THEN floor(r.size * r.size * 400000 * 0.3)::bigint END AS cache_write,
           CASE WHEN r.parts BETWEEN 0.5 AND 0.6 THEN floor(r.size * r.size * 400000 * 0.1)::bigint END AS cache_write_1h,
           CASE WHEN r.parts BETWEEN 0.6 AND 0.7 THEN floor(r.size * r.size * 400000 * 0.2)::bigint END AS audio_input,
           CASE WHEN r.parts BETWEEN 0.65 AND 0.75 THEN floor(r.size * 5000 * 0.5)::bigint END AS audio_output,
           CASE WHEN r.parts BETWEEN 0.6 AND 0.68 THEN floor(r.size * r.size * 400000 * 0.1)::bigint END AS cache_read_audio,
           -- Overlapping the cache reads and writes, so that the parts of the
           -- input sometimes exceed it; image output overlaps the audio output.
           CASE WHEN r.parts BETWEEN 0.3 AND 0.45 THEN floor(r.size * r.size * 400000 * 0.25)::bigint END AS image_input,
           CASE WHEN r.parts BETWEEN 0.4 AND 0.55 OR r.parts BETWEEN 0.8 AND 0.85 THEN floor(r.size * r.size * 400000 * 0.3)::bigint END AS video_input,
           CASE WHEN r.parts BETWEEN 0.7 AND 0.8 THEN floor(r.size * 5000 * 0.6)::bigint END AS image_output
  ) t`;

/** Calls matching `where` that the trigger or insert_calls priced differently from ai_cost_internal.cost_of. */
const mismatches = (where: string) => `
  SELECT c.id, c.provider, c.model, c.cost_micros, n.cost_micros AS expected, c.unpriced_reason, n.unpriced_reason AS expected_reason
    FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
   WHERE ${where}
     AND (c.cost_micros, c.computed_cost_micros, c.price_id, c.discount_id, c.unpriced_reason)
         IS DISTINCT FROM (n.cost_micros, n.computed_cost_micros, n.price_id, n.discount_id, n.unpriced_reason)
   LIMIT 5`;

/** Runs `work` on a connection of its own (for a transaction, or a seed that must precede the query). */
async function withClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The generated calls for `feature`, written by one ai_cost.insert_calls() call. */
const insertGenerated = (feature: string) =>
  `SELECT ai_cost.insert_calls((SELECT jsonb_agg(to_jsonb(g)) FROM (${generatedCalls(feature)}) g))::int AS n`;

test('the trigger agrees with ai_cost_internal.cost_of on calls covering every dimension, tier, override and fallback', async (t) => {
  await db.query(`
    SELECT setseed(0.17);
    INSERT INTO ai_cost.calls (created_at, provider, model, service_tier, tenant_id, status, cached, provided_cost_micros,
                               input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens,
                               reasoning_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
                               image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units, feature)
    ${generatedCalls('fast-path')}`);
  const [mix] = await db.query<{ calls: string; priced: string; unpriced: string; discounted: string; organisation_discounted: string;
    tiered: string; aliased: string; reasoning_apart: string; cached_audio: string; image_video_apart: string; image_video_as_whole: string;
    multiple_tier: string; own_tier: string; unknown_tier: string; extra_units: string; extra_unit_unpriced: string;
    declared_rate: string; off_peak: string }>(`
    SELECT count(*)::text AS calls, count(cost_micros)::text AS priced, count(unpriced_reason)::text AS unpriced,
           count(discount_id)::text AS discounted,
           count(*) FILTER (WHERE discount_id IN (SELECT id FROM ai_cost.tenant_discounts WHERE tenant_id IS NULL))::text
             AS organisation_discounted,
           count(*) FILTER (WHERE price_id IN (SELECT id FROM ai_cost.prices WHERE above_input_tokens > 0))::text AS tiered,
           count(*) FILTER (WHERE model = 'full-2025-01-01' AND cost_micros IS NOT NULL)::text AS aliased,
           count(*) FILTER (WHERE reasoning_tokens > 0
                              AND price_id IN (SELECT id FROM ai_cost.prices WHERE reasoning_per_mtok IS NOT NULL))::text AS reasoning_apart,
           count(*) FILTER (WHERE cache_read_audio_tokens > 0 AND cost_micros IS NOT NULL)::text AS cached_audio,
           count(*) FILTER (WHERE coalesce(image_input_tokens, image_output_tokens, video_input_tokens) > 0
                              AND price_id IN (SELECT id FROM ai_cost.prices WHERE image_input_per_mtok IS NOT NULL))::text AS image_video_apart,
           count(*) FILTER (WHERE coalesce(image_input_tokens, image_output_tokens, video_input_tokens) > 0
                              AND price_id IN (SELECT id FROM ai_cost.prices WHERE image_input_per_mtok IS NULL))::text AS image_video_as_whole,
           count(*) FILTER (WHERE service_tier = 'fast' AND cost_micros IS NOT NULL)::text AS multiple_tier,
           count(*) FILTER (WHERE service_tier = 'turbo' AND cost_micros IS NOT NULL)::text AS own_tier,
           count(*) FILTER (WHERE unpriced_reason LIKE 'unknown service tier%')::text AS unknown_tier,
           count(*) FILTER (WHERE extra_units IS NOT NULL AND cost_micros IS NOT NULL)::text AS extra_units,
           count(*) FILTER (WHERE unpriced_reason = 'no price per search')::text AS extra_unit_unpriced,
           count(*) FILTER (WHERE cost_micros IS NOT NULL AND (cache_read_tokens > 0 OR output_tokens > 0)
                              AND price_id IN (SELECT id FROM ai_cost.prices WHERE rates_from IS NOT NULL))::text AS declared_rate,
           count(*) FILTER (WHERE cost_micros IS NOT NULL
                              AND price_id IN (SELECT id FROM ai_cost.prices WHERE daily_from IS NOT NULL))::text AS off_peak
      FROM ai_cost.calls WHERE feature = 'fast-path'`);
  // The sample must exercise both paths and the special cases, or agreement proves little.
  for (const [what, n] of Object.entries(mix!)) t.true(Number(n) > 20, `${what}: ${n}`);

  t.deepEqual(await db.query(mismatches("c.feature = 'fast-path'")), []);
});

test('insert_calls prices the calls the book covers in its own statement, as ai_cost_internal.cost_of does', async (t) => {
  // With the cost trigger disabled (in a transaction rolled back), whatever
  // insert_calls priced, it priced itself.
  await withClient(async (client) => {
    try {
      await client.query('BEGIN; ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call; SELECT setseed(0.17)');
      await client.query(insertGenerated('set-priced-alone'));
      const { rows: [mix] } = await client.query<{ calls: number; priced: number; organisation_discounted: number; long_sum: number;
        reasoning_apart: number; cached_audio: number; image_video: number; multiple_tier: number; without_price_id: number }>(`
        SELECT count(*)::int AS calls, count(cost_micros)::int AS priced,
               count(*) FILTER (WHERE cost_micros IS NOT NULL AND discount_id IS NOT NULL)::int AS organisation_discounted,
               count(*) FILTER (WHERE cost_micros IS NOT NULL
                                  AND coalesce(cache_write_tokens, audio_input_tokens, audio_output_tokens) IS NOT NULL)::int AS long_sum,
               count(*) FILTER (WHERE cost_micros IS NOT NULL AND reasoning_tokens > 0
                                  AND price_id IN (SELECT id FROM ai_cost.prices WHERE reasoning_per_mtok IS NOT NULL))::int AS reasoning_apart,
               count(*) FILTER (WHERE cost_micros IS NOT NULL AND cache_read_audio_tokens > 0)::int AS cached_audio,
               count(*) FILTER (WHERE cost_micros IS NOT NULL
                                  AND coalesce(image_input_tokens, image_output_tokens, video_input_tokens) > 0)::int AS image_video,
               count(*) FILTER (WHERE cost_micros IS NOT NULL AND service_tier = 'fast')::int AS multiple_tier,
               count(*) FILTER (WHERE cost_micros IS NOT NULL AND price_id IS NULL)::int AS without_price_id
          FROM ai_cost.calls WHERE feature = 'set-priced-alone'`);
      t.is(mix!.calls, 4000);
      // About a tenth of the mix is a plain call at a current list price.
      t.true(mix!.priced > 200, `priced in the statement: ${mix!.priced}`);
      t.true(mix!.organisation_discounted > 20, `with an organisation discount: ${mix!.organisation_discounted}`);
      t.true(mix!.long_sum > 20, `with cache writes or audio: ${mix!.long_sum}`);
      t.true(mix!.reasoning_apart > 10, `with reasoning at a rate of its own: ${mix!.reasoning_apart}`);
      t.true(mix!.cached_audio > 5, `with cached audio: ${mix!.cached_audio}`);
      t.true(mix!.image_video > 10, `with image or video: ${mix!.image_video}`);
      t.true(mix!.multiple_tier > 2, `on a tier priced as a multiple of standard: ${mix!.multiple_tier}`);
      t.is(mix!.without_price_id, 0);
      t.deepEqual((await client.query(mismatches("c.feature = 'set-priced-alone' AND c.cost_micros IS NOT NULL"))).rows, []);
    } finally {
      await client.query('ROLLBACK');
    }
  });
});

test('insert_calls and the trigger together price every call as ai_cost_internal.cost_of does', async (t) => {
  const inserted = await withClient(async (client) => {
    await client.query('SELECT setseed(0.17)');
    return (await client.query<{ n: number }>(insertGenerated('set-priced'))).rows[0]!.n;
  });
  t.is(inserted, 4000);
  t.deepEqual(await db.query(mismatches("c.feature = 'set-priced'")), []);
});

test('names on a hostile search_path cannot change what the trigger computes', async (t) => {
  const [expected] = await db.query<{ cost: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens, created_at)
     VALUES ('fp', 'full', 10000, 1000, 2000, '2025-02-01') RETURNING cost_micros::text AS cost`);
  const client = await db.pool.connect(async (connection) => {
    const { sql } = await import('slonik');
    await connection.query(sql.unsafe`CREATE SCHEMA IF NOT EXISTS hostile`);
    await connection.query(sql.unsafe`CREATE OR REPLACE FUNCTION hostile.zero(numeric, numeric) RETURNS numeric LANGUAGE sql AS 'SELECT 0::numeric'`);
    await connection.query(sql.unsafe`CREATE OR REPLACE FUNCTION hostile.ceil(numeric) RETURNS numeric LANGUAGE sql AS 'SELECT 0::numeric'`);
    await connection.query(sql.unsafe`CREATE OR REPLACE FUNCTION hostile.coalesce(bigint, bigint) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'`);
    await connection.query(sql.unsafe`DROP OPERATOR IF EXISTS hostile.* (numeric, numeric)`);
    await connection.query(sql.unsafe`CREATE OPERATOR hostile.* (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = hostile.zero)`);
    await connection.query(sql.unsafe`SET search_path = hostile, public`);
    return connection.oneFirst(sql.unsafe`
      INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens, created_at)
      VALUES ('fp', 'full', 10000, 1000, 2000, '2025-02-01') RETURNING cost_micros::text`);
  });
  // 8,000 x 1.10 + 2,000 x 0.11 + 1,000 x 4.40 = 8,800 + 220 + 4,400 = 13,420
  t.is(expected!.cost, '13420');
  t.is(client, '13420');
});

test('a successful call that reports no usage is unpriced, not free; a failed one costs 0', async (t) => {
  const rows = await db.query<{ status: string; cost_micros: string | null; unpriced_reason: string | null }>(`
    INSERT INTO ai_cost.calls (provider, model, status) VALUES ('fp', 'full', 'success'), ('fp', 'full', 'error'), ('fp', 'full', 'cancelled')
    RETURNING status, cost_micros::text, unpriced_reason`);
  t.deepEqual(rows.map((r) => [r.status, r.cost_micros]), [['success', null], ['error', '0'], ['cancelled', '0']]);
  t.regex(rows[0]!.unpriced_reason!, /no usage reported/);
});

test('a strict provider still refuses what it cannot price, on either path', async (t) => {
  const noPrice = await t.throwsAsync(db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('fp-strict', 'x', 10)`));
  t.regex(noPrice!.message, /cannot price call of fp-strict\/x/);
  const noUsage = await t.throwsAsync(db.query(`INSERT INTO ai_cost.calls (provider, model) VALUES ('fp-strict', 'x')`));
  t.regex(noUsage!.message, /no usage reported/);
});

const WRITER = `fast_path_w_${randomBytes(4).toString('hex')}`;
test.after.always(() => dropLogins(WRITER));

// The trigger names each of the book's arrays once per expression, through
// SQL functions the planner inlines (sql/060_cost.sql): one not inlined (a
// SET clause, a writer without EXECUTE on it) would be called for every call
// and plan the arrays as often as before. A function inlined is never
// called, so statistics count no call of it.
test('the book helpers of the cost trigger are inlined, for the owner and for a writer login', async (t) => {
  await db.query(`CREATE ROLE ${WRITER} LOGIN PASSWORD 'fast-path-pw'; GRANT ai_cost_writer TO ${WRITER};
                  ALTER ROLE ${WRITER} SET track_functions = 'all'`);
  const [book] = await db.query<{ slot: number | null }>(`SELECT ai_cost_internal.price_book_slot('fp standard full') AS slot`);
  t.not(book!.slot, null, 'the calls below are priced from the book');
  for (const [who, url] of [['the owner', db.url], ['a writer login', loginUrl(db.url, WRITER, 'fast-path-pw')]] as const) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('BEGIN');
      if (who === 'the owner') await client.query(`SET LOCAL track_functions = 'all'`);
      const { rows: priced } = await client.query<{ cost_micros: string | null }>(`
        INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_write_tokens)
        VALUES ('fp', 'full', 1000, 100, NULL), ('fp', 'full', 1000, 100, 200) RETURNING cost_micros::text`);
      t.true(priced.every((row) => row.cost_micros !== null), who);
      const { rows: called } = await client.query<{ name: string; calls: string }>(`
        SELECT funcname AS name, calls::text FROM pg_stat_xact_user_functions
         WHERE schemaname = 'ai_cost_internal' AND funcname IN ('price_call', 'book_cost_of_plain_call', 'book_cost_of_call', 'book_discount_id')
         ORDER BY funcname`);
      t.deepEqual(called, [{ name: 'price_call', calls: '2' }], `${who}: only the trigger function itself is called`);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  }
});

// Planning parses every constant an expression names, and the full rates are
// the largest by far (sql/060_cost.sql): a plain call's path reads the
// book's small arrays instead. Full rates that cannot be parsed stop every
// plan that names them, so only a call past the plain path fails here.
test('a plain call is priced from the small arrays of the book, without planning the full rates', async (t) => {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    // Unchecked when created, the literal is parsed where a plan inlines it.
    await client.query('BEGIN; SET LOCAL check_function_bodies = off');
    await client.query(`CREATE OR REPLACE FUNCTION ai_cost_internal.price_book_rates() RETURNS bigint[]
                          LANGUAGE sql STABLE PARALLEL SAFE AS $$SELECT CAST('not an array' AS pg_catalog.int8[])$$`);
    const { rows: [plain] } = await client.query<{ cost_micros: string | null; price_id: string | null; same: boolean }>(`
      INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens)
      VALUES ('fp', 'full', 1000, 100, 200)
      RETURNING cost_micros::text, price_id::text,
                (cost_micros, price_id) IS NOT DISTINCT FROM
                (SELECT (n.cost_micros, n.price_id) FROM ai_cost_internal.cost_of(calls) n) AS same`);
    t.not(plain!.cost_micros, null);
    t.true(plain!.same, 'the price the lookup gives');
    await client.query('SAVEPOINT rich');
    const rich = await t.throwsAsync(client.query(`
      INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_write_tokens) VALUES ('fp', 'full', 1000, 100, 200)`));
    t.regex(rich!.message, /malformed array literal/, 'a call with cache writes plans the full rates');
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    await client.end();
  }
});
