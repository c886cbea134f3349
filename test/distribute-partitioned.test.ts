import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';
import { assertExactAfterWritesWhileRefreshing, costs, populate, reports, rollupsAndCalls } from './support/distributed-ledger.js';

/**
 * A ledger partitioned by month (ai_cost.partition_calls(), for retention)
 * and then distributed over Citus: its request ids, its partitions and its
 * retention on the cluster.
 */

const citus = useCitusCluster(test);

/** The ledger of the other Citus tests, with calls of three months ago too, partitioned. */
async function partitionedLedger(t: Parameters<Parameters<typeof testOnCitus>[2]>[0]): Promise<CitusDatabase> {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, user_id, input_tokens, output_tokens, request_id)
    SELECT date_trunc('month', now()) - interval '3 months' + (i || ' hours')::interval, 'openai', 'gpt-4o-mini',
           CASE WHEN i % 5 <> 0 THEN 'tenant-' || i % 7 END, 'user-' || i % 11, 1000 + i, 100, 'old-request-' || i
      FROM generate_series(1, 200) AS i`);
  // On a coordinator, as on one server, the conversion says nothing but its result.
  const client = new pg.Client({ connectionString: db.url });
  const warnings: string[] = [];
  client.on('notice', (notice) => {
    if (notice.severity === 'WARNING') warnings.push(notice.message ?? '');
  });
  await client.connect();
  try {
    await client.query('SELECT * FROM ai_cost.partition_calls()');
  } finally {
    await client.end();
  }
  t.deepEqual(warnings, [], 'partition_calls() on a Citus coordinator warns of nothing');
  return db;
}

/**
 * The partitioned ledger with a call dated before its first partition (so
 * waiting in the default partition, request id 'older-request'), distributed
 * and refreshed: what the retention tests start from.
 */
async function distributedForRetention(t: Parameters<Parameters<typeof testOnCitus>[2]>[0]): Promise<CitusDatabase> {
  const db = await partitionedLedger(t);
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, request_id)
                  VALUES (date_trunc('month', now()) - interval '8 months', 'openai', 'gpt-4o-mini', 'tenant-1', 5, 'older-request')`);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await db.query('SELECT * FROM ai_cost.refresh()');
  return db;
}

/** What each partition of the calls holds on the coordinator's own disk: nothing, once Citus holds its rows on the shards. */
async function localBytes(db: CitusDatabase): Promise<number> {
  const [row] = await db.query<{ bytes: string }>(`
    SELECT sum(pg_relation_size(relid))::text AS bytes FROM pg_partition_tree('ai_cost.calls') WHERE isleaf`);
  return Number(row!.bytes);
}

