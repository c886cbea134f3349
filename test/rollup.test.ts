import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { useTestDatabase, type TestDatabase } from './support/database.js';

// Every rollup and BI object must equal the same aggregate computed from the
// raw ai_cost.calls, after any mix of inserts, late rows, repricing updates,
// deletes and writers that commit while a refresh runs. Each file gets its
// own database; the tests below run one after the other on it.
const db = useTestDatabase(test, {
  setup: (db) => db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
    VALUES ('test', 'mini', '2020-01-01', 0.15, 0.60, 0.075),
           ('test', 'big',  '2020-01-01', 3.00, 15.00, 0.30)`).then(() => {}),
});

/** Inserts `rows` random calls spread over the last `hours` hours (70 days: covers last month for the trends). */
async function insertCalls(client: { query: TestDatabase['query'] }, rows: number, hours = 70 * 24) {
  await client.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, operation, status, tenant_id, user_id, feature,
                               conversation_id, input_tokens, output_tokens, cache_read_tokens, streamed,
                               cached, ttft_ms, total_ms)
    SELECT now() - random() * $2 * interval '1 hour', 'test',
           (ARRAY['mini', 'big', 'unpriced-model'])[1 + floor(random() * 3)::int],
           (ARRAY['chat', 'embedding'])[1 + floor(random() * 2)::int],
           (ARRAY['success', 'success', 'success', 'error', 'cancelled'])[1 + floor(random() * 5)::int],
           (ARRAY['t1', 't2', 't3', NULL])[1 + floor(random() * 4)::int],
           'u' || floor(random() * 6)::int,
           (ARRAY['chat', 'search', NULL])[1 + floor(random() * 3)::int],
           CASE WHEN random() < 0.7 THEN 'c' || floor(random() * 20)::int END,
           s.input, floor(random() * 800)::int, floor(random() * s.input / 2)::int,
           s.streamed, random() < 0.1,
           CASE WHEN s.streamed THEN 20 + floor(random() * 900)::int END,
           CASE WHEN random() < 0.95 THEN floor(exp(random() * 10))::int END
      FROM (SELECT 100 + floor(random() * 5000)::int AS input, random() < 0.5 AS streamed
              FROM generate_series(1, $1)) AS s`, [rows, hours]);
}

const KEY = 'hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason';
const MEASURES = `calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens,
  cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum, ttft_ms_calls, ttft_ms_sum`;

/** The hourly rollup computed straight from the raw table. */
const RAW_HOURLY = `
  SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
         tenant_id, user_id, feature, cached, unpriced_reason,
         count(*)::bigint AS calls, count(*) FILTER (WHERE cost_micros IS NULL)::bigint AS unpriced_calls,
         coalesce(sum(cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(input_tokens), 0)::bigint AS input_tokens, coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
         coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
         coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens,
         coalesce(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
         count(total_ms)::bigint AS total_ms_calls, coalesce(sum(total_ms), 0)::bigint AS total_ms_sum,
         count(ttft_ms) FILTER (WHERE streamed)::bigint AS ttft_ms_calls,
         coalesce(sum(ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum
    FROM ai_cost.calls
   GROUP BY ${KEY}`;

/** Histogram buckets as (key, metric, bucket, count) rows, from the raw latencies. */
const RAW_BUCKETS = `
  SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
         tenant_id, user_id, feature, cached, unpriced_reason, m.metric, ai_cost.latency_bucket(m.ms) AS bucket,
         count(*)::bigint AS n
    FROM ai_cost.calls
   CROSS JOIN LATERAL (VALUES ('total', total_ms), ('ttft', CASE WHEN streamed THEN ttft_ms END)) AS m(metric, ms)
   WHERE m.ms IS NOT NULL
   GROUP BY ${KEY}, m.metric, bucket`;

/** The same from a rollup-shaped relation: unnested histograms, summed per key. */
const rollupBuckets = (relation: string) => `
  SELECT ${KEY}, m.metric, (u.i - 1)::int AS bucket, sum(u.n)::bigint AS n
    FROM ${relation} r
   CROSS JOIN LATERAL (VALUES ('total', r.total_ms_hist), ('ttft', r.ttft_ms_hist)) AS m(metric, hist)
   CROSS JOIN LATERAL unnest(m.hist) WITH ORDINALITY AS u(n, i)
   GROUP BY ${KEY}, m.metric, bucket
  HAVING sum(u.n) <> 0`;

