import test from 'ava';
import { useTestDatabase } from './support/database.js';

// Unpriced is not free. Every figure a BI view reports is the sum over the
// priced calls behind it, with the unpriced calls counted beside it; when
// there are calls and not one is priced the figure is unknown: NULL, never 0.
// A free model (a price of 0) costs 0, and so does a window without calls.
//
// Calls are made at now(): inside the current hour, UTC day, month and every
// report window whatever the time of day.
const db = useTestDatabase(test);

/** The one row a query returns (fails the test on none or several). */
async function one(text: string, params?: unknown[]): Promise<Record<string, unknown>> {
  const rows = await db.query(text, params);
  if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}: ${text}`);
  return rows[0]!;
}

/** gpt-4o-mini: $0.15 per 1M input tokens, $0.60 per 1M output tokens. */
const MINI_CALL = { input: 1000, output: 100, micros: 210n };

const call = (provider: string, model: string, tenant: string, feature: string) =>
  db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, feature, input_tokens, output_tokens)
            VALUES ($1, $2, $3, $4, $5, $6)`, [provider, model, tenant, feature, MINI_CALL.input, MINI_CALL.output]);

/** Every relation in ai_cost with a cost column, and which of them this test checks. */
const COST_COLUMNS = /_micros$/;
const NOT_A_FIGURE = new Set(['limit_micros', 'provided_cost_micros', 'computed_cost_micros']);
// Not report figures: rollup-shaped relations keep the priced sum with
// unpriced_calls beside it, so that rows can be added up, and whoever sums
// them applies the rule (their comments say how); the others hold one call,
// change, alert or reprice each, whose cost is its own.
const NOT_REPORTS = ['calls_hourly', 'calls_hourly_live', 'conversations_hourly', 'conversations_hourly_live',
  'calls', 'set_aside_calls', 'budget_alerts', 'reprice_audit', 'reprice_runs'];
const CHECKED = ['spend_daily', 'spend_daily_by_dimension', 'spend_daily_by_user', 'spend_by_day', 'activity_hourly', 'spend_share',
  'mv_spend_share', 'top_spenders', 'mv_top_spenders', 'spend_trends', 'mv_spend_trends', 'budget_status'];

test.serial('every relation with a cost figure is checked here or named as not a report', async (t) => {
  const rows = await db.query<{ relname: string; attname: string }>(
    `SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
      WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p')
        AND a.attnum > 0 AND NOT a.attisdropped AND c.relname !~ '^calls_(default|\\d{4}_\\d{2})$'`);
  const withFigures = new Set(rows.filter((row) => COST_COLUMNS.test(row.attname) && !NOT_A_FIGURE.has(row.attname))
    .map((row) => row.relname));
  t.deepEqual([...withFigures].filter((name) => !CHECKED.includes(name) && !NOT_REPORTS.includes(name)), []);
});