testOnCitus(test.serial, 'ai-cost distribute spreads a partitioned ledger over the cluster with every cost, rollup and report unchanged', async (t) => {
  const db = await partitionedLedger(t);
  await db.query('SELECT * FROM ai_cost.refresh()');
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', 1000, 100)`);
  const before = { reports: await reports(db), live: await reports(db, { live: true }), costs: await costs(db) };
  t.true(await localBytes(db) > 0);

  const result = await runCli(['distribute', '--database-url', db.url]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^calls: ai_cost\.calls is distributed by tenant_id over 32 shard\(s\)$/m);
  const layout = await db.query<{ table: string; column: string; colocated: boolean }>(`
    SELECT p.logicalrelid::text AS table, column_to_column_name(p.logicalrelid, p.partkey) AS column,
           p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.calls'::regclass) AS colocated
      FROM pg_dist_partition p
     WHERE p.logicalrelid IN (SELECT relid FROM pg_partition_tree('ai_cost.calls') UNION ALL SELECT 'ai_cost_internal.request_ids'::regclass)
     ORDER BY 1`);
  const partitions = await db.query<{ table: string }>(`SELECT relid::text AS table FROM pg_partition_tree('ai_cost.calls') ORDER BY 1`);
  t.deepEqual(layout.map((row) => row.table).sort(), [...partitions.map((row) => row.table), 'ai_cost_internal.request_ids'].sort());
  t.true(layout.every((row) => row.column === 'tenant_id' && row.colocated), 'the calls, every partition and the request ids sit together by tenant');
  t.is(await localBytes(db), 0, 'the calls are on the shards only, not left on the coordinator\'s disk as well');

  // The partitions' rows and bytes are their shards', also for a BI login.
  await db.query('ANALYZE ai_cost.calls');
  const asReader = await db.readerLogin();
  const listed = (await asReader.query<{ partition: string; estimated_rows: string; total_bytes: string }>(
    'SELECT partition::text, estimated_rows::text, total_bytes::text FROM ai_cost.call_partitions ORDER BY 1')).rows;
  const bytes = await db.query<{ partition: string; total_bytes: string }>(`
    SELECT relid::text AS partition, citus_total_relation_size(relid)::text AS total_bytes
      FROM pg_partition_tree('ai_cost.calls') WHERE isleaf`);
  const months = await db.query<{ partition: string; calls: string }>(`
    SELECT 'ai_cost.calls_' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY_MM') AS partition, count(*)::text AS calls
      FROM ai_cost.calls GROUP BY 1`);
  const callsOf = (partition: string) => partition === 'ai_cost.calls_default'
    ? months.filter((m) => !bytes.some((b) => b.partition === m.partition)).reduce((sum, m) => sum + Number(m.calls), 0)
    : Number(months.find((m) => m.partition === partition)?.calls ?? 0);
  const onShards = bytes.map((b) => ({ partition: b.partition, estimated_rows: String(callsOf(b.partition)), total_bytes: b.total_bytes }))
    .sort((a, b) => (a.partition < b.partition ? -1 : 1));
  t.deepEqual(listed, onShards, 'call_partitions counts each partition\'s calls and bytes on the shards');
  t.true(listed.some((row) => Number(row.estimated_rows) > 0));

  t.deepEqual(await costs(db), before.costs, 'no call is repriced');
  t.deepEqual(await reports(db), before.reports, 'every report is unchanged');
  await db.query('SELECT * FROM ai_cost.refresh()');
  t.deepEqual(await reports(db, { live: true }), before.live, 'and so is every live report after a refresh');
  const [ids] = await db.query<{ claimed: string; calls: string }>(`
    SELECT (SELECT count(*) FROM ai_cost_internal.request_ids)::text AS claimed,
           (SELECT count(*) FROM ai_cost.calls WHERE request_id IS NOT NULL)::text AS calls`);
  t.is(ids!.claimed, ids!.calls, 'every request id of the calls is claimed, beside its call');

  const [reverting] = await db.query<{ steps: number }>(
    `SELECT count(*)::int AS steps FROM ai_cost_internal.schema_migrations WHERE name >= '0037_partitioned_ledgers_distribute'`);
  const steps = reverting!.steps;
  const down = await runCli(['migrate', 'down', '--count', String(steps), '--database-url', db.url]);
  t.is(down.code, 1);
  t.regex(down.stderr, new RegExp(`^ai-cost: migrate down refused: reverting ${steps} step\\(s\\) would take this ledger, partitioned and distributed over Citus, below 0037_partitioned_ledgers_distribute, .*migrate down --all --yes\n$`));
  t.deepEqual(await reports(db, { live: true }), before.live, 'and changes nothing');
});

testOnCitus(test.serial, 'a distributed partitioned ledger\'s rollups and live views equal the calls after writers that insert, update and delete while refreshes run', async (t) => {
  const db = await partitionedLedger(t);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await assertExactAfterWritesWhileRefreshing(t, db);
});