const summedByKey = (relation: string) => `
  SELECT ${KEY}, ${MEASURES.split(',').map((c) => `sum(${c.trim()})::bigint AS ${c.trim()}`).join(', ')}
    FROM ${relation} GROUP BY ${KEY} HAVING sum(calls) <> 0`;

/** The windowed BI views, and their raw equivalents, as (actual, expected) query pairs. */
const RAW_WINDOWED = `
  WITH w AS (SELECT * FROM (VALUES ('24h', 24), ('7d', 168), ('30d', 720)) AS v(label, hours))
  SELECT w.label, c.* FROM w JOIN ai_cost.calls c
    ON c.created_at >= date_trunc('hour', now(), 'UTC') - (w.hours - 1) * interval '1 hour'`;

const BI_CHECKS: Array<[string, string, string]> = [
  ['spend_share', 'SELECT * FROM ai_cost.spend_share', `
    WITH d AS (SELECT c.label, v.dimension, v.value, c.status, c.cost_micros FROM (${RAW_WINDOWED}) c
                CROSS JOIN LATERAL (VALUES ('provider', c.provider), ('model', c.model), ('operation', c.operation),
                  ('tenant', c.tenant_id), ('user', c.user_id), ('feature', c.feature)) AS v(dimension, value)),
         g AS (SELECT label, dimension, value, count(*)::bigint AS calls,
                      count(*) FILTER (WHERE status = 'success')::bigint AS successes,
                      sum(cost_micros)::bigint AS cost_micros,
                      count(*) FILTER (WHERE cost_micros IS NULL)::bigint AS unpriced_calls
                 FROM d GROUP BY 1, 2, 3)
    SELECT label, dimension, value, calls, successes, cost_micros, unpriced_calls,
           round(cost_micros::numeric / nullif(sum(cost_micros) OVER (PARTITION BY label, dimension), 0), 6)
      FROM g`],
  ['error_rate_by_model', 'SELECT * FROM ai_cost.error_rate_by_model', `
    SELECT label, provider, model, count(*)::bigint, count(*) FILTER (WHERE status = 'error')::bigint,
           count(*) FILTER (WHERE status = 'cancelled')::bigint,
           round(count(*) FILTER (WHERE status = 'error')::numeric / count(*), 6)
      FROM (${RAW_WINDOWED}) c GROUP BY 1, 2, 3`],
  ['error_rate_by_feature', 'SELECT * FROM ai_cost.error_rate_by_feature', `
    SELECT label, feature, count(*)::bigint, count(*) FILTER (WHERE status = 'error')::bigint,
           count(*) FILTER (WHERE status = 'cancelled')::bigint,
           round(count(*) FILTER (WHERE status = 'error')::numeric / count(*), 6)
      FROM (${RAW_WINDOWED}) c GROUP BY 1, 2`],
  // Percentiles: the bucket of the exact percentile_disc, which the histogram must find.
  ['latency_by_model', 'SELECT * FROM ai_cost.latency_by_model', `
    WITH s AS (SELECT label, provider, model, total_ms, CASE WHEN streamed THEN ttft_ms END AS ttft
                 FROM (${RAW_WINDOWED}) c WHERE status = 'success' AND NOT cached)
    SELECT label, provider, model, count(total_ms)::bigint, round(avg(total_ms)),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.50) WITHIN GROUP (ORDER BY total_ms))),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.95) WITHIN GROUP (ORDER BY total_ms))),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.99) WITHIN GROUP (ORDER BY total_ms))),
           count(ttft)::bigint, round(avg(ttft)),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.50) WITHIN GROUP (ORDER BY ttft))),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.95) WITHIN GROUP (ORDER BY ttft))),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.99) WITHIN GROUP (ORDER BY ttft)))
      FROM s GROUP BY 1, 2, 3 HAVING count(total_ms) + count(ttft) > 0`],
  ['top_spenders', 'SELECT * FROM ai_cost.top_spenders', `
    WITH c AS (SELECT * FROM (${RAW_WINDOWED}) c WHERE label <> '24h'),
         totals AS (SELECT label, sum(cost_micros) AS total FROM c GROUP BY label),
         s AS (SELECT label, v.kind, v.id, count(*) AS calls, coalesce(sum(cost_micros), 0) AS cost,
                      count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced
                 FROM c CROSS JOIN LATERAL (VALUES ('tenant', tenant_id), ('user', user_id), ('conversation', conversation_id)) AS v(kind, id)
                WHERE v.id IS NOT NULL GROUP BY 1, 2, 3),
         r AS (SELECT s.*, row_number() OVER (PARTITION BY label, kind ORDER BY cost DESC, calls DESC, id) AS rank FROM s)
    SELECT r.label, kind, rank, id, calls::bigint, CASE WHEN calls <> unpriced THEN cost::bigint END, unpriced::bigint,
           CASE WHEN calls <> unpriced THEN round(cost / nullif(total, 0), 6) END
      FROM r JOIN totals USING (label) WHERE rank <= 100`],
  ['spend_trends', 'SELECT * FROM ai_cost.spend_trends', `
    WITH m AS (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AS mu,
                      date_trunc('hour', now(), 'UTC') - interval '167 hours' AS ws),
         b AS (SELECT ws, ws - interval '168 hours' AS pws, mu AT TIME ZONE 'UTC' AS ms,
                      (mu - interval '1 month') AT TIME ZONE 'UTC' AS pms, (mu + interval '1 month') AT TIME ZONE 'UTC' AS me FROM m),
         c AS (SELECT v.dimension, v.value, c.created_at AS at, c.cost_micros, b.* FROM ai_cost.calls c, b
                CROSS JOIN LATERAL (VALUES ('total', NULL), ('provider', c.provider), ('model', c.model),
                  ('tenant', c.tenant_id), ('feature', c.feature)) AS v(dimension, value)
               WHERE c.created_at >= least(b.pws, b.pms)),
         -- A window's spend: 0 without calls, the priced sum, NULL when none is priced.
         s AS (SELECT dimension, value,
                      coalesce(sum(cost_micros) FILTER (WHERE at >= ws), CASE WHEN count(*) FILTER (WHERE at >= ws) = 0 THEN 0 END)::bigint AS l7,
                      coalesce(sum(cost_micros) FILTER (WHERE at >= pws AND at < ws), CASE WHEN count(*) FILTER (WHERE at >= pws AND at < ws) = 0 THEN 0 END)::bigint AS p7,
                      coalesce(sum(cost_micros) FILTER (WHERE at >= ms), CASE WHEN count(*) FILTER (WHERE at >= ms) = 0 THEN 0 END)::bigint AS mtd,
                      coalesce(sum(cost_micros) FILTER (WHERE at >= pms AND at < ms), CASE WHEN count(*) FILTER (WHERE at >= pms AND at < ms) = 0 THEN 0 END)::bigint AS lm,
                      coalesce(sum(cost_micros) FILTER (WHERE at >= pms AND date_trunc('hour', at, 'UTC') < pms + make_interval(secs => extract(epoch FROM now() - ms))),
                               CASE WHEN count(*) FILTER (WHERE at >= pms AND date_trunc('hour', at, 'UTC') < pms + make_interval(secs => extract(epoch FROM now() - ms))) = 0 THEN 0 END)::bigint AS lmtd,
                      count(*) FILTER (WHERE at >= ws AND cost_micros IS NULL)::bigint AS l7_unpriced,
                      count(*) FILTER (WHERE at >= pws AND at < ws AND cost_micros IS NULL)::bigint AS p7_unpriced,
                      count(*) FILTER (WHERE at >= ms AND cost_micros IS NULL)::bigint AS mtd_unpriced,
                      count(*) FILTER (WHERE at >= pms AND at < ms AND cost_micros IS NULL)::bigint AS lm_unpriced,
                      count(*) FILTER (WHERE at >= ws OR at >= ms OR at >= pws AND at < ws OR at >= pms AND at < ms) AS any_calls,
                      max(me) AS me, max(ms) AS ms
                 FROM c GROUP BY 1, 2)
    SELECT dimension, value, l7, p7, round((l7 - p7)::numeric / nullif(p7, 0), 6), mtd, lm, lmtd,
           round(mtd * (extract(epoch FROM me - ms) / greatest(extract(epoch FROM now() - ms), 1))::numeric)::bigint,
           l7_unpriced, p7_unpriced, mtd_unpriced, lm_unpriced
      FROM s WHERE dimension = 'total' OR any_calls > 0`],
];

