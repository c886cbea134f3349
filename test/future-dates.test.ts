import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

// created_at is the writer's to set: a call made an hour ago is recorded an
// hour ago, and a backfill of 2021's calls is priced at 2021's prices. What
// a writer must not decide: calls dated in the future (refused beyond a day
// ahead, for clocks out of step), and how many partitions ai_cost.calls has
// (a window of months around now, whatever the dates of the rows).
const db = useTestDatabase(test);

/** Runs statements in one session as ai_cost_writer; returns the last one's rows. */
async function asWriter(...statements: string[]): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('SET ROLE ai_cost_writer');
    let rows: Record<string, unknown>[] = [];
    for (const statement of statements) rows = (await client.query(statement)).rows;
    return rows;
  } finally {
    await client.end();
  }
}

/** One call in each of 1,200 months, `direction` months from now (+1: the future, -1: the past). */
const callsInMonths = (prefix: string, direction: 1 | -1) => `
  INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens)
  SELECT now() + ${direction} * make_interval(months => i), 'openai', 'gpt-4o-mini', '${prefix}-' || i, 1000, 100
    FROM generate_series(1, 1200) AS i`;

const partitionCount = async () =>
  Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM ai_cost.call_partitions'))[0]!.n);
/** Partitions: every month from 60 months back to months_ahead (3) ahead, and the default one. */
const MOST_PARTITIONS = 60 + 1 + 3 + 1;

test.serial('partition_calls on a ledger with calls in 1,200 past months makes partitions for at most 60 months back', async (t) => {
  await asWriter(callsInMonths('past', -1));
  // Accepted and priced at the price of its date: before gpt-4o-mini had a price, unpriced with the reason.
  t.deepEqual(await db.query(`SELECT count(*)::int AS n, count(cost_micros)::int + count(unpriced_reason)::int AS accounted,
                                     count(*) FILTER (WHERE created_at >= '2024-07-18' AND cost_micros IS NOT NULL)
                                       = count(*) FILTER (WHERE created_at >= '2024-07-18') AS priced_since_listed
                                FROM ai_cost.calls WHERE request_id LIKE 'past-%'`),
    [{ n: 1200, accounted: 1200, priced_since_listed: true }]);
  await db.query('SELECT * FROM ai_cost.partition_calls()');
  const count = await partitionCount();
  t.true(count <= MOST_PARTITIONS, `${count} partitions`);
  const [oldest] = await db.query<{ oldest_ok: boolean; in_default: number }>(
    `SELECT min(range_start) >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '60 months' AS oldest_ok,
            (SELECT count(*)::int FROM ai_cost.calls_default) AS in_default
       FROM ai_cost.call_partitions WHERE NOT is_default`);
  t.true(oldest?.oldest_ok);
  t.true(oldest!.in_default >= 1200 - 61, `older calls wait in the default partition: ${oldest!.in_default}`);
});

test.serial('calls dated more than a day ahead are refused, one by one and in batches', async (t) => {
  const refused = /created_at .* is more than 1 day ahead of the database clock/;
  await t.throwsAsync(asWriter(callsInMonths('future', 1)), { message: refused });
  await t.throwsAsync(asWriter(`INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens)
                                VALUES (now() + interval '1 day 1 minute', 'openai', 'gpt-4o-mini', 10)`), { message: refused });
  await t.throwsAsync(asWriter(`SELECT ai_cost.insert_calls(jsonb_build_array(jsonb_build_object(
                                  'created_at', now() + interval '2 days', 'provider', 'openai', 'model', 'gpt-4o-mini',
                                  'input_tokens', 10, 'output_tokens', 1)))`), { message: refused });
  // An unpriceable call is refused as well: the date is checked before anything else.
  await t.throwsAsync(asWriter(`INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens)
                                VALUES ('3000-01-01', 'nobody', 'nothing', 10)`), { message: refused });
  // A clock a little ahead is fine.
  await asWriter(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens)
                  VALUES (now() + interval '23 hours', 'openai', 'gpt-4o-mini', 'skewed-clock', 10)`,
                 `SELECT ai_cost.insert_calls(jsonb_build_array(jsonb_build_object(
                    'created_at', now() + interval '23 hours', 'provider', 'openai', 'model', 'gpt-4o-mini',
                    'request_id', 'skewed-clock-batch', 'input_tokens', 10, 'output_tokens', 1)))`);
  t.deepEqual(await db.query(`SELECT request_id, cost_micros::int FROM ai_cost.calls WHERE request_id LIKE 'skewed-clock%' ORDER BY 1`),
    [{ request_id: 'skewed-clock', cost_micros: 2 }, { request_id: 'skewed-clock-batch', cost_micros: 3 }]);
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost.calls WHERE created_at > now() + interval '1 day'`), [{ n: 0 }]);
});