testOnCitus(test.serial, 'a distributed partitioned ledger records a request id once per tenant, whatever the month, and frees it with its call', async (t) => {
  const db = await partitionedLedger(t);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  const count = async (requestId: string) =>
    (await db.query<{ tenant: string | null; calls: string }>(`
      SELECT nullif(tenant_id, '') AS tenant, count(*)::text AS calls FROM ai_cost.calls WHERE request_id = $1 GROUP BY 1 ORDER BY 1`, [requestId]))
      .map((row) => `${row.tenant ?? 'no tenant'}: ${row.calls}`);

  // A retry a month later, with ON CONFLICT DO NOTHING and without: skipped either way.
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, request_id)
                  VALUES (now() - interval '40 days', 'openai', 'gpt-4o-mini', 'tenant-1', 5, 'request-1') ON CONFLICT DO NOTHING`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, request_id)
                  VALUES ('openai', 'gpt-4o-mini', 'tenant-1', 5, 'request-1')`);
  t.deepEqual(await count('request-1'), ['tenant-1: 1']);
  // Calls without a tenant keep theirs apart too; another tenant's call with the same id is its own.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, request_id) VALUES ('openai', 'gpt-4o-mini', 5, 'request-8')`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, request_id)
                  VALUES ('openai', 'gpt-4o-mini', 'tenant-3', 5, 'request-8')`);
  t.deepEqual(await count('request-8'), ['tenant-3: 1', 'no tenant: 1']);
  const [batch] = await db.query<{ inserted: string }>(`SELECT ai_cost.insert_calls($1::jsonb) AS inserted`, [JSON.stringify([
    { provider: 'openai', model: 'gpt-4o-mini', tenant_id: 'tenant-4', request_id: 'request-4', input_tokens: 5 },
    { provider: 'openai', model: 'gpt-4o-mini', tenant_id: 'tenant-4', request_id: 'batch-1', input_tokens: 5 },
    { provider: 'openai', model: 'gpt-4o-mini', tenant_id: 'tenant-4', request_id: 'batch-1', input_tokens: 5 },
  ])]);
  t.is(batch!.inserted, '1', 'a batch records only the request id its tenant did not have, once');

  // A call moved to another month keeps its claim.
  await db.query(`UPDATE ai_cost.calls SET created_at = date_trunc('month', now()) - interval '1 month' + interval '1 day'
                   WHERE tenant_id = 'tenant-2' AND request_id = 'request-2'`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, request_id)
                  VALUES ('openai', 'gpt-4o-mini', 'tenant-2', 5, 'request-2') ON CONFLICT DO NOTHING`);
  t.deepEqual(await count('request-2'), ['tenant-2: 1']);
  const taken = await db.query(`UPDATE ai_cost.calls SET request_id = 'request-9' WHERE tenant_id = 'tenant-2' AND request_id = 'request-23'`)
    .then(() => '', (e: Error) => e.message);
  t.regex(taken, /duplicate key value violates unique constraint "calls_request_id_key"/);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-2' AND request_id = 'request-2'`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, request_id)
                  VALUES ('openai', 'gpt-4o-mini', 'tenant-2', 5, 'request-2')`);
  t.deepEqual(await count('request-2'), ['tenant-2: 1'], 'a deleted call\'s request id is free again');

  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw, 'the rollups hold every call once');

  await db.query('TRUNCATE ai_cost.calls');
  const [left] = await db.query<{ ids: string; rolled: string | null }>(`
    SELECT (SELECT count(*) FROM ai_cost_internal.request_ids)::text AS ids, (SELECT sum(calls) FROM ai_cost.calls_hourly_live)::text AS rolled`);
  t.deepEqual(left, { ids: '0', rolled: null }, 'TRUNCATE empties the request ids and the rollups with the calls');
});

testOnCitus(test.serial, 'maintenance of a distributed partitioned ledger adds partitions beside the calls and applies retention', async (t) => {
  const db = await distributedForRetention(t);
  const totals = async () => (await reports(db, { live: true })).spend_by_day;
  const before = await totals();

  await db.query('UPDATE ai_cost.partition_settings SET months_ahead = 5, retain_months = 1');
  const actions = await db.query<{ action: string; partition_name: string }>('SELECT action, partition_name FROM ai_cost.maintain_partitions()');
  t.deepEqual(actions.map((a) => `${a.action} ${a.partition_name}`), [
    ...(await db.query<{ name: string }>(`
      SELECT 'created ai_cost.' || ai_cost_internal.partition_name(m) AS name
        FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '4 months',
                             date_trunc('month', now() AT TIME ZONE 'UTC') + interval '5 months', interval '1 month') AS m`)).map((r) => r.name),
    ...(await db.query<{ name: string }>(`
      SELECT 'dropped ai_cost.' || ai_cost_internal.partition_name(m) AS name
        FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '3 months',
                             date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months', interval '1 month') AS m`)).map((r) => r.name),
    'deleted ai_cost.calls_default',
  ]);
  const [added] = await db.query<{ distributed: string; local_bytes: string }>(`
    SELECT count(*) FILTER (WHERE p.logicalrelid IS NOT NULL)::text AS distributed, sum(pg_relation_size(t.relid))::text AS local_bytes
      FROM pg_partition_tree('ai_cost.calls') t LEFT JOIN pg_dist_partition p ON p.logicalrelid = t.relid WHERE t.isleaf`);
  const [leaves] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_partition_tree('ai_cost.calls') WHERE isleaf`);
  t.deepEqual(added, { distributed: leaves!.n, local_bytes: '0' }, 'every partition is distributed, none holds rows on the coordinator');

  const [old] = await db.query<{ calls: string; ids: string }>(`
    SELECT (SELECT count(*) FROM ai_cost.calls WHERE created_at < date_trunc('month', now()) - interval '1 month')::text AS calls,
           (SELECT count(*) FROM ai_cost_internal.request_ids WHERE created_at < date_trunc('month', now()) - interval '1 month')::text AS ids`);
  t.deepEqual(old, { calls: '0', ids: '0' }, 'the calls past retention are gone, and so are their request ids');
  t.deepEqual(await totals(), before, 'the rollups keep their totals');
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, request_id)
                  VALUES (date_trunc('month', now()) - interval '8 months', 'openai', 'gpt-4o-mini', 'tenant-1', 5, 'older-request')`);
  const [again] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.calls WHERE request_id = 'older-request'`);
  t.is(again!.n, '1', 'a forgotten request id is recorded again');

  // The daily run inside ai_cost.refresh() does the same on a cluster, after the refresh's own work on the shards.
  await db.query(`UPDATE ai_cost.calls SET user_id = 'moved on' WHERE tenant_id = 'tenant-3'`);
  await db.query('UPDATE ai_cost.partition_settings SET months_ahead = 6');
  await db.query('UPDATE ai_cost_internal.partition_state SET maintained_at = NULL, attempted_at = NULL');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [daily] = await db.query<{ error: string | null; distributed: boolean }>(`
    SELECT (SELECT last_error FROM ai_cost_internal.partition_state) AS error,
           EXISTS (SELECT FROM pg_dist_partition
                    WHERE logicalrelid::text = 'ai_cost.' || ai_cost_internal.partition_name(date_trunc('month', now() AT TIME ZONE 'UTC') + interval '6 months')) AS distributed`);
  t.deepEqual(daily, { error: null, distributed: true });
});

testOnCitus(test.serial, 'retention = detach on a distributed partitioned ledger keeps each old month as a distributed table, and older calls in one of their own', async (t) => {
  const db = await distributedForRetention(t);
  const before = (await reports(db, { live: true })).spend_by_day;
  await db.query(`UPDATE ai_cost.partition_settings SET retention = 'detach', retain_months = 1`);
  const actions = await db.query<{ action: string }>('SELECT action FROM ai_cost.maintain_partitions()');
  t.deepEqual(actions.map((a) => a.action), ['detached', 'detached', 'detached']);

  const oldMonth = (await db.query<{ name: string }>(`
    SELECT 'ai_cost.' || ai_cost_internal.partition_name(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '3 months') AS name`))[0]!.name;
  const [kept] = await db.query<{ distributed: boolean; calls: string; detached: string; ids: string }>(`
    SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass) AS distributed,
           (SELECT count(*) FROM ${oldMonth})::text AS calls,
           (SELECT count(*) FROM ai_cost_internal.calls_default_detached WHERE request_id = 'older-request')::text AS detached,
           (SELECT count(*) FROM ai_cost_internal.request_ids WHERE created_at < date_trunc('month', now()) - interval '1 month')::text AS ids`, [oldMonth]);
  t.deepEqual(kept, { distributed: true, calls: '200', detached: '1', ids: '0' });
  t.deepEqual((await reports(db, { live: true })).spend_by_day, before, 'the rollups keep their totals');
});