/**
 * The cost of the successful calls of a group, as the views report it: 0
 * without successes, the priced sum, NULL when none of them is priced.
 */
const PRICED_SUCCESS_COST = `coalesce(sum(cost_micros) FILTER (WHERE status = 'success'),
  CASE WHEN count(*) FILTER (WHERE status = 'success') = 0 THEN 0 END)::bigint`;

/**
 * Spend per day and dimension straight from the raw table, with `day` as the
 * day expression over c: as the rollup stores it (sums over priced calls, the
 * unpriced successes last, and the model ids the windowed views read) or as
 * the view reports it.
 */
function rawByDimension(day: string, as: 'stored' | 'reported'): string {
  const cost = as === 'stored'
    ? `coalesce(sum(c.cost_micros), 0)::bigint, coalesce(sum(c.cost_micros) FILTER (WHERE c.status = 'success'), 0)::bigint`
    : `sum(c.cost_micros)::bigint, ${PRICED_SUCCESS_COST.replaceAll('cost_micros', 'c.cost_micros').replaceAll('status', 'c.status')}`;
  return `
    SELECT ${day}, v.dimension, v.value, count(*)::bigint, count(*) FILTER (WHERE c.status = 'success')::bigint,
           count(*) FILTER (WHERE c.status = 'error')::bigint, count(*) FILTER (WHERE c.status = 'cancelled')::bigint,
           ${cost}, count(*) FILTER (WHERE c.cost_micros IS NULL)::bigint, coalesce(sum(c.input_tokens), 0)::bigint,
           coalesce(sum(c.output_tokens), 0)::bigint
           ${as === 'stored' ? `, count(*) FILTER (WHERE c.cost_micros IS NULL AND c.status = 'success')::bigint` : ''}
      FROM ai_cost.calls c
     CROSS JOIN LATERAL (VALUES ('provider', c.provider), ('model', c.provider || '/' || c.model), ('operation', c.operation),
                                ('service_tier', c.service_tier), ('tenant', c.tenant_id), ('user', c.user_id),
                                ('feature', c.feature)${as === 'stored' ? ", ('model_id', c.model)" : ''}) AS v(dimension, value)
     GROUP BY 1, 2, 3`;
}

