import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { median, medianMs, timed, type Benchmark, type Measurement } from './support.js';

/**
 * How fast the BI objects answer with 10M calls of history (1M at
 * BENCH_SCALE=0.1): every object docs/reporting.md, docs/grafana.md and
 * docs/metabase.md list, with the filters they show, each the median of five
 * runs after the rollups and materialized views are refreshed. They read
 * rollups, never the raw calls, so the history's length should barely show.
 * Every shape the docs recommend has a target of 20 ms; the shapes the docs
 * name as slow (the detail grain over a month, a ranking over every user and
 * day) are measured beside them without one.
 */
const TARGET_MS = 20;

interface Shape {
  label: string;
  sql: string;
  /** Documented as slow, with the object to read instead: measured, no target. */
  slow?: boolean;
}

const SHAPES: Shape[] = [
  { label: 'spend_by_day, last 30 days', sql: `SELECT * FROM ai_cost.spend_by_day WHERE day >= current_date - 30` },
  { label: 'spend_daily_by_dimension by model, last 30 days', sql: `SELECT day, value, cost_micros FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'model' AND day >= current_date - 30` },
  { label: 'spend_daily_by_dimension top tenants, last 7 days', sql: `SELECT value, sum(cost_micros) AS spend FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'tenant' AND day >= current_date - 7 GROUP BY 1 ORDER BY 2 DESC LIMIT 10` },
  { label: 'spend_daily_by_dimension top tenants, last 30 days', sql: `SELECT value, sum(cost_micros) AS spend FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'tenant' AND day >= current_date - 30 GROUP BY 1 ORDER BY 2 DESC LIMIT 10` },
  // Every user and day of a month: about 90,000 rows whatever the index; top_spenders and spend_share rank users.
  { label: 'spend_daily_by_dimension top users, last 30 days', sql: `SELECT value, sum(cost_micros) AS spend FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'user' AND day >= current_date - 30 GROUP BY 1 ORDER BY 2 DESC LIMIT 10`, slow: true },
  { label: 'spend_daily_by_dimension one tenant, last 30 days', sql: `SELECT day, calls, cost_micros FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'tenant' AND value = 'tenant-7' AND day >= current_date - 30` },
  { label: 'spend_daily_by_dimension one user, last 30 days', sql: `SELECT day, calls, cost_micros FROM ai_cost.spend_daily_by_dimension WHERE dimension = 'user' AND value = 'user-7' AND day >= current_date - 30` },
  { label: 'spend_daily_by_user one tenant by user, last 30 days', sql: `SELECT user_id, sum(calls), sum(cost_micros) FROM ai_cost.spend_daily_by_user WHERE tenant_id = 'tenant-7' AND day >= current_date - 30 GROUP BY 1` },
  { label: 'spend_daily_by_user one user, last 30 days', sql: `SELECT day, calls, cost_micros FROM ai_cost.spend_daily_by_user WHERE user_id = 'user-7' AND day >= current_date - 30` },
  // The detail grain, every dimension and the user: about a row per call with many users.
  { label: 'spend_daily (detail) one tenant by user, last 7 days', sql: `SELECT user_id, sum(cost_micros) FROM ai_cost.spend_daily WHERE tenant_id = 'tenant-7' AND day >= current_date - 7 GROUP BY 1` },
  { label: 'spend_daily (detail) one tenant by model, last 7 days', sql: `SELECT model, sum(cost_micros) FROM ai_cost.spend_daily WHERE tenant_id = 'tenant-7' AND day >= current_date - 7 GROUP BY 1` },
  { label: 'spend_daily (detail) by model, last 30 days', sql: `SELECT day, model, sum(cost_micros) FROM ai_cost.spend_daily WHERE day >= current_date - 30 GROUP BY 1, 2`, slow: true },
  { label: 'spend_daily (detail) one tenant by user, last 30 days', sql: `SELECT user_id, sum(cost_micros) FROM ai_cost.spend_daily WHERE tenant_id = 'tenant-7' AND day >= current_date - 30 GROUP BY 1`, slow: true },
  { label: 'activity_hourly, last 7 days', sql: `SELECT * FROM ai_cost.activity_hourly WHERE hour >= now() - interval '7 days'` },
  { label: 'activity_hourly, last 30 days by day', sql: `SELECT date_trunc('day', hour), sum(calls), sum(cost_micros) FROM ai_cost.activity_hourly WHERE hour >= now() - interval '30 days' GROUP BY 1` },
  { label: 'unpriced_models', sql: 'SELECT * FROM ai_cost.unpriced_models' },
  { label: 'calls_hourly_live, p95 by model, last 7 days', sql: `SELECT model, ai_cost.histogram_percentile(ai_cost.histogram_merge(total_ms_hist), 0.95) FROM ai_cost.calls_hourly_live WHERE status = 'success' AND NOT cached AND hour >= now() - interval '7 days' GROUP BY model`, slow: true },
  // Rollup rows at the grain of calls_hourly, every dimension and the user: about a row per call with many users.
  { label: 'calls_between, last 24 hours by model', sql: `SELECT model, sum(calls), sum(cost_micros) FROM ai_cost.calls_between(now() - interval '24 hours', now()) GROUP BY model`, slow: true },
  { label: 'conversations_hourly_live, one tenant, last 7 days', sql: `SELECT conversation_id, sum(cost_micros) FROM ai_cost.conversations_hourly_live WHERE tenant_id = 'tenant-7' AND hour >= now() - interval '7 days' GROUP BY 1` },
  { label: 'spend_share', sql: 'SELECT * FROM ai_cost.spend_share' },
  { label: 'spend_share top users, 30d', sql: `SELECT value, cost_micros FROM ai_cost.spend_share WHERE "window" = '30d' AND dimension = 'user' ORDER BY cost_micros DESC NULLS LAST LIMIT 10` },
  { label: 'error_rate_by_model', sql: 'SELECT * FROM ai_cost.error_rate_by_model' },
  { label: 'error_rate_by_feature', sql: 'SELECT * FROM ai_cost.error_rate_by_feature' },
  { label: 'latency_by_model', sql: 'SELECT * FROM ai_cost.latency_by_model' },
  { label: 'top_spenders', sql: 'SELECT * FROM ai_cost.top_spenders' },
  { label: 'spend_trends', sql: 'SELECT * FROM ai_cost.spend_trends' },
  { label: 'budget_status (50 tenant budgets)', sql: 'SELECT * FROM ai_cost.budget_status' },
  { label: 'refresh_status', sql: 'SELECT * FROM ai_cost.refresh_status' },
  { label: 'set_aside_calls', sql: 'SELECT * FROM ai_cost.set_aside_calls' },
];

