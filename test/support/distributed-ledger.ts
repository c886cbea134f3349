import type { ExecutionContext } from 'ava';
import pg from 'pg';
import type { CitusDatabase } from './citus-cluster.js';

/**
 * What the tests of a distributed ledger compare before and after a change of
 * layout: every report, as rows in a fixed order.
 */
const REPORTS: Record<string, string> = {
  'calls_hourly_live by tenant and model': `SELECT tenant_id, model, sum(calls) AS calls, sum(unpriced_calls) AS unpriced,
      sum(cost_micros) AS cost, sum(input_tokens) AS input, sum(output_tokens) AS output
    FROM ai_cost.calls_hourly_live GROUP BY 1, 2`,
  'calls_between, the last 30 days by tenant and user': `SELECT tenant_id, user_id, sum(calls) AS calls, sum(cost_micros) AS cost
    FROM ai_cost.calls_between(now() - interval '30 days', now()) GROUP BY 1, 2`,
  spend_by_day: 'SELECT * FROM ai_cost.spend_by_day',
  spend_daily_by_dimension: 'SELECT * FROM ai_cost.spend_daily_by_dimension',
  spend_daily_by_user: 'SELECT * FROM ai_cost.spend_daily_by_user',
  spend_share: 'SELECT * FROM ai_cost.spend_share',
  top_spenders: 'SELECT * FROM ai_cost.top_spenders',
  error_rate_by_model: 'SELECT * FROM ai_cost.error_rate_by_model',
  latency_by_model: 'SELECT * FROM ai_cost.latency_by_model',
  'conversations_hourly_live by conversation': `SELECT conversation_id, tenant_id, sum(calls) AS calls, sum(cost_micros) AS cost
    FROM ai_cost.conversations_hourly_live GROUP BY 1, 2`,
  activity_hourly: 'SELECT * FROM ai_cost.activity_hourly',
  unpriced_models: 'SELECT provider, model, service_tier, unpriced_reason, unpriced_calls, first_hour, last_hour FROM ai_cost.unpriced_models',
  budget_status: 'SELECT name, scope, scope_value, period, limit_micros, spent_micros, unpriced_calls FROM ai_cost.budget_status',
};

/** The reports read from the windowed materialized views, which show the calls as of the last refresh. */
const AS_OF_LAST_REFRESH = new Set(['spend_share', 'top_spenders', 'error_rate_by_model', 'latency_by_model']);

/**
 * Every report, each as its rows in text order (JSON text, so bigint stays
 * exact); `live` leaves out those that show the calls as of the last refresh.
 */
export async function reports(db: CitusDatabase, options: { live?: boolean } = {}): Promise<Record<string, string[]>> {
  const snapshot: Record<string, string[]> = {};
  for (const [name, query] of Object.entries(REPORTS)) {
    if (options.live && AS_OF_LAST_REFRESH.has(name)) continue;
    const rows = await db.query<{ row: string }>(`SELECT row_to_json(r)::text AS row FROM (${query}) r ORDER BY 1`);
    snapshot[name] = rows.map((r) => r.row);
  }
  return snapshot;
}

/** Every call's cost as stored, by id. */
export async function costs(db: CitusDatabase): Promise<string[]> {
  const rows = await db.query<{ row: string }>(`
    SELECT concat_ws(' ', id, cost_micros, computed_cost_micros, price_id, discount_id, unpriced_reason, billed_micros, markup_id) AS row
      FROM ai_cost.calls ORDER BY id`);
  return rows.map((r) => r.row);
}

/**
 * A ledger in use: 1,000 calls over the last 20 hours (so every report
 * window holds all of them whenever the test runs) from seven tenants and
 * calls without one, with users, features, conversations, errors,
 * app-cache hits, streamed calls, an unpriced model, a tenant billed by a
 * markup and a tenant budget.
 */
