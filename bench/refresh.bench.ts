import pg from 'pg';
import { timed, type Benchmark, type Measurement } from './support.js';

/**
 * Refresh cost after 10k new calls, at two sizes of history, next to a full
 * REFRESH MATERIALIZED VIEW of the naive design (one materialized view over
 * the raw table) in the same run. History grows as it does in production: at
 * a steady rate, so the larger history reaches further back in time.
 * BENCH_SCALE=0.1 runs it at 100k and 1M rows.
 */
const ROWS_PER_DAY = 20_000;
const NEW_ROWS = 10_000;

const bench: Benchmark = {
  name: 'refresh',
  async run({ database, scale }) {
    const sizes = [1_000_000, 10_000_000].map((n) => Math.max(10_000, Math.round(n * scale)));
    const client = new pg.Client({ connectionString: await database('refresh') });
    await client.connect();
    const results: Measurement[] = [];
    const metric = (name: string, value: number, unit = 'ms') => results.push({ bench: 'refresh', metric: name, value, unit });
    try {
      await client.query(`
        CREATE MATERIALIZED VIEW naive_daily AS
        SELECT date_trunc('day', created_at, 'UTC') AS day, provider, model, tenant_id, feature, status,
               count(*) AS calls, sum(cost_micros)::bigint AS cost_micros, sum(input_tokens)::bigint AS input_tokens,
               percentile_disc(0.95) WITHIN GROUP (ORDER BY total_ms) AS p95_ms
          FROM ai_cost.calls GROUP BY 1, 2, 3, 4, 5, 6`);
      let loaded = 0;
      for (const size of sizes) {
        const load = await timed(() => insertCalls(client, loaded, size - loaded));
        const fold = await timed(() => client.query('SELECT * FROM ai_cost.refresh()'));
        loaded = size;
        // What autovacuum does between refreshes in production (the change table is emptied each time).
        await client.query('VACUUM ANALYZE ai_cost._private_call_changes, ai_cost.calls_hourly, ai_cost.calls');
        const label = `${(size / 1e6).toLocaleString('en-US')}M rows`;
        metric(`${label}: load (insert with triggers)`, load);
        metric(`${label}: first refresh folding all history`, fold);
        // Each round: 10k new calls, then the rollup refresh (what pg_cron runs every minute) timed alone.
        const refreshTimes: number[] = [];
        for (let round = 1; round <= 3; round += 1) {
          await insertCalls(client, loaded + round * NEW_ROWS, NEW_ROWS, true);
          refreshTimes.push(await timed(() => client.query('SELECT * FROM ai_cost.refresh(views => false)')));
        }
        loaded += 3 * NEW_ROWS;
        refreshTimes.sort((a, b) => a - b);
        metric(`${label}: ai_cost.refresh(views => false) after 10k new rows (median of 3)`, refreshTimes[1]!);
        metric(`${label}: rebuild of the windowed materialized views (every 5 min)`,
          await timed(() => client.query('SELECT * FROM ai_cost.refresh()')));
        metric(`${label}: REFRESH MATERIALIZED VIEW naive_daily (full)`, await timed(() => client.query('REFRESH MATERIALIZED VIEW naive_daily')));
        const [rollup] = (await client.query<{ rows: string }>('SELECT count(*) AS rows FROM ai_cost.calls_hourly')).rows;
        metric(`${label}: rows in calls_hourly`, Number(rollup!.rows), 'rows');
      }
      const ratio = (part: string) => {
        const [small, large] = results.filter((m) => m.metric.includes(part));
        return large!.value / small!.value;
      };
      metric('rollup refresh after 10k rows: larger / smaller history', ratio('views => false'), 'x');
      metric('view rebuild: larger / smaller history', ratio('windowed materialized views'), 'x');
      metric('naive full refresh: larger / smaller history', ratio('naive_daily'), 'x');
      return results;
    } finally {
      await client.end();
    }
  },
};
export default bench;

/**
 * Inserts `count` calls: history spreads backwards from now at ROWS_PER_DAY,
 * new rows land in the last hour. generate_series keeps it in the server.
 */
async function insertCalls(client: pg.Client, offset: number, count: number, recent = false): Promise<void> {
  const chunk = 1_000_000;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    await client.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, user_id, feature, conversation_id,
                                 input_tokens, output_tokens, total_ms, ttft_ms, streamed)
      SELECT CASE WHEN $3 THEN now() - random() * interval '1 hour'
                  ELSE now() - (i / ${ROWS_PER_DAY}.0) * interval '1 day' END,
             'openai', (ARRAY['gpt-4o-mini', 'gpt-4.1', 'o4-mini', 'gpt-5-mini'])[1 + i % 4],
             CASE WHEN i % 31 = 0 THEN 'error' ELSE 'success' END,
             'tenant-' || (i % 997 % 50), 'user-' || (i % 997), (ARRAY['chat', 'search', 'summarize'])[1 + i % 3],
             'conv-' || (i / 8), 500 + i % 3000, 50 + i % 700, 200 + (i * 7919) % 9000, 100 + i % 800, i % 2 = 0
        FROM generate_series($1::bigint, $1::bigint + $2 - 1) AS i`, [offset + start, n, recent]);
  }
}