test.serial('a model whose calls are all unpriced has unknown cost in every view, with the count beside it', async (t) => {
  await db.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
                  VALUES ('ghost daily', 'tenant', 'ghost', 'day', 1000000), ('all monthly', 'global', NULL, 'month', 1000000)`);
  for (let i = 0; i < 3; i++) await call('nobody', 'mystery-model', 'ghost', 'haunting');

  // Before any refresh (live views), and after one (rollups and materialized views).
  for (const phase of ['pending', 'refreshed']) {
    if (phase === 'refreshed') await db.query('SELECT ai_cost.refresh()');
    const byDimension = await db.query(
      `SELECT dimension, cost_micros, success_cost_micros, unpriced_calls FROM ai_cost.spend_daily_by_dimension
        WHERE (dimension, value) IN (('model', 'nobody/mystery-model'), ('tenant', 'ghost'), ('feature', 'haunting'))`);
    t.is(byDimension.length, 3, phase);
    for (const row of byDimension) t.like(row, { cost_micros: null, success_cost_micros: null, unpriced_calls: '3' }, `${phase} ${row.dimension}`);
    t.like(await one(`SELECT cost_micros, success_cost_micros, unpriced_calls FROM ai_cost.spend_daily WHERE tenant_id = 'ghost'`),
      { cost_micros: null, success_cost_micros: null, unpriced_calls: '3' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.spend_daily_by_user WHERE tenant_id = 'ghost'`),
      { cost_micros: null, unpriced_calls: '3' }, phase);
    // Nothing else was called: the whole day, the hour and the ledger are unknown.
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.spend_by_day`), { cost_micros: null, unpriced_calls: '3' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.activity_hourly`), { cost_micros: null, unpriced_calls: '3' }, phase);
    const budgets = await db.query(`SELECT name, spent_micros, remaining_micros, used_percent, projected_micros, crossed_percent, status, unpriced_calls
                                      FROM ai_cost.budget_status ORDER BY name`);
    for (const budget of budgets) {
      t.like(budget, { spent_micros: null, remaining_micros: null, used_percent: null, projected_micros: null, crossed_percent: null,
        status: 'unknown', unpriced_calls: '3' }, `${phase} ${budget.name}`);
    }
  }

  const shares = await db.query(`SELECT "window", dimension, cost_micros, share_of_cost, unpriced_calls FROM ai_cost.spend_share
                                  WHERE value IN ('mystery-model', 'ghost', 'haunting', 'nobody')`);
  t.is(shares.length, 12, 'three windows of model, tenant, feature and provider');
  for (const row of shares) t.like(row, { cost_micros: null, share_of_cost: null, unpriced_calls: '3' }, `${row.window} ${row.dimension}`);

  const spenders = await db.query(`SELECT "window", cost_micros, share_of_cost, unpriced_calls FROM ai_cost.top_spenders WHERE id = 'ghost'`);
  t.is(spenders.length, 2);
  for (const row of spenders) t.like(row, { cost_micros: null, share_of_cost: null, unpriced_calls: '3' }, String(row.window));

  const trends = await db.query(
    `SELECT dimension, last_7d_micros, last_7d_unpriced_calls, previous_7d_micros, change_7d, month_to_date_micros,
            month_to_date_unpriced_calls, projected_month_micros
       FROM ai_cost.spend_trends WHERE dimension = 'total' OR value = 'mystery-model'`);
  t.is(trends.length, 2);
  for (const row of trends) {
    t.like(row, { last_7d_micros: null, last_7d_unpriced_calls: '3', previous_7d_micros: '0', change_7d: null,
      month_to_date_micros: null, month_to_date_unpriced_calls: '3', projected_month_micros: null }, String(row.dimension));
  }
  // The budget check that raises alerts reads the same view: unknown spend crosses nothing.
  t.is((await one(`SELECT count(*)::int AS alerts FROM ai_cost.budget_alerts`)).alerts, 0);
});