export async function populate(db: CitusDatabase): Promise<void> {
  await db.query(`INSERT INTO ai_cost.markups (tenant_id, percent, per_call) VALUES ('tenant-2', 25, 0.0001)`);
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, user_id, feature, conversation_id,
                               cached, streamed, input_tokens, output_tokens, cache_read_tokens, ttft_ms, total_ms, request_id)
    SELECT now() - (i || ' minutes')::interval,
           (ARRAY['openai', 'anthropic', 'google'])[1 + i % 3],
           (ARRAY['gpt-4o-mini', 'claude-haiku-4-5', 'gemini-2.5-flash'])[1 + i % 3],
           CASE WHEN i % 37 = 0 THEN 'error' ELSE 'success' END,
           CASE WHEN i % 8 = 0 THEN NULL ELSE 'tenant-' || i % 7 END, 'user-' || i % 11, 'feature-' || i % 4,
           CASE WHEN i % 5 = 0 THEN 'conversation-' || i % 13 END,
           i % 41 = 0, i % 3 = 0, 500 + i, 50 + i % 300, (i % 4) * 100,
           CASE WHEN i % 3 = 0 THEN 100 + i % 700 END, 300 + (i * 31) % 4000, 'request-' || i
      FROM generate_series(1, 1000) AS i`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
                  VALUES ('openai', 'a-model-nobody-prices', 'tenant-1', 10, 10)`);
  await db.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
                  VALUES ('tenant-1 monthly', 'tenant', 'tenant-1', 'month', 1000000)`);
}

/** The worker port that holds the shard of each tenant's calls. */
export async function workerOf(db: CitusDatabase, tenants: string[]): Promise<Map<string, number>> {
  const rows = await db.query<{ tenant: string; nodeport: number }>(`
    SELECT t AS tenant, s.nodeport FROM unnest($1::text[]) AS t
      JOIN citus_shards s ON s.table_name = 'ai_cost.calls'::regclass
                         AND s.shardid = get_shard_id_for_distribution_column('ai_cost.calls', t)`, [tenants]);
  return new Map(rows.map((r) => [r.tenant, r.nodeport]));
}

/**
 * The rollups (or, with `live`, the live view over them) and the calls
 * themselves, each summed by tenant, user and model: equal when the rollups
 * hold every call once, as it is now.
 */
export async function rollupsAndCalls(db: Pick<CitusDatabase, 'query'>, options: { live?: boolean } = {}): Promise<{ rolled: string[]; raw: string[] }> {
  const rolled = await db.query<{ row: string }>(`
    SELECT row_to_json(r)::text AS row FROM (
      SELECT tenant_id, user_id, model, sum(calls) AS calls, sum(cost_micros) AS cost, sum(billed_micros) AS billed,
             sum(input_tokens) AS input, sum(unpriced_calls) AS unpriced
        FROM ${options.live ? 'ai_cost.calls_hourly_live' : 'ai_cost.calls_hourly'} GROUP BY 1, 2, 3 HAVING sum(calls) <> 0) r ORDER BY 1`);
  const raw = await db.query<{ row: string }>(`
    SELECT row_to_json(r)::text AS row FROM (
      SELECT nullif(tenant_id, '') AS tenant_id, user_id, model, count(*) AS calls, coalesce(sum(cost_micros), 0) AS cost,
             coalesce(sum(billed_micros), 0) AS billed, coalesce(sum(input_tokens), 0) AS input,
             count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced
        FROM ai_cost.calls GROUP BY 1, 2, 3) r ORDER BY 1`);
  return { rolled: rolled.map((r) => r.row), raw: raw.map((r) => r.row) };
}

/**
 * Three writers that record batches of calls, update the calls just recorded (most not folded yet) and
 * now and then delete some, while refreshes run one after another, until each writer has done 15 rounds
 * and at least 5 refreshes have run. Each writer updates and deletes only its own share of ids (id % 3),
 * so writers never wait for one another's rows. Then the live views, and after a last refresh the
 * rollups, must equal the calls.
 */
export async function assertExactAfterWritesWhileRefreshing(t: ExecutionContext, db: CitusDatabase): Promise<void> {
  let refreshes = 0;
  const writers = Array.from({ length: 3 }, async (_, w) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (let round = 0; round < 15 || refreshes < 5; round += 1) {
        const batch = Array.from({ length: 20 }, (_, i) => ({
          provider: 'openai', model: 'gpt-4o-mini', tenant_id: `tenant-${(round + i) % 9}`, user_id: `user-${i % 4}`,
          input_tokens: 100 + i, output_tokens: 10 + i,
        }));
        await client.query('SELECT ai_cost.insert_calls($1::jsonb)', [JSON.stringify(batch)]);
        await client.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1000
                             WHERE id % 3 = ${w} AND id > (SELECT max(id) - 60 FROM ai_cost.calls)`);
        if (round % 4 === 3) await client.query(`DELETE FROM ai_cost.calls WHERE id % 3 = ${w} AND id % 7 = ${round % 7}`);
      }
    } finally {
      await client.end();
    }
  });
  let done = false;
  const refresher = (async () => {
    while (!done) {
      const [row] = await db.query<{ refreshed: boolean }>('SELECT refreshed FROM ai_cost.refresh(views => false)');
      if (row!.refreshed) refreshes += 1;
    }
  })();
  try {
    await Promise.all(writers);
  } finally {
    done = true;
    await refresher;
  }
  t.true(refreshes >= 5, `refresh ran ${refreshes} times during the writes`);
  const live = await rollupsAndCalls(db, { live: true });
  t.deepEqual(live.rolled, live.raw, 'the live views, before the last refresh');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw, 'the rollups');
}