test.serial('maintain_partitions makes the partitions of a window of months, never one per month the rows name', async (t) => {
  const before = await partitionCount();
  // A writer backfills 1,200 more months of history.
  await asWriter(callsInMonths('past-again', -1).replace('1000, 100', '2000, 100'));
  const started = Date.now();
  const actions = await db.query<{ action: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.log(`maintain_partitions: ${Date.now() - started} ms, ${actions.length} actions`);
  t.deepEqual(actions, []);
  t.is(await partitionCount(), before);
  t.true(before <= MOST_PARTITIONS);
});

test.serial('retention removes default-partition calls from before the horizon once the rollups hold them', async (t) => {
  await db.query('UPDATE ai_cost.partition_settings SET retain_months = 12');
  const waiting = await db.query<{ action: string; partition_name: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.true(waiting.some((row) => row.action === 'waiting' && row.partition_name === 'ai_cost.calls_default'), JSON.stringify(waiting));
  await db.query('SELECT ai_cost.refresh()');
  const [rollupBefore] = await db.query('SELECT sum(calls)::bigint AS calls, sum(cost_micros)::bigint AS cost FROM ai_cost.calls_hourly');

  const done = await db.query<{ action: string; partition_name: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.true(done.some((row) => row.action === 'deleted' && row.partition_name === 'ai_cost.calls_default'), JSON.stringify(done));
  t.true(done.every((row) => row.action === 'deleted' || row.action === 'dropped'), JSON.stringify(done));
  t.deepEqual(await db.query('SELECT * FROM ai_cost.maintain_partitions()'), [], 'nothing left to do');

  const [left] = await db.query<{ old: number; partitions: number; ids: number }>(
    `SELECT (SELECT count(*)::int FROM ai_cost.calls
              WHERE created_at < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '12 months') AS old,
            (SELECT count(*)::int FROM ai_cost.call_partitions) AS partitions,
            (SELECT count(*)::int FROM ai_cost_internal.request_ids r WHERE NOT EXISTS (SELECT FROM ai_cost.calls c WHERE c.request_id = r.request_id)) AS ids`);
  t.deepEqual(left, { old: 0, partitions: 12 + 1 + 3 + 1, ids: 0 });
  t.deepEqual(await db.query('SELECT sum(calls)::bigint AS calls, sum(cost_micros)::bigint AS cost FROM ai_cost.calls_hourly'), [rollupBefore],
    'the rollups keep the totals of the calls retention removed');
});

test.serial('with retention = detach, default-partition calls from before the horizon move to one table of their own', async (t) => {
  await db.query(`UPDATE ai_cost.partition_settings SET retention = 'detach'`);
  await asWriter(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens)
                  SELECT now() - make_interval(months => 20 + i), 'openai', 'gpt-4o-mini', 'detach-' || i, 10
                    FROM generate_series(1, 30) AS i`);
  await db.query('SELECT ai_cost.refresh()');
  const actions = await db.query<{ action: string; partition_name: string; detail: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.deepEqual(actions.map((row) => [row.action, row.partition_name]), [['detached', 'ai_cost.calls_default']]);
  t.regex(actions[0]!.detail, /30 calls .* moved to ai_cost_internal\.calls_default_detached/);
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost_internal.calls_default_detached WHERE request_id LIKE 'detach-%'`), [{ n: 30 }]);
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost.calls WHERE request_id LIKE 'detach-%'`), [{ n: 0 }]);
});