test.serial('a free model costs 0, a partly priced figure is the priced sum with the unpriced count', async (t) => {
  await db.query(`INSERT INTO ai_cost.providers (id, name) VALUES ('house', 'In-house') ON CONFLICT DO NOTHING`);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('house', 'gratis', '-infinity', 0, 0)`);
  await call('house', 'gratis', 'freeloader', 'free-feature');
  await call('house', 'gratis', 'mixed', 'blend');
  await call('openai', 'gpt-4o-mini', 'mixed', 'blend');
  await call('nobody', 'mystery-model', 'mixed', 'blend');
  await db.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
                  VALUES ('free daily', 'tenant', 'freeloader', 'day', 1000000), ('mixed daily', 'tenant', 'mixed', 'day', 1000000)`);

  for (const phase of ['pending', 'refreshed']) {
    if (phase === 'refreshed') await db.query('SELECT ai_cost.refresh()');
    const figure = (dimension: string, value: string) => one(
      `SELECT cost_micros, success_cost_micros, unpriced_calls FROM ai_cost.spend_daily_by_dimension WHERE dimension = $1 AND value = $2`,
      [dimension, value]);
    t.like(await figure('model', 'house/gratis'), { cost_micros: '0', success_cost_micros: '0', unpriced_calls: '0' }, phase);
    t.like(await figure('tenant', 'freeloader'), { cost_micros: '0', success_cost_micros: '0', unpriced_calls: '0' }, phase);
    t.like(await figure('tenant', 'mixed'), { cost_micros: String(MINI_CALL.micros), success_cost_micros: String(MINI_CALL.micros), unpriced_calls: '1' }, phase);
    t.like(await one(`SELECT sum(cost_micros)::text AS cost_micros, sum(unpriced_calls)::text AS unpriced_calls FROM ai_cost.spend_daily WHERE tenant_id = 'mixed'`),
      { cost_micros: String(MINI_CALL.micros), unpriced_calls: '1' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.spend_daily_by_user WHERE tenant_id = 'mixed'`),
      { cost_micros: String(MINI_CALL.micros), unpriced_calls: '1' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.spend_daily_by_user WHERE tenant_id = 'freeloader'`),
      { cost_micros: '0', unpriced_calls: '0' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.spend_by_day`), { cost_micros: String(MINI_CALL.micros), unpriced_calls: '4' }, phase);
    t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.activity_hourly`), { cost_micros: String(MINI_CALL.micros), unpriced_calls: '4' }, phase);
    t.like(await one(`SELECT spent_micros, status FROM ai_cost.budget_status WHERE name = 'free daily'`), { spent_micros: '0', status: 'ok' }, phase);
    t.like(await one(`SELECT spent_micros, unpriced_calls, status FROM ai_cost.budget_status WHERE name = 'mixed daily'`),
      { spent_micros: String(MINI_CALL.micros), unpriced_calls: '1', status: 'ok' }, phase);
    // The ghost tenant of the test before is still all unpriced.
    t.like(await one(`SELECT spent_micros, status FROM ai_cost.budget_status WHERE name = 'ghost daily'`), { spent_micros: null, status: 'unknown' }, phase);
  }

  t.like(await one(`SELECT cost_micros, share_of_cost, unpriced_calls FROM ai_cost.spend_share WHERE "window" = '24h' AND dimension = 'tenant' AND value = 'freeloader'`),
    { cost_micros: '0', share_of_cost: '0.000000', unpriced_calls: '0' });
  t.like(await one(`SELECT cost_micros, share_of_cost, unpriced_calls FROM ai_cost.spend_share WHERE "window" = '24h' AND dimension = 'tenant' AND value = 'mixed'`),
    { cost_micros: String(MINI_CALL.micros), share_of_cost: '1.000000', unpriced_calls: '1' });
  t.like(await one(`SELECT cost_micros, unpriced_calls FROM ai_cost.top_spenders WHERE "window" = '7d' AND id = 'freeloader'`),
    { cost_micros: '0', unpriced_calls: '0' });
  t.like(await one(`SELECT last_7d_micros, last_7d_unpriced_calls, month_to_date_micros FROM ai_cost.spend_trends WHERE dimension = 'model' AND value = 'gratis'`),
    { last_7d_micros: '0', last_7d_unpriced_calls: '0', month_to_date_micros: '0' });
  t.like(await one(`SELECT last_7d_micros, last_7d_unpriced_calls FROM ai_cost.spend_trends WHERE dimension = 'tenant' AND value = 'mixed'`),
    { last_7d_micros: String(MINI_CALL.micros), last_7d_unpriced_calls: '1' });
});

test.serial('a reprice preview tells unpriced before from $0 before', async (t) => {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('nobody', 'mystery-model', '-infinity', 0.15, 0.60)`);
  const preview = await one(
    `SELECT calls, old_cost_micros, new_cost_micros, old_unpriced_calls, new_unpriced_calls, newly_priced
       FROM ai_cost.reprice_preview('-infinity', 'infinity', 'nobody', 'mystery-model')`);
  t.like(preview, { calls: '4', old_cost_micros: null, new_cost_micros: String(4n * MINI_CALL.micros), old_unpriced_calls: '4',
    new_unpriced_calls: '0', newly_priced: '4' });
});