/**
 * The Grafana dashboard's queries over its default range (the last 30 days),
 * with Grafana's macros and variables expanded as the Grafana test does:
 * once with every value ("All") and once with one tenant, feature and model.
 */
async function dashboardShapes(): Promise<Shape[]> {
  const dashboard = JSON.parse(await readFile(new URL('../dashboards/grafana/pg-ai-cost.json', import.meta.url), 'utf8')) as { panels: Panel[]; templating: { list: Array<{ name: string; type: string; query?: string }> } };
  const panels: Panel[] = [];
  const walk = (list: Panel[]) => {
    for (const panel of list) {
      if (panel.panels) walk(panel.panels);
      if (panel.targets?.[0]?.rawSql) panels.push(panel);
    }
  };
  walk(dashboard.panels);
  const queries = [
    ...panels.map((panel) => ({ title: `${panel.title} (${panel.targets![0]!.format})`, sql: panel.targets![0]!.rawSql! })),
    ...dashboard.templating.list.filter((v) => v.type === 'query').map((v) => ({ title: `variable $${v.name}`, sql: v.query! })),
  ];
  const everything = { tenant: `'(all)'`, feature: `'(all)'`, model: `'(all)'`, window: `'30d'` };
  const selection = { tenant: `'tenant-7'`, feature: `'feature-3'`, model: `'openai/gpt-4.1'`, window: `'7d'` };
  const shapes: Shape[] = [];
  for (const query of queries) {
    // Every user of the range with their spend: a row per user and day of the daily per-user rollup, and with
    // a feature or model chosen, of the detail grain. Documented as slow, as the same ranking above.
    const slow = query.title.startsWith('Tenants and users');
    shapes.push({ label: `Grafana: ${query.title}, 30 days, all`, sql: expandGrafana(query.sql, everything), slow });
    if (query.sql.includes(':sqlstring}')) {
      shapes.push({ label: `Grafana: ${query.title}, 30 days, one tenant, feature and model`, sql: expandGrafana(query.sql, selection), slow });
    }
  }
  return shapes;
}

interface Panel {
  title: string;
  panels?: Panel[];
  targets?: Array<{ rawSql?: string; format?: string }>;
}

/** Grafana's macros over the last 30 days (1-day buckets) and its variables with the given values. */
function expandGrafana(sql: string, values: Record<string, string>): string {
  // As Grafana writes them: literals, which a date column compares as dates.
  const from = `'${new Date(Date.now() - 30 * 864e5).toISOString()}'`;
  const to = `'${new Date().toISOString()}'`;
  return sql
    .replace(/\$__timeGroupAlias\(([^,]+),[^)]*\)/g, (_, column: string) => `floor(extract(epoch from ${column.trim()})/86400)*86400 AS "time"`)
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_, column: string) => `${column.trim()} BETWEEN ${from} AND ${to}`)
    .replace(/\$__timeFrom\(\)/g, from)
    .replace(/\$__timeTo\(\)/g, to)
    .replace(/\$\{(\w+):sqlstring\}/g, (_, name: string) => values[name]!);
}

/** The server's own execution time of a query, without planning or sending rows: the median of five runs. */
async function serverExecutionMs(client: pg.Client, sql: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const { rows } = await client.query<{ 'QUERY PLAN': Array<{ 'Execution Time': number }> }>(
      `EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ${sql}`);
    times.push(rows[0]!['QUERY PLAN'][0]!['Execution Time']);
  }
  return median(times);
}

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
      for (const shape of [...SHAPES, ...(await dashboardShapes())]) {
        let rows = 0;
        const value = await medianMs(5, async () => {
          rows = (await client.query(shape.sql)).rowCount ?? 0;
        });
        if (shape.slow) {
          results.push({ bench: 'queries', metric: `${shape.label} (${total} calls; documented as slow)`, value, unit: 'ms' });
          continue;
        }
        const executionMs = await serverExecutionMs(client, shape.sql);
        results.push({
          bench: 'queries', metric: `${shape.label} (${total} calls)`, value, unit: 'ms', target: TARGET_MS,
          heldBy: `the server executes it in ${executionMs.toFixed(1)} ms (median of 5, EXPLAIN ANALYZE without ` +
            `timing); the other ${Math.max(0, value - executionMs).toFixed(1)} ms are planning, sending its ` +
            `${rows} rows and parsing them here`,
        });
      }
      return results;
    } finally {
      await client.end();
    }
  },
};
export default bench;
