import test from 'ava';
import {
  breakdown, budgetStatus, dailySeries, InvalidReportError, latencyByModel, recentCalls, refresh, spendByModel, summary, trends,
} from '../src/index.js';
import { runCli } from './support/cli.js';
import { serverHasPgCron, useTestDatabase } from './support/database.js';

const HOUR = 3_600_000;
const now = new Date();

// Calls at known instants, with round prices: 'mini' costs 1 micro-dollar per
// input token and 2 per output token.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                    VALUES ('test', 'mini', '2020-01-01', 1, 2), ('test', 'max', '2020-01-01', 10, 20)`);
    await db.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, user_id, feature, input_tokens, output_tokens, total_ms, cached)
      SELECT now() - g * interval '1 hour 7 minutes', 'test', CASE WHEN g % 4 = 0 THEN 'max' ELSE 'mini' END,
             CASE WHEN g % 10 = 0 THEN 'error' ELSE 'success' END, 'tenant-' || (g % 3), 'user-' || (g % 5),
             CASE WHEN g % 2 = 0 THEN 'chat' END, 100 * g, 10, 100 * g, false
        FROM generate_series(1, 400) AS g`);
    await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens, tenant_id) VALUES (now() - interval '1 hour', 'test', 'nobody-priced', 50, 'tenant-0')`);
  },
});

/** The same figure straight from the raw table. */
async function raw(select: string, where = 'true'): Promise<Record<string, string | null>> {
  const [row] = await db.query<Record<string, string | null>>(
    `SELECT ${select} FROM ai_cost.calls WHERE created_at >= $1 AND created_at < $2 AND ${where}`,
    [new Date(now.getTime() - 5 * 24 * HOUR - 17 * 60_000), now]);
  return row!;
}
const window = { since: new Date(now.getTime() - 5 * 24 * HOUR - 17 * 60_000), until: now };

test('summary equals the raw totals, for a window that does not start on an hour', async (t) => {
  const s = await summary(db.pool, window);
  const expected = await raw(`count(*) AS calls, count(*) FILTER (WHERE status <> 'success') AS failures,
    sum(cost_micros) AS cost, count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced, sum(input_tokens) AS input,
    round(avg(total_ms) FILTER (WHERE status = 'success')) AS avg_ms`);
  t.is(s.calls, BigInt(expected.calls!));
  t.is(s.failures, BigInt(expected.failures!));
  t.is(s.costMicros, BigInt(expected.cost!));
  t.is(s.unpricedCalls, BigInt(expected.unpriced!));
  t.is(s.inputTokens, BigInt(expected.input!));
  t.is(s.avgLatencyMs, Number(expected.avg_ms));
  t.true(s.p95LatencyMs! > 0);
});

test('spend by model equals the raw group by provider and model, most expensive first, the unpriced model last at null', async (t) => {
  const rows = await spendByModel(db.pool, window);
  // sum() over the priced calls is NULL exactly when none is priced.
  const expected = await db.query<Record<string, string | null>>(`
    SELECT provider, model, count(*) AS calls, count(*) FILTER (WHERE status <> 'success') AS failed,
           coalesce(sum(input_tokens), 0) AS input, coalesce(sum(output_tokens), 0) AS output, sum(cost_micros) AS cost,
           count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced
      FROM ai_cost.calls WHERE created_at >= $1 AND created_at < $2
     GROUP BY provider, model ORDER BY sum(cost_micros) DESC NULLS LAST, count(*) DESC, provider, model`, [window.since, window.until]);
  t.deepEqual(rows, expected.map((e) => ({
    provider: e.provider!, model: e.model!, calls: BigInt(e.calls!), failedCalls: BigInt(e.failed!), inputTokens: BigInt(e.input!),
    outputTokens: BigInt(e.output!), costMicros: e.cost === null ? null : BigInt(e.cost!), unpricedCalls: BigInt(e.unpriced!),
    // No markup: nothing is billed.
    billedMicros: null, unbilledCalls: BigInt(e.calls!),
  })));
  t.is(rows.at(-1)!.model, 'nobody-priced');
});

test('breakdown by tenant with filters equals the raw group by, most expensive first', async (t) => {
  const rows = await breakdown(db.pool, 'tenant', { ...window, model: 'mini', status: 'success' });
  const expected = await db.query<{ tenant_id: string; cost: string; calls: string }>(`
    SELECT tenant_id, sum(cost_micros) AS cost, count(*) AS calls FROM ai_cost.calls
     WHERE created_at >= $1 AND created_at < $2 AND model = 'mini' AND status = 'success'
     GROUP BY tenant_id ORDER BY sum(cost_micros) DESC`, [window.since, window.until]);
  t.deepEqual(rows.map((r) => [r.key, r.costMicros, r.calls]), expected.map((e) => [e.tenant_id, BigInt(e.cost), BigInt(e.calls)]));
  const share = rows.reduce((sum, r) => sum + (r.shareOfCost ?? 0), 0);
  t.true(Math.abs(share - 1) < 1e-5, `shares add up to 1 (${share})`);
});

