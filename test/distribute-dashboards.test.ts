import test from 'ava';
import {
  A_SELECTION, addDashboardData, dashboardQueries, EVERYTHING, grafanaSql, metabaseQuestions, metabaseSql, metabaseValues,
} from './support/bi-queries.js';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';
import { runCli } from './support/cli.js';

/**
 * What BI tools read from a distributed ledger: every query of the shipped
 * Grafana dashboard and every question of the Metabase guide, as a login
 * granted only ai_cost_reader, answers on the coordinator what it answered
 * on one server.
 */

const citus = useCitusCluster(test);

/**
 * Columns that follow the clock rather than the calls: a budget's projection
 * to the end of its period is its spend over the time elapsed, so it moves
 * between two readings of the same calls.
 */
const CLOCK_COLUMNS = new Set(['projected', 'projected_usd']);

/** Every BI query, by a title that names it, for the time range `range`. */
async function biQueries(db: CitusDatabase): Promise<Map<string, string>> {
  const [clock] = await db.query<{ now: Date }>('SELECT now() AS now');
  const range = { from: new Date(clock!.now.getTime() - 15 * 864e5), to: clock!.now };
  const queries = new Map<string, string>();
  for (const [label, choices] of [['every value', EVERYTHING], ['a selection', A_SELECTION]] as const) {
    for (const query of dashboardQueries()) queries.set(`Grafana: ${query.title} (${label})`, grafanaSql(query.rawSql, range, choices));
  }
  const values = await metabaseValues((sql) => db.query(sql));
  for (const question of metabaseQuestions()) {
    for (const withOptional of [false, true]) {
      queries.set(`Metabase: ${question.split('\n')[0]} (${withOptional ? 'with' : 'without'} its optional filters)`,
        metabaseSql(question, values, withOptional));
    }
  }
  return queries;
}

testOnCitus(test.serial, 'every query of the Grafana dashboard and the Metabase guide answers a BI login on a cluster as on one server', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await addDashboardData((sql) => db.query(sql));
  await db.query('SELECT ai_cost.refresh()');
  // Calls no refresh has folded yet, which the live views add.
  await db.query(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, feature, status, input_tokens, output_tokens, total_ms)
    SELECT 'openai', 'gpt-4o-mini', CASE WHEN i % 3 = 0 THEN 'acme-corp' END, 'support-bot',
           CASE WHEN i % 4 = 0 THEN 'error' ELSE 'success' END, 1000 + i, 100, 300 + i
      FROM generate_series(1, 20) AS i`);

  const reader = await db.readerLogin();
  // As BI tools connect: a search_path of their own must not matter.
  await reader.query('SET search_path = pg_catalog, pg_temp');

  const queries = await biQueries(db);
  const answers = async (): Promise<Record<string, string[] | string>> => {
    const answered: Record<string, string[] | string> = {};
    for (const [title, sql] of queries) {
      answered[title] = await reader.query(sql).then(
        ({ rows }) => rows.map((row: Record<string, unknown>) =>
          JSON.stringify(Object.fromEntries(Object.entries(row).filter(([column]) => !CLOCK_COLUMNS.has(column))))),
        (error: Error) => `failed: ${error.message}`);
    }
    return answered;
  };

  // A budget's period follows the clock: should a UTC week or month begin
  // between the readings, its spend starts again and the budget queries are
  // left out of the comparison, which never then depends on the time of day.
  const periods = async () => (await db.query<{ periods: string }>(
    `SELECT date_trunc('week', now() AT TIME ZONE 'UTC') || ' ' || date_trunc('month', now() AT TIME ZONE 'UTC') AS periods`))[0]!.periods;
  const periodsAtFirst = await periods();
  const onOneServer = await answers();
  const failed = Object.entries(onOneServer).filter(([, rows]) => typeof rows === 'string');
  t.deepEqual(failed, [], 'every query answers on one server');
  t.true(Object.values(onOneServer).filter((rows) => rows.length > 0).length > queries.size * 0.9, 'nearly every query has rows to compare');

  const distributed = await runCli(['distribute', '--database-url', db.url]);
  t.is(distributed.code, 0, distributed.stderr);
  const withPendingCalls = await answers();
  await db.query('SELECT * FROM ai_cost.refresh(views => false)');
  const refreshed = await answers();
  const periodsAtLast = await periods();
  const comparable = (answered: Record<string, string[] | string>) => Object.fromEntries(Object.entries(answered)
    .filter(([title]) => periodsAtFirst === periodsAtLast || !/budget/i.test(title)));
  if (periodsAtFirst !== periodsAtLast) t.log('a budget period began during the test: its queries are not compared');
  t.deepEqual(comparable(withPendingCalls), comparable(onOneServer), 'with the new calls read from the shards');
  t.deepEqual(comparable(refreshed), comparable(onOneServer), 'and once the refresh has folded them on the coordinator');
});