/** The internal daily and per-model/feature rollups, and the raw aggregates they must equal. */
const NARROW_ROLLUPS: Array<[string, string, string]> = [
  ['daily per-user rollup', `
    SELECT day, tenant_id, user_id, calls, successes, unpriced_calls, cost_micros, input_tokens, output_tokens
      FROM ai_cost_internal.users_daily`, `
    SELECT date_trunc('day', created_at, 'UTC'), tenant_id, user_id, count(*)::bigint,
           count(*) FILTER (WHERE status = 'success')::bigint, count(*) FILTER (WHERE cost_micros IS NULL)::bigint,
           coalesce(sum(cost_micros), 0)::bigint, coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint
      FROM ai_cost.calls GROUP BY 1, 2, 3`],
  ['hourly per-model rollup', `
    SELECT hour, provider, model, status, cached, calls, total_ms_calls, total_ms_sum, ttft_ms_calls, ttft_ms_sum,
           ai_cost.histogram_percentile(total_ms_hist, 0.99), ai_cost.histogram_percentile(ttft_ms_hist, 0.5)
      FROM ai_cost_internal.models_hourly`, `
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, count(*)::bigint,
           count(total_ms)::bigint, coalesce(sum(total_ms), 0)::bigint,
           count(ttft_ms) FILTER (WHERE streamed)::bigint, coalesce(sum(ttft_ms) FILTER (WHERE streamed), 0)::bigint,
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.99) WITHIN GROUP (ORDER BY total_ms))),
           ai_cost.latency_bucket_value(ai_cost.latency_bucket(percentile_disc(0.5) WITHIN GROUP (ORDER BY ttft_ms) FILTER (WHERE streamed)))
      FROM ai_cost.calls GROUP BY 1, 2, 3, 4, 5`],
  ['hourly per-feature rollup', 'SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly', `
    SELECT date_trunc('hour', created_at, 'UTC'), feature, status, count(*)::bigint FROM ai_cost.calls GROUP BY 1, 2, 3`],
  ['hourly activity rollup', `
    SELECT hour, status, cached, calls, cost_micros, input_tokens, output_tokens, unpriced_calls FROM ai_cost_internal.activity_hourly`, `
    SELECT date_trunc('hour', created_at, 'UTC'), status, cached, count(*)::bigint, coalesce(sum(cost_micros), 0)::bigint,
           coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
           count(*) FILTER (WHERE cost_micros IS NULL)::bigint
      FROM ai_cost.calls GROUP BY 1, 2, 3`],
  ['hourly unpriced rollup', `
    SELECT hour, provider, model, service_tier, unpriced_reason, calls, input_tokens, output_tokens
      FROM ai_cost_internal.unpriced_hourly`, `
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, service_tier, unpriced_reason, count(*)::bigint,
           coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint
      FROM ai_cost.calls WHERE cost_micros IS NULL GROUP BY 1, 2, 3, 4, 5`],
  ['daily per-dimension rollup', `
    SELECT day, dimension, value, calls, successes, errors, cancelled, cost_micros, success_cost_micros, unpriced_calls,
           input_tokens, output_tokens, unpriced_successes
      FROM ai_cost_internal.dimensions_daily`, rawByDimension(`date_trunc('day', c.created_at, 'UTC')`, 'stored')],
];