test('daily series split by model adds up to the summary', async (t) => {
  const points = await dailySeries(db.pool, window, 'model');
  const s = await summary(db.pool, window);
  t.is(points.reduce((sum, p) => sum + (p.costMicros ?? 0n), 0n), s.costMicros!);
  // The model without a price is unknown each day, never $0.
  t.true(points.filter((p) => p.key === 'nobody-priced').every((p) => p.costMicros === null && p.unpricedCalls > 0n));
  t.deepEqual([...new Set(points.map((p) => p.key))].sort(), ['max', 'mini', 'nobody-priced']);
});

test('latency percentiles per model come from the histograms and sit near the exact ones', async (t) => {
  const rows = await latencyByModel(db.pool, window);
  const exact = await raw("percentile_disc(0.95) WITHIN GROUP (ORDER BY total_ms) AS p95", "model = 'mini' AND status = 'success'");
  const mini = rows.find((r) => r.model === 'mini')!;
  t.true(Math.abs(mini.p95Ms! - Number(exact.p95)) / Number(exact.p95) <= 0.091, `${mini.p95Ms} vs exact ${exact.p95}`);
});

test('trends: the last 7 days against the 7 before, month to date and its projection', async (t) => {
  const result = await trends(db.pool, { tenantId: 'tenant-1' });
  const [expected] = await db.query<{ l7: string; p7: string }>(`
    SELECT coalesce(sum(cost_micros) FILTER (WHERE created_at >= now() - interval '7 days'), 0) AS l7,
           coalesce(sum(cost_micros) FILTER (WHERE created_at < now() - interval '7 days' AND created_at >= now() - interval '14 days'), 0) AS p7
      FROM ai_cost.calls WHERE tenant_id = 'tenant-1'`);
  t.is(result.last7DaysMicros, BigInt(expected!.l7));
  t.is(result.previous7DaysMicros, BigInt(expected!.p7));
  t.true(result.projectedMonthMicros! >= result.monthToDateMicros!);
});

test('recent calls: newest first, filtered, limited', async (t) => {
  const calls = await recentCalls(db.pool, { tenantId: 'tenant-2' }, 3);
  t.is(calls.length, 3);
  t.true(calls.every((c) => c.tenantId === 'tenant-2'));
  t.true(calls[0]!.createdAt >= calls[1]!.createdAt && calls[1]!.createdAt >= calls[2]!.createdAt);
});

test('bad report options fail with an error that names the problem', async (t) => {
  await t.throwsAsync(() => summary(db.pool, { since: now, until: new Date(now.getTime() - HOUR) }), {
    instanceOf: InvalidReportError, message: /^since: must be before until$/,
  });
  await t.throwsAsync(() => breakdown(db.pool, 'colour' as never), { instanceOf: InvalidReportError, message: /unknown dimension 'colour'/ });
});

