import pg from 'pg';
import { medianMs, timed, type Benchmark, type Measurement } from './support.js';

/**
 * How fast the BI objects answer with 10M calls of history (1M at
 * BENCH_SCALE=0.1): the queries a dashboard sends, each the median of five
 * runs after the rollups and materialized views are refreshed. They read
 * rollups, never the raw calls, so the history's length should barely show.
 */
const QUERIES: Array<[string, string]> = [
  ['spend_by_day, last 30 days', `SELECT * FROM ai_cost.spend_by_day WHERE day >= current_date - 30`],
  ['spend_daily_by_dimension by model, last 30 days', `SELECT day, value, cost_micros FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'model' AND day >= current_date - 30`],
  ['spend_daily_by_dimension top tenants, last 7 days', `SELECT value, sum(cost_micros) AS spend FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'tenant' AND day >= current_date - 7 GROUP BY 1 ORDER BY 2 DESC LIMIT 10`],
  ['spend_daily_by_dimension top users, last 30 days', `SELECT value, sum(cost_micros) AS spend FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'user' AND day >= current_date - 30 GROUP BY 1 ORDER BY 2 DESC LIMIT 10`],
  // The detail grain, every dimension and the user: about a row per call with many users, so scanning it follows the calls.
  ['spend_daily (detail) by model, last 30 days', `SELECT day, model, sum(cost_micros) FROM ai_cost.spend_daily WHERE day >= current_date - 30 GROUP BY 1, 2`],
  ['spend_daily (detail) one tenant by user, last 7 days', `SELECT user_id, sum(cost_micros) FROM ai_cost.spend_daily WHERE tenant_id = 'tenant-7' AND day >= current_date - 7 GROUP BY 1`],
  ['activity_hourly, last 7 days', `SELECT * FROM ai_cost.activity_hourly WHERE hour >= now() - interval '7 days'`],
  ['unpriced_models', 'SELECT * FROM ai_cost.unpriced_models'],
  ['spend_share', 'SELECT * FROM ai_cost.spend_share'],
  ['error_rate_by_model', 'SELECT * FROM ai_cost.error_rate_by_model'],
  ['error_rate_by_feature', 'SELECT * FROM ai_cost.error_rate_by_feature'],
  ['latency_by_model', 'SELECT * FROM ai_cost.latency_by_model'],
  ['top_spenders', 'SELECT * FROM ai_cost.top_spenders'],
  ['spend_trends', 'SELECT * FROM ai_cost.spend_trends'],
  ['budget_status', 'SELECT * FROM ai_cost.budget_status'],
];

const bench: Benchmark = {
  name: 'queries',
  async run({ database, scale }) {
    const total = Math.max(100_000, Math.round(10_000_000 * scale));
    const client = new pg.Client({ connectionString: await database('queries') });
    await client.connect();
    const results: Measurement[] = [];
    try {
      // 90 days of traffic: 300 tenants with 10 users each, 12 features, 8 models, a few errors and app-cache hits.
      const chunk = 1_000_000;
      const loadMs = await timed(async () => {
        for (let start = 0; start < total; start += chunk) {
          await client.query(`
            INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, user_id, feature, cached, streamed,
                                       input_tokens, output_tokens, cache_read_tokens, ttft_ms, total_ms)
            SELECT now() - (i::float8 / ${total}) * interval '90 days',
                   CASE WHEN i % 8 < 5 THEN 'openai' WHEN i % 8 < 7 THEN 'anthropic' ELSE 'google' END,
                   (ARRAY['gpt-4o-mini', 'gpt-4.1', 'o4-mini', 'gpt-5-mini', 'text-embedding-3-small',
                          'claude-sonnet-4-6', 'claude-haiku-4-5', 'gemini-2.5-flash'])[1 + i % 8],
                   CASE WHEN i % 97 = 0 THEN 'error' ELSE 'success' END,
                   'tenant-' || (i * 7919) % 300, 'user-' || (i * 7919) % 3000, 'feature-' || i % 12,
                   i % 53 = 0, i % 3 = 0, 500 + i % 4000, 50 + i % 700, (i % 5) * 100,
                   CASE WHEN i % 3 = 0 THEN 100 + i % 900 END, 200 + (i * 31) % 5000
              FROM generate_series(${start}::bigint, ${Math.min(start + chunk, total) - 1}) AS i`);
        }
      });
      await client.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
                          SELECT 'tenant ' || t, 'tenant', 'tenant-' || t, 'month', 50000000 FROM generate_series(0, 49) AS t`);
      const refreshMs = await timed(() => client.query('SELECT * FROM ai_cost.refresh()'));
      // Steady state: autovacuum would have cleared the change table the refresh emptied
      // (its dead rows otherwise inflate estimates enough to set off JIT compilation).
      await client.query('VACUUM ANALYZE');
      results.push(
        { bench: 'queries', metric: `load ${total} calls of history`, value: total / (loadMs / 1000), unit: 'rows/s' },
        { bench: 'queries', metric: `first refresh after loading ${total} calls`, value: refreshMs / 1000, unit: 's' },
      );
      for (const [label, query] of QUERIES) {
        results.push({ bench: 'queries', metric: `${label} (${total} calls)`, value: await medianMs(5, () => client.query(query)), unit: 'ms' });
      }
      return results;
    } finally {
      await client.end();
    }
  },
};
export default bench;