/**
 * Refreshes and compares everything with the raw table in ONE transaction on
 * one connection, so now() (the windows) and the snapshot are the same for
 * both sides.
 */
async function assertMatchesRaw(t: ExecutionContext, { refresh = true } = {}) {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const same = async (label: string, actual: string, expected: string) => {
      const { rows } = await client.query(`
        WITH a AS (${actual}), e AS (${expected})
        SELECT 'unexpected' AS side, x::text FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM e) AS x
        UNION ALL
        SELECT 'missing', y::text FROM (SELECT * FROM e EXCEPT ALL SELECT * FROM a) AS y
        LIMIT 6`);
      const { rows: [count] } = await client.query(`SELECT count(*)::int AS n FROM (${expected}) AS e`);
      t.true(count.n > 0, `${label}: the raw side is empty, so the comparison would prove nothing`);
      t.deepEqual(rows, [], `${label} differs from the raw table`);
    };
    // Before refreshing: the live views must already be exact.
    await same('calls_hourly_live', summedByKey('ai_cost.calls_hourly_live'), RAW_HOURLY);
    await same('calls_hourly_live histograms', rollupBuckets('ai_cost.calls_hourly_live'), RAW_BUCKETS);
    if (refresh) {
      // READ COMMITTED inside refresh() is not possible in this transaction, but
      // REPEATABLE READ gives it the same snapshot the checks below read.
      const { rows: [result] } = await client.query('SELECT * FROM ai_cost.refresh()');
      t.true(result.refreshed, 'refresh ran');
      await same('calls_hourly', `SELECT ${KEY}, ${MEASURES} FROM ai_cost.calls_hourly`, RAW_HOURLY);
      await same('calls_hourly histograms', rollupBuckets('ai_cost.calls_hourly'), RAW_BUCKETS);
      const { rows: [pending] } = await client.query('SELECT count(*)::int AS n FROM ai_cost_internal.pending_changes');
      t.is(pending.n, 0, 'refresh consumed every committed change');
      // The narrower rollups the windowed views and budgets read, over all history.
      for (const [label, actual, expected] of NARROW_ROLLUPS) await same(label, actual, expected);
    }
    await same('conversations_hourly_live', `
      SELECT hour, conversation_id, tenant_id, user_id, sum(calls)::bigint, sum(unpriced_calls)::bigint,
             sum(cost_micros)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint
        FROM ai_cost.conversations_hourly_live GROUP BY 1, 2, 3, 4 HAVING sum(calls) <> 0`, `
      SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id, count(*)::bigint,
             count(*) FILTER (WHERE cost_micros IS NULL)::bigint, coalesce(sum(cost_micros), 0)::bigint,
             coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint
        FROM ai_cost.calls WHERE conversation_id IS NOT NULL GROUP BY 1, 2, 3, 4`);
    await same('spend_daily', `
      SELECT day, provider, model, operation, service_tier, tenant_id, user_id, feature, calls, successes,
             errors, cancelled, cost_micros, success_cost_micros, unpriced_calls, input_tokens, output_tokens
        FROM ai_cost.spend_daily`, `
      SELECT (created_at AT TIME ZONE 'UTC')::date, provider, model, operation, service_tier, tenant_id, user_id, feature,
             count(*)::bigint, count(*) FILTER (WHERE status = 'success')::bigint,
             count(*) FILTER (WHERE status = 'error')::bigint, count(*) FILTER (WHERE status = 'cancelled')::bigint,
             sum(cost_micros)::bigint, ${PRICED_SUCCESS_COST},
             count(*) FILTER (WHERE cost_micros IS NULL)::bigint, coalesce(sum(input_tokens), 0)::bigint,
             coalesce(sum(output_tokens), 0)::bigint
        FROM ai_cost.calls GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`);
    await same('spend_daily_by_user', 'SELECT * FROM ai_cost.spend_daily_by_user', `
      SELECT (created_at AT TIME ZONE 'UTC')::date, tenant_id, user_id, count(*)::bigint,
             count(*) FILTER (WHERE status = 'success')::bigint, sum(cost_micros)::bigint,
             count(*) FILTER (WHERE cost_micros IS NULL)::bigint, coalesce(sum(input_tokens), 0)::bigint,
             coalesce(sum(output_tokens), 0)::bigint
        FROM ai_cost.calls GROUP BY 1, 2, 3`);
    await same('spend_by_day', 'SELECT * FROM ai_cost.spend_by_day', `
      SELECT (created_at AT TIME ZONE 'UTC')::date, count(*)::bigint, count(*) FILTER (WHERE status = 'success')::bigint,
             count(*) FILTER (WHERE status = 'error')::bigint, count(*) FILTER (WHERE status = 'cancelled')::bigint,
             sum(cost_micros)::bigint, ${PRICED_SUCCESS_COST},
             count(*) FILTER (WHERE cost_micros IS NULL)::bigint, coalesce(sum(input_tokens), 0)::bigint,
             coalesce(sum(output_tokens), 0)::bigint
        FROM ai_cost.calls GROUP BY 1`);
    await same('unpriced_models', `
      SELECT provider, model, service_tier, unpriced_reason, unpriced_calls, input_tokens, output_tokens, first_hour, last_hour
        FROM ai_cost.unpriced_models`, `
      SELECT provider, model, service_tier, unpriced_reason, count(*)::bigint, coalesce(sum(input_tokens), 0)::bigint,
             coalesce(sum(output_tokens), 0)::bigint, min(date_trunc('hour', created_at, 'UTC')), max(date_trunc('hour', created_at, 'UTC'))
        FROM ai_cost.calls WHERE cost_micros IS NULL GROUP BY 1, 2, 3, 4`);
    await same('activity_hourly', 'SELECT * FROM ai_cost.activity_hourly', `
      SELECT date_trunc('hour', created_at, 'UTC'), count(*)::bigint, count(*) FILTER (WHERE status = 'success')::bigint,
             count(*) FILTER (WHERE status = 'error')::bigint, count(*) FILTER (WHERE status = 'cancelled')::bigint,
             count(*) FILTER (WHERE cached)::bigint, sum(cost_micros)::bigint,
             coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
             count(*) FILTER (WHERE cost_micros IS NULL)::bigint
        FROM ai_cost.calls GROUP BY 1`);
    await same('spend_daily_by_dimension', 'SELECT * FROM ai_cost.spend_daily_by_dimension',
      rawByDimension(`(c.created_at AT TIME ZONE 'UTC')::date`, 'reported'));
    if (refresh) {
      for (const [label, actual, expected] of BI_CHECKS) await same(label, actual, expected);
    }
    // An arbitrary window, not on hour boundaries, through calls_between().
    await same('calls_between', summedByKey(`ai_cost.calls_between(now() - interval '30 days 17 minutes', now() - interval '2 days 41 minutes')`), `
      SELECT * FROM (${RAW_HOURLY.replace('FROM ai_cost.calls', `FROM ai_cost.calls WHERE created_at >= now() - interval '30 days 17 minutes' AND created_at < now() - interval '2 days 41 minutes'`)}) AS r`);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

test.serial('rollups and every BI view equal the raw aggregates after inserts', async (t) => {
  await insertCalls(db, 3000);
  await assertMatchesRaw(t);
});

/**
 * What the windowed views read, summed from each cut on, for windows that
 * start at each hour of a day and one cut inside an hour (the trends'), so
 * that every way a window can split a day is checked whatever the time the
 * test runs; and the same from the raw calls, by the hour of each call.
 */
/** Each slice function against the raw calls, summed from every cut of a window starting at each hour of a day. */
const CUTS_AT_EVERY_HOUR = `
  SELECT k, date_trunc('hour', now(), 'UTC') - (719 + k) * interval '1 hour' AS since,
         ARRAY[date_trunc('hour', now(), 'UTC') - (23 + k) * interval '1 hour',
               date_trunc('hour', now(), 'UTC') - (167 + k) * interval '1 hour',
               now() - interval '20 days' - k * interval '1 hour'] AS cuts
    FROM generate_series(0, 23) AS k`;
const SLICE_SUMS = `sum(s.calls)::bigint AS calls, sum(s.successes)::bigint AS successes,
  sum(s.unpriced_calls)::bigint AS unpriced_calls, sum(s.cost_micros)::bigint AS cost_micros`;
const RAW_SUMS = `count(*)::bigint, count(*) FILTER (WHERE a.status = 'success')::bigint,
  count(*) FILTER (WHERE a.cost_micros IS NULL)::bigint, coalesce(sum(a.cost_micros), 0)::bigint`;
const SLICES_FROM_EACH_CUT = [
  {
    name: 'dimension_slices',
    sliced: `
      SELECT c.k, x.cut, s.dimension, s.value, ${SLICE_SUMS}
        FROM cuts c
       CROSS JOIN LATERAL ai_cost_internal.dimension_slices(
               c.since, c.cuts, ARRAY['provider', 'model', 'operation', 'tenant', 'user', 'feature']) AS s
        JOIN unnest(c.cuts) AS x(cut) ON s.start >= x.cut
       GROUP BY 1, 2, 3, 4
      HAVING sum(s.calls) <> 0`,
    raw: `
      SELECT c.k, x.cut, v.dimension, v.value, ${RAW_SUMS}
        FROM cuts c
       CROSS JOIN unnest(c.cuts) AS x(cut)
        JOIN ai_cost.calls a ON date_trunc('hour', a.created_at, 'UTC') >= x.cut
       CROSS JOIN LATERAL (VALUES ('provider', a.provider), ('model', a.model), ('operation', a.operation),
                                  ('tenant', a.tenant_id), ('user', a.user_id), ('feature', a.feature)) AS v(dimension, value)
       GROUP BY 1, 2, 3, 4`,
  },
  {
    name: 'user_slices',
    sliced: `
      SELECT c.k, x.cut, s.tenant_id, s.user_id, ${SLICE_SUMS}
        FROM cuts c
       CROSS JOIN LATERAL ai_cost_internal.user_slices(c.since, c.cuts) AS s
        JOIN unnest(c.cuts) AS x(cut) ON s.start >= x.cut
       GROUP BY 1, 2, 3, 4
      HAVING sum(s.calls) <> 0`,
    raw: `
      SELECT c.k, x.cut, a.tenant_id, a.user_id, ${RAW_SUMS}
        FROM cuts c
       CROSS JOIN unnest(c.cuts) AS x(cut)
        JOIN ai_cost.calls a ON date_trunc('hour', a.created_at, 'UTC') >= x.cut
       GROUP BY 1, 2, 3, 4`,
  },
];

test.serial('the windowed views read exact sums from any hour a window starts at', async (t) => {
  // Some calls not folded yet: the slices read the live rollups.
  await insertCalls(db, 300, 30 * 24);
  for (const { name, sliced, raw } of SLICES_FROM_EACH_CUT) {
    const [counted] = await db.query<{ rows: string }>(
      `WITH cuts AS (${CUTS_AT_EVERY_HOUR}) SELECT count(*)::text AS rows FROM (${sliced}) s`);
    t.true(Number(counted!.rows) > 24 * 3 * 6, `${name}: every cut has rows to compare`);
    t.deepEqual(await db.query(`WITH cuts AS (${CUTS_AT_EVERY_HOUR}) (${sliced}) EXCEPT (${raw})`), [],
      `${name}: no sum the calls lack`);
    t.deepEqual(await db.query(`WITH cuts AS (${CUTS_AT_EVERY_HOUR}) (${raw}) EXCEPT (${sliced})`), [],
      `${name}: no sum the slices lack`);
  }
});

test.serial('late rows, repricing, moved and deleted calls reach the rollups', async (t) => {
  await insertCalls(db, 300, 24 * 60); // late rows: up to 60 days in the past, after the refresh
  // A new price for 'mini', back-dated, and a reprice: plain batched UPDATEs, as the pricing code does.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
                  VALUES ('test', 'mini', now() - interval '20 days', 0.10, 0.40, 0.05)`);
  await db.query(`UPDATE ai_cost.calls SET price_id = NULL WHERE model = 'mini' AND created_at >= now() - interval '20 days' AND id % 2 = 0`);
  await db.query(`UPDATE ai_cost.calls SET price_id = NULL WHERE model = 'mini' AND created_at >= now() - interval '20 days' AND id % 2 = 1`);
  await db.query(`UPDATE ai_cost.calls SET tenant_id = 't9', created_at = created_at - interval '3 hours' WHERE id % 7 = 0`);
  await db.query('UPDATE ai_cost.calls SET metadata = \'{"touched": true}\' WHERE id % 11 = 0');
  await db.query('DELETE FROM ai_cost.calls WHERE id % 13 = 0');
  await assertMatchesRaw(t, { refresh: false });
  await assertMatchesRaw(t);
});

test.serial('a writer that drew lower ids and commits after a refresh is counted once', async (t) => {
  const early = new pg.Client({ connectionString: db.url });
  await early.connect();
  try {
    await early.query('BEGIN');
    await insertCalls(early, 50, 48); // lower ids, not committed yet
    await insertCalls(db, 50, 48); // higher ids, committed first
    await assertMatchesRaw(t); // sees only the committed writer
    await early.query('COMMIT');
    await assertMatchesRaw(t);
  } finally {
    await early.end();
  }
});

test.serial('concurrent writers, updaters and deleters while refreshes run', async (t) => {
  let refreshes = 0;
  // Writers keep going until several refreshes have run in the middle of their work.
  const writers = Array.from({ length: 3 }, async (_, w) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (let round = 0; round < 15 || refreshes < 3; round += 1) {
        // Each writer updates and deletes only its own share of ids (id % 3), so writers cannot deadlock one another.
        await client.query('BEGIN');
        await insertCalls(client, 20, 24 * 40);
        if (round % 3 === w % 3) await client.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1 WHERE id % 3 = ${w} AND id % 17 = ${round % 17}`);
        if (round % 5 === 4) await client.query(`DELETE FROM ai_cost.calls WHERE id % 3 = ${w} AND id % 29 = ${round % 29}`);
        await client.query('SELECT pg_sleep(random() * 0.02)');
        await client.query('COMMIT');
      }
    } finally {
      await client.end();
    }
  });
  let done = false;
  const refresher = (async () => {
    while (!done) {
      const [row] = await db.query<{ refreshed: boolean }>('SELECT refreshed FROM ai_cost.refresh()');
      if (row!.refreshed) refreshes += 1;
    }
  })();
  // A second refresher overlaps the first: it must skip, never double count.
  const overlapping = db.query('SELECT refreshed FROM ai_cost.refresh()');
  try {
    await Promise.all(writers);
  } finally {
    done = true;
    await Promise.all([refresher, overlapping]);
  }
  t.true(refreshes >= 3, `refresh ran ${refreshes} times during the writes`);
  await assertMatchesRaw(t);
});

test.serial('TRUNCATE of calls empties the rollups', async (t) => {
  await db.query('TRUNCATE ai_cost.calls');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [row] = await db.query<{ hourly: string; conversations: string; share: string; activity: string; dimensions: string; unpriced: string }>(`
    SELECT (SELECT count(*) FROM ai_cost.calls_hourly_live) AS hourly,
           (SELECT count(*) FROM ai_cost.conversations_hourly_live) AS conversations,
           (SELECT count(*) FROM ai_cost.spend_share) AS share,
           (SELECT count(*) FROM ai_cost_internal.activity_hourly) AS activity,
           (SELECT count(*) FROM ai_cost_internal.dimensions_daily) AS dimensions,
           (SELECT count(*) FROM ai_cost_internal.unpriced_hourly) AS unpriced`);
  t.deepEqual(row, { hourly: '0', conversations: '0', share: '0', activity: '0', dimensions: '0', unpriced: '0' });
});