test('budget status through the API', async (t) => {
  // A tenant of its own whose one call, made now, is over the daily limit at any time of day.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES ('test', 'mini', 'over-budget', 2000)`);
  await db.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros) VALUES ('over-budget daily', 'tenant', 'over-budget', 'day', 1000)`);
  const [status] = await budgetStatus(db.pool);
  t.is(status!.name, 'over-budget daily');
  t.is(status!.status, 'exceeded');
});

test('ai-cost report --by tenant --format json matches the API', async (t) => {
  const cli = await runCli(['report', '--by', 'tenant', '--model', 'max', '--since', '3d', '--format', 'json', '--database-url', db.url]);
  t.is(cli.code, 0, cli.stderr);
  const rows = JSON.parse(cli.stdout) as Array<{ tenant: string; costMicros: string; shareOfCost: number | null }>;
  const api = await breakdown(db.pool, 'tenant', { model: 'max', since: new Date(Date.now() - 3 * 24 * HOUR) });
  t.deepEqual(rows.map((r) => [r.tenant, r.costMicros, r.shareOfCost]), api.map((r) => [r.key, String(r.costMicros), r.shareOfCost]));
});

// Serial (ava runs serial tests first): its two CLI runs would otherwise take
// CPU from the doctor test below, whose price starts one second after it is set.
test.serial('ai-cost report and ai-cost report --by model print the API\'s spend by model', async (t) => {
  const args = ['--since', window.since.toISOString(), '--until', window.until.toISOString(), '--format', 'json', '--database-url', db.url];
  const byModel = await runCli(['report', '--by', 'model', ...args]);
  t.is(byModel.code, 0, byModel.stderr);
  const plain = await runCli(['report', ...args]);
  t.is(plain.stdout, byModel.stdout);
  const api = await spendByModel(db.pool, window);
  t.true(api.length > 0);
  // The API's rows, with each one's share of the priced cost beside them.
  const rows = JSON.parse(byModel.stdout) as Array<Record<string, unknown> & { shareOfCost: number | null }>;
  t.deepEqual(rows.map(({ shareOfCost: _share, ...figures }) => figures),
    JSON.parse(JSON.stringify(api, (_key, value) => (typeof value === 'bigint' ? String(value) : value))));
  t.true(rows.every((r) => r.shareOfCost === null || (r.shareOfCost > 0 && r.shareOfCost <= 1)));
});

test('ai-cost report --by model draws bars and names the unpriced calls', async (t) => {
  const cli = await runCli(['report', '--by', 'model', '--database-url', db.url]);
  t.is(cli.code, 0, cli.stderr);
  t.regex(cli.stdout, /max\s*│.*█/);
  t.regex(cli.stdout, /1 call\(s\) have no price in force/);
  const bad = await runCli(['report', '--by', 'colour', '--database-url', db.url]);
  t.regex(bad.stderr, /'colour' is not one of provider, model/);
});

test('ai-cost refresh and doctor', async (t) => {
  const run = await runCli(['refresh', '--database-url', db.url]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, /^refreshed: \d+ change\(s\) applied, \d+ budget alert\(s\), views rebuilt/);
  const rollupsOnly = await runCli(['refresh', '--no-views', '--database-url', db.url]);
  t.regex(rollupsOnly.stdout, /^refreshed: \d+ change\(s\) applied, \d+ budget alert\(s\), [\d.]+ ms/);
  t.true((await refresh(db.pool)).refreshed);
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.is(doctor.code, 0, doctor.stderr);
  t.regex(doctor.stdout, /warn\s+scheduling: nothing in this database schedules ai_cost\.refresh\(\)/);
  // On the pg_cron test server, pg_cron lives in the postgres database: doctor names `ai-cost schedule`.
  if (serverHasPgCron) t.regex(doctor.stdout, /pg_cron lives in database postgres: run `ai-cost schedule`/);
  t.regex(doctor.stdout, /ok\s+refresh: last refresh of the rollups 20\d\d-\S+, \d+s ago/);
  t.regex(doctor.stdout, /ok\s+views: the materialized views \([^)]*spend_share[^)]*\) were rebuilt 20\d\d-\S+, \d+s ago/);
  t.regex(doctor.stdout, /ok\s+price book: compiled; no price change is scheduled/);

  // A price that starts after the compile leaves the book stale until a refresh.
  // It starts a few seconds on, long enough for doctor to run before, on a busy machine too.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok)
                  VALUES ('doctor', 'm', clock_timestamp() + interval '5 seconds', 1)`);
  const scheduled = await runCli(['doctor', '--database-url', db.url]);
  t.regex(scheduled.stdout, /ok\s+price book: compiled; the next scheduled price change, at 20\d\d-/);
  await db.query(`SELECT pg_sleep(greatest(0, extract(epoch FROM valid_from - clock_timestamp())) + 0.1)
                    FROM ai_cost.prices WHERE provider = 'doctor'`);
  const stale = await runCli(['doctor', '--database-url', db.url]);
  t.regex(stale.stdout, /warn\s+price book: a price started or ended at 20\d\d-.* until `ai-cost refresh` runs/);
  await runCli(['refresh', '--no-views', '--database-url', db.url]);
  const fresh = await runCli(['doctor', '--database-url', db.url]);
  t.regex(fresh.stdout, /ok\s+price book: compiled; no price change is scheduled/);

  // insert_calls given to another role: the trigger no longer trusts it, and doctor says so.
  t.regex(fresh.stdout, /ok\s+batch pricing: ai_cost\.insert_calls\(\) prices batches in its own statement/);
  const owner = (await db.query<{ owner: string }>(
    `SELECT proowner::regrole::text AS owner FROM pg_proc WHERE oid = 'ai_cost.insert_calls(jsonb)'::regprocedure`))[0]!.owner;
  await db.query('ALTER FUNCTION ai_cost.insert_calls(jsonb) OWNER TO ai_cost_admin');
  try {
    const moved = await runCli(['doctor', '--database-url', db.url]);
    t.regex(moved.stdout, /warn\s+batch pricing: the cost trigger does not trust ai_cost\.insert_calls\(\)'s owner ai_cost_admin/);
  } finally {
    await db.query(`ALTER FUNCTION ai_cost.insert_calls(jsonb) OWNER TO ${owner}`);
  }
});
