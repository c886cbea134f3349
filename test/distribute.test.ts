import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import pg from 'pg';
import { createPool } from '../src/db.js';
import { createRecorder } from '../src/recorder/index.js';
import { diagnose } from '../src/reporting/doctor.js';
import { runCli, runPsql } from './support/cli.js';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';
import { assertExactAfterWritesWhileRefreshing, costs, populate, reports, rollupsAndCalls, workerOf } from './support/distributed-ledger.js';
import { pythonWithPsycopg } from './support/tools.js';
import { until } from './support/until.js';

// pg-ai-cost on a real Citus cluster (a coordinator and two workers):
// `ai-cost distribute` spreads an installed ledger over it, and everything a
// user does on one server works there the same. Serial: installs running at
// once in two databases of one cluster collide on the roles, which are the
// cluster's.
const citus = useCitusCluster(test);
const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

async function distributed(t: Parameters<Parameters<typeof testOnCitus>[2]>[0]): Promise<CitusDatabase> {
  const db = await citus.database(t, { migrated: true });
  const result = await runCli(['distribute', '--database-url', db.url]);
  t.is(result.code, 0, result.stderr);
  return db;
}

/** `ai-cost migrate down` one step at a time, each a success, until it has reverted `migration`. */
async function migrateDownThrough(t: Parameters<Parameters<typeof testOnCitus>[2]>[0], db: CitusDatabase, migration: string): Promise<void> {
  for (let step = 0; step < 50; step += 1) {
    const down = await runCli(['migrate', 'down', '--database-url', db.url]);
    t.is(down.code, 0, down.stderr);
    if (down.stdout.includes(`reverted ${migration}`)) return;
  }
  t.fail(`migrate down never reverted ${migration}`);
}

/** One tenant whose calls live on each worker. */
async function tenantPerWorker(db: CitusDatabase): Promise<Map<number, string>> {
  const placed = await workerOf(db, Array.from({ length: 40 }, (_, i) => `routed-${i}`));
  const byWorker = new Map<number, string>();
  for (const [tenant, port] of placed) if (!byWorker.has(port)) byWorker.set(port, tenant);
  return byWorker;
}

testOnCitus(test.serial, 'ai-cost distribute spreads a ledger in use over the cluster with every cost, rollup and report unchanged', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  await db.query('SELECT * FROM ai_cost.refresh()');
  // One more call left for the live views and the next refresh to fold.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', 1000, 100)`);
  const cliReports = async () => Promise.all(['model', 'tenant', 'user', 'feature'].map(async (by) => {
    const report = await runCli(['report', '--since', '2d', '--by', by, '--format', 'json', '--database-url', db.url]);
    t.is(report.code, 0, report.stderr);
    return JSON.parse(report.stdout) as unknown;
  }));
  const before = { reports: await reports(db), live: await reports(db, { live: true }), costs: await costs(db), cli: await cliReports() };

  const result = await runCli(['distribute', '--database-url', db.url]);
  t.is(result.code, 0, result.stderr);
  t.deepEqual(result.stdout.trim().split('\n').map((line) => line.split(':')[0]),
    ['workers', 'price tables', 'price book', 'calls without a tenant', 'calls']);
  t.regex(result.stdout, /^calls without a tenant: 126 call\(s\) without a tenant now have tenant_id ''/m);
  const layout = await db.query<{ table: string; method: string; column: string | null }>(`
    SELECT logicalrelid::text AS table, partmethod AS method, column_to_column_name(logicalrelid, partkey) AS column
      FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ai_cost.%' ORDER BY 1`);
  t.deepEqual(layout, [
    { table: 'ai_cost.calls', method: 'h', column: 'tenant_id' },
    { table: 'ai_cost.markups', method: 'n', column: null },
    { table: 'ai_cost.model_aliases', method: 'n', column: null },
    { table: 'ai_cost.model_patterns', method: 'n', column: null },
    { table: 'ai_cost.prices', method: 'n', column: null },
    { table: 'ai_cost.providers', method: 'n', column: null },
    { table: 'ai_cost.service_tiers', method: 'n', column: null },
    { table: 'ai_cost.tenant_access', method: 'n', column: null },
    { table: 'ai_cost.tenant_discounts', method: 'n', column: null },
  ]);

  const [local] = await db.query<{ bytes: string }>(`SELECT pg_relation_size('ai_cost.calls')::text AS bytes`);
  t.is(local!.bytes, '0', 'the calls are on the shards only, not left on the coordinator\'s disk as well');
  t.deepEqual(await costs(db), before.costs.map((row) => row), 'no call is repriced');
  t.deepEqual(await reports(db), before.reports, 'the live reports are unchanged');
  t.deepEqual(await cliReports(), before.cli, 'and so is `ai-cost report` by every dimension');
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.notRegex(doctor.stdout + doctor.stderr, /^\s+at /m, 'doctor runs through, without a stack trace');
  t.regex(doctor.stdout, /^ok {4}schema: up to date/m);
  await db.query('SELECT * FROM ai_cost.refresh()');
  t.deepEqual(await reports(db, { live: true }), before.live, 'and so is every live report after a refresh');

  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^calls: ai_cost\.calls was already distributed$/m);
  t.deepEqual(await reports(db, { live: true }), before.live, 'running it again changes nothing');

  // Updates and deletes are captured on the shards: the live views follow them at once, the rollups from the next refresh.
  await db.query(`UPDATE ai_cost.calls SET user_id = 'someone else' WHERE tenant_id = 'tenant-1'`);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-2'`);
  const live = await rollupsAndCalls(db, { live: true });
  t.deepEqual(live.rolled, live.raw, 'the live view follows the updates and deletes');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw, 'and so do the rollups after a refresh');
  const after = await reports(db, { live: true });
  // A call recorded on a worker would escape the refresh, which reads the ids the coordinator draws.
  const worker = new pg.Client({ connectionString: db.workerUrls[0] });
  await worker.connect();
  const onWorker = await worker.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES ('openai', 'gpt-4o', 'tenant-1', 1)`)
    .then(() => '', (e: Error) => e.message).finally(() => worker.end());
  t.regex(onWorker, /violates check constraint "calls are recorded through the coordinator"/);
  const partitioned = await db.query('SELECT * FROM ai_cost.partition_calls()').then(() => '', (e: Error) => e.message);
  t.is(partitioned, 'ai_cost.calls is distributed over Citus, and a distributed ledger cannot be partitioned: partition a ledger before distributing it');
  t.deepEqual(await reports(db, { live: true }), after);
});

testOnCitus(test.serial, 'a statement that reads the calls and a report together is answered, and never takes the coordinator down', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await db.query('SELECT * FROM ai_cost.refresh()');
  // Pending keys with a NULL value, which the live views look up apart.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, user_id, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', NULL, 1000, 100)`);
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1 WHERE tenant_id = 'tenant-3'`);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  const alone = async (sql: string) => (await client.query<{ value: string }>(`SELECT (${sql})::text AS value`)).rows[0]!.value;
  const [calls] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost.calls');
  for (const view of ['spend_by_day', 'spend_daily_by_dimension', 'spend_daily_by_user']) {
    const total = `SELECT sum(cost_micros) FROM ai_cost.${view}`;
    const expected = await alone(total);
    const { rows } = await client.query<{ calls: string; total: string }>(
      `SELECT (SELECT count(*) FROM ai_cost.calls)::text AS calls, (${total})::text AS total`);
    t.deepEqual(rows, [{ calls: calls!.n, total: expected }], `${view} beside the calls says what it says alone`);
  }
  // Every other view too: Citus may refuse a statement, but the session (and every other) lives on.
  const views = await db.query<{ name: string }>(`SELECT relname AS name FROM pg_class
    WHERE relnamespace = 'ai_cost'::regnamespace AND relkind IN ('v', 'm') ORDER BY 1`);
  for (const { name } of views) {
    await client.query(`SELECT (SELECT count(*) FROM ai_cost.calls), (SELECT count(*) FROM ai_cost.${name})`).catch((e: Error) => e);
    t.is(await alone('SELECT 1'), '1', `the session lives on after reading ${name} beside the calls`);
  }
  // Citus plans a view inside such a statement as a subplan of its own, without the view's rights:
  // a reader is refused on the internal tables, and reads the same in two statements (docs/scaling.md).
  const asReader = await db.readerLogin();
  const together = await asReader.query(`SELECT (SELECT count(*) FROM ai_cost.calls), (SELECT sum(calls) FROM ai_cost.calls_hourly_live)`)
    .then(() => '', (e: Error) => e.message);
  t.regex(together, /^permission denied for table /);
  const [apart] = (await asReader.query<{ calls: string }>('SELECT sum(calls)::text AS calls FROM ai_cost.calls_hourly_live')).rows;
  t.is(apart!.calls, calls!.n, 'alone, the live view counts every call');
});

// Calls of every kind the cost trigger prices, with the columns of each.
const CALLS: Array<Record<string, unknown>> = [
  { provider: 'openai', model: 'gpt-4o', input_tokens: 1200, output_tokens: 300 },
  { provider: 'openai', model: 'gpt-4o-mini', input_tokens: 5000, output_tokens: 700, cache_read_tokens: 4096 },
  { provider: 'openai', model: 'gpt-4o-mini', service_tier: 'batch', input_tokens: 5000, output_tokens: 700 },
  { provider: 'openai', model: 'gpt-image-1', input_tokens: 400, image_input_tokens: 300, output_tokens: 4160, image_output_tokens: 4160 },
  { provider: 'anthropic', model: 'claude-sonnet-4-5', input_tokens: 9000, output_tokens: 800, cache_read_tokens: 2000, cache_write_tokens: 3000, cache_write_1h_tokens: 1000 },
  { provider: 'anthropic', model: 'claude-haiku-4-5-20251001', input_tokens: 2000, output_tokens: 150 },
  { provider: 'anthropic', model: 'claude-opus-4-6', service_tier: 'fast', input_tokens: 1000, output_tokens: 100 },
  { provider: 'google', model: 'gemini-2.5-pro', input_tokens: 250000, output_tokens: 1000 },
  { provider: 'google', model: 'gemini-2.0-flash', input_tokens: 3000, audio_input_tokens: 2000, output_tokens: 100 },
  { provider: 'google', model: 'models/gemini-2.5-flash', input_tokens: 800, output_tokens: 80 },
  { provider: 'amazon', model: 'us.anthropic.claude-3-5-haiku-20241022-v1:0', input_tokens: 700, output_tokens: 70 },
  { provider: 'perplexity', model: 'sonar-deep-research', input_tokens: 100, output_tokens: 5000, reasoning_tokens: 4000 },
  { provider: 'cohere', model: 'rerank-v3.5', units: 3, unit: 'query' },
  { provider: 'openrouter', model: 'openai/gpt-4o', input_tokens: 100, output_tokens: 10, provided_cost_micros: 1234 },
  { provider: 'openai', model: 'gpt-4o', input_tokens: 100, output_tokens: 10, cached: true },
  { provider: 'openai', model: 'gpt-4o', tenant_id: 'acme', input_tokens: 1000, output_tokens: 100 },
  { provider: 'openai', model: 'gpt-4o-mini', tenant_id: 'globex', input_tokens: 1000, output_tokens: 100 },
  { provider: 'openai', model: 'a-model-nobody-prices', input_tokens: 10, output_tokens: 10 },
  { provider: 'nobody-we-know', model: 'x', input_tokens: 10, output_tokens: 10 },
  { provider: 'openai', model: 'gpt-4o', service_tier: 'turbo', input_tokens: 10, output_tokens: 10 },
  { provider: 'deepseek', model: 'deepseek-chat', created_at: '2025-06-01T17:00:00Z', input_tokens: 10000, output_tokens: 1000 },
  { provider: 'deepseek', model: 'deepseek-chat', created_at: '2025-06-01T03:00:00Z', input_tokens: 10000, output_tokens: 1000 },
];

/** Each call of CALLS recorded through a single INSERT (the cost trigger) and through insert_calls, as stored. */
async function recordEveryWay(db: CitusDatabase): Promise<string[]> {
  await db.query(`INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off, valid_from) VALUES ('acme', 'openai', 20, '2020-01-01')`);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, tenant_id, input_per_mtok, output_per_mtok, valid_from)
                  VALUES ('openai', 'gpt-4o-mini', 'globex', 0.1, 0.4, '2020-01-01')`);
  // Each call is billed too: acme by a markup of its own, everyone else by the one for every tenant.
  await db.query(`INSERT INTO ai_cost.markups (tenant_id, provider, percent, per_call, per_mtok)
                  VALUES (NULL, NULL, 20, 0, 0.1), ('acme', 'openai', 5, 0.002, 0)`);
  // Tenants of no terms of their own for half the calls, spreading them over the shards.
  const calls = CALLS.map((call, i) => ('tenant_id' in call || i % 2 ? call : { ...call, tenant_id: `tenant-${i}` }));
  for (const [i, call] of calls.entries()) {
    // The columns the call has, as an application writes them.
    const columns = [...Object.keys(call), 'request_id'];
    await db.query(`
      INSERT INTO ai_cost.calls (${columns.join(', ')})
      SELECT ${columns.map((c) => `r.${c}`).join(', ')} FROM jsonb_populate_record(NULL::ai_cost.calls, $1::jsonb) AS r`,
    [JSON.stringify({ ...call, request_id: `single-${i}` })]);
  }
  await db.query('SELECT ai_cost.insert_calls($1::jsonb)', [JSON.stringify(calls.map((call, i) => ({ ...call, request_id: `batch-${i}` })))]);
  const rows = await db.query<{ row: string }>(`
    SELECT concat_ws(' | ', request_id, cost_micros, computed_cost_micros, price_id, discount_id, unpriced_reason,
                     'billed ' || billed_micros, 'markup ' || markup_id) AS row
      FROM ai_cost.calls ORDER BY request_id`);
  return rows.map((r) => r.row);
}

testOnCitus(test.serial, 'a call costs on every worker what it costs on one server, through the cost trigger and insert_calls', async (t) => {
  const single = await citus.database(t, { migrated: true });
  const cluster = await distributed(t);
  const expected = await recordEveryWay(single);
  t.deepEqual(await recordEveryWay(cluster), expected);
  t.true(expected.filter((row) => /^\S+ \| \d+ \| \d+ \| \d+/.test(row)).length >= 30, 'most calls are priced');
  t.true(expected.filter((row) => /\| (no price|unknown)/.test(row)).length >= 6, 'some are unpriced, with their reason');
  const tenants = await cluster.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM ai_cost.calls');
  const workers = new Set((await workerOf(cluster, tenants.map((r) => r.tenant_id))).values());
  t.is(workers.size, 2, 'the calls landed on both workers');
});

testOnCitus(test.serial, 'every command given a worker instead of the coordinator says so in one line, and does nothing', async (t) => {
  const db = await distributed(t);
  const worker = db.workerUrls[0]!;
  // Each command's arguments, and its name as the message gives it.
  const commands: [string[], string][] = [
    [['migrate', 'status'], 'migrate'], [['migrate', 'up'], 'migrate'], [['migrate', 'down'], 'migrate'],
    [['report'], 'report'], [['refresh'], 'refresh'], [['doctor'], 'doctor'], [['schedule'], 'schedule'],
    [['reprice', '--from', '2026-01-01', '--dry-run'], 'reprice'], [['prices', 'set', 'openai', 'gpt-x', '--input', '1'], 'prices set'],
    [['distribute'], 'distribute'],
  ];
  for (const [args, name] of commands) {
    const result = await runCli([...args, '--database-url', worker]);
    t.is(result.code, 1, args.join(' '));
    t.is(result.stderr, `ai-cost: ai-cost ${name} runs on the Citus coordinator, at localhost:${citus.cluster.coordinatorPort}, and this is a worker: give the coordinator's URL\n`);
  }
  // DATABASE_URL is checked alike.
  const byEnvironment = await runCli(['report'], { DATABASE_URL: worker });
  t.is(byEnvironment.stderr, `ai-cost: ai-cost report runs on the Citus coordinator, at localhost:${citus.cluster.coordinatorPort}, and this is a worker: give the coordinator's URL\n`);
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost.prices WHERE model = 'gpt-x'`), [{ n: 0 }]);
});

testOnCitus(test.serial, 'doctor fails for a worker whose price lookup is not the coordinator\'s, and ai-cost distribute builds it again', async (t) => {
  const db = await distributed(t);
  const [worker] = citus.cluster.workerPorts();
  const onWorker = new pg.Client({ connectionString: db.workerUrls[0] });
  await onWorker.connect();
  try {
    await onWorker.query('DELETE FROM ai_cost_internal.price_lookup');
  } finally {
    await onWorker.end();
  }
  const broken = await runCli(['doctor', '--database-url', db.url]);
  t.regex(broken.stdout, new RegExp(`^FAIL +distribution: the price lookup of worker\\(s\\) localhost:${worker} is not the coordinator's .*run \`ai-cost distribute\` again, then \`ai-cost reprice --unpriced\``, 'm'));
  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  const mended = await runCli(['doctor', '--database-url', db.url]);
  t.regex(mended.stdout, /^ok +distribution: ai_cost\.calls is distributed by tenant_id; each of the 2 worker\(s\) has its price lookup and book$/m);
  const byWorker = await tenantPerWorker(db);
  const [call] = await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost`, [byWorker.get(worker!)]);
  t.is(call!.cost, '3500', 'a call on the mended worker is priced');
});

testOnCitus(test.serial, 'ai-cost distribute --shard-count spreads the calls over that many shards, each call costing what it costs on one server', async (t) => {
  const single = await citus.database(t, { migrated: true });
  const cluster = await citus.database(t, { migrated: true });
  const refused = await runCli(['distribute', '--shard-count', '0', '--database-url', cluster.url]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /--shard-count <n>' argument '0' is invalid\. '0' is not a positive whole number/);
  const tooMany = await runCli(['distribute', '--shard-count', '70000', '--database-url', cluster.url]);
  t.is(tooMany.code, 1);
  t.is(tooMany.stderr, "ai-cost: the shard count must be a whole number from 1 to 64000 (Citus's range), not 70000\n");
  const distribution = await runCli(['distribute', '--shard-count', '4', '--database-url', cluster.url]);
  t.is(distribution.code, 0, distribution.stderr);
  t.regex(distribution.stdout, /^calls: ai_cost\.calls is distributed by tenant_id over 4 shard\(s\)$/m);
  const shards = await cluster.query<{ relation: string; shards: number }>(`
    SELECT logicalrelid::text AS relation, count(*)::int AS shards FROM pg_dist_shard
     WHERE logicalrelid IN ('ai_cost.calls'::regclass, 'ai_cost_internal.shard_call_changes'::regclass)
     GROUP BY 1 ORDER BY 1`);
  t.deepEqual(shards, [{ relation: 'ai_cost.calls', shards: 4 }, { relation: 'ai_cost_internal.shard_call_changes', shards: 4 }],
    'the changes captured on the shards lie beside the calls');
  t.deepEqual(await recordEveryWay(cluster), await recordEveryWay(single));
  await cluster.query(`UPDATE ai_cost.calls SET output_tokens = output_tokens + 1 WHERE request_id LIKE 'batch-%'`);
  await cluster.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(cluster);
  t.deepEqual(folded.rolled, folded.raw);
  const again = await runCli(['distribute', '--shard-count', '8', '--database-url', cluster.url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^calls: ai_cost\.calls was already distributed$/m);
  t.regex(again.stdout, /^note: --shard-count applies when the calls are first distributed; they keep the shards they have/m);
});

testOnCitus(test.serial, 'a price change reaches every worker in the transaction that makes it', async (t) => {
  const db = await distributed(t);
  const tenants = await tenantPerWorker(db);
  t.is(tenants.size, 2);
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    const { rows: [price] } = await client.query<{ id: string }>(`
      INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok, valid_from)
      VALUES ('openai', 'gpt-4o', 7, 21, now() - interval '1 second') RETURNING id::text`);
    for (const tenant of tenants.values()) {
      const { rows: [call] } = await client.query<{ price_id: string; cost_micros: string }>(`
        INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
        VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING price_id::text, cost_micros::text`, [tenant]);
      // 1,000 x $7 + 100 x $21 per million tokens.
      t.deepEqual(call, { price_id: price!.id, cost_micros: '9100' }, `a call of ${tenant} in the same transaction`);
    }
    await client.query('COMMIT');
    for (const tenant of tenants.values()) {
      const [call] = await db.query<{ price_id: string }>(`
        INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
        VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING price_id::text`, [tenant]);
      t.is(call!.price_id, price!.id, `a call of ${tenant} after it`);
    }
    // Every node compiled the same book from its copy of the prices.
    const books = await db.query<{ result: string }>(`
      SELECT result FROM run_command_on_all_nodes($$SELECT md5(string_agg(key || price_id, ',' ORDER BY key)) FROM ai_cost_internal.price_book$$)`);
    t.is(new Set(books.map((b) => b.result)).size, 1);
  } finally {
    await client.end();
  }
});

testOnCitus(test.serial, 'the rollups equal the calls after writers on two connections, one of them long open, and a refresh in steps', async (t) => {
  const db = await distributed(t);
  // Steps of 64 calls: the backlog of a refresh is folded part by part, as one of over a million is.
  const refreshInSteps = "BEGIN; SET LOCAL ai_cost.fold_part_calls = 64; SELECT * FROM ai_cost.refresh(); COMMIT";
  const writers = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
  await Promise.all(writers.map((writer) => writer.connect()));
  // A batch that waited for the open transaction would fail here, not hang.
  await writers[1]!.query(`SET statement_timeout = '20s'`);
  const batch = (tenant: string, n: number) => JSON.stringify(Array.from({ length: n }, (_, i) => ({
    provider: 'openai', model: 'gpt-4o-mini', tenant_id: `${tenant}-${i % 9}`, user_id: `user-${i % 5}`, input_tokens: 100 + i, output_tokens: 10 + i,
  })));
  try {
    await writers[0]!.query('BEGIN');
    await writers[0]!.query('SELECT ai_cost.insert_calls($1::jsonb)', [batch('open', 50)]);
    for (let round = 0; round < 6; round += 1) await writers[1]!.query('SELECT ai_cost.insert_calls($1::jsonb)', [batch(`round-${round}`, 100)]);
    await db.query(refreshInSteps);
    const [held] = await db.query<{ held: boolean }>('SELECT held_back_since IS NOT NULL AS held FROM ai_cost.refresh_status');
    t.true(held!.held, 'the refresh says it holds back the calls of the open transaction');
    await writers[0]!.query('SELECT ai_cost.insert_calls($1::jsonb)', [batch('late', 30)]);
    await writers[0]!.query('COMMIT');
    await db.query(refreshInSteps);
  } finally {
    await Promise.all(writers.map((writer) => writer.end()));
  }
  const rollup = await db.query(`SELECT tenant_id, user_id, sum(calls)::text AS calls, sum(cost_micros)::text AS cost,
                                        sum(input_tokens)::text AS input FROM ai_cost.calls_hourly GROUP BY 1, 2 ORDER BY 1, 2`);
  const raw = await db.query(`SELECT tenant_id, user_id, count(*)::text AS calls, sum(cost_micros)::text AS cost,
                                     sum(input_tokens)::text AS input FROM ai_cost.calls GROUP BY 1, 2 ORDER BY 1, 2`);
  t.is(raw.reduce((n, row) => n + Number(row.calls), 0), 680);
  t.deepEqual(rollup, raw);
  const [status] = await db.query<{ pending: string; held: boolean }>(
    'SELECT pending_changes::text AS pending, held_back_since IS NOT NULL AS held FROM ai_cost.refresh_status');
  t.deepEqual(status, { pending: '0', held: false });
});

/**
 * Runs `during` while a refresh, past collecting the shard changes, waits for a lock on `table` that
 * another session holds in `mode`. Resolves once the refresh is done.
 */
async function whileRefreshWaitsFor(db: CitusDatabase, table: string, mode: string, during: () => Promise<void>): Promise<void> {
  const [holder, refresher] = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
  await Promise.all([holder.connect(), refresher.connect()]);
  try {
    const refresherPid = (await refresher.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await holder.query(`BEGIN; LOCK TABLE ${table} IN ${mode} MODE`);
    const refreshing = refresher.query('SELECT * FROM ai_cost.refresh(views => false)');
    await until(async () => (await db.query<{ waiting: boolean }>(`SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted
      AND relation = $1::regclass AND pid = $2) AS waiting`, [table, refresherPid]))[0]!.waiting,
    `the refresh to reach ${table}`, 10_000);
    try {
      await during();
    } finally {
      await holder.query('ROLLBACK');
      await refreshing;
    }
  } finally {
    await Promise.all([holder.end(), refresher.end()]);
  }
}

/**
 * Commits `change` while a refresh waits between collecting the shard changes and reading the calls:
 * it first reads fold_state after the collection.
 */
async function changeWhileRefreshReads(db: CitusDatabase, change: string): Promise<void> {
  await whileRefreshWaitsFor(db, 'ai_cost_internal.fold_state', 'ACCESS EXCLUSIVE', async () => { await db.query(change); });
}

testOnCitus(test.serial, 'updates and deletes committed while a refresh is between collecting the shard changes and reading the calls count once', async (t) => {
  const db = await distributed(t);
  // All in one hour, so that the calls of a tenant are one rollup group.
  const record = async (tenant: string) => (await db.query<{ id: string }>(`INSERT INTO ai_cost.calls
    (created_at, provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('2026-06-01 12:00Z', 'openai', 'gpt-4o', $1, 1000, 100) RETURNING id::text`, [tenant]))[0]!.id;
  await record('tenant-1');
  await db.query('SELECT * FROM ai_cost.refresh()');

  const update = (id: string) => `UPDATE ai_cost.calls SET input_tokens = input_tokens + 4000 WHERE id = ${id}`;

  // Folded together: calls not folded yet, one updated and one deleted.
  const [updated, deleted] = [await record('tenant-1'), await record('tenant-3')];
  await changeWhileRefreshReads(db, `${update(updated)}; DELETE FROM ai_cost.calls WHERE id = ${deleted}`);
  const [status] = await db.query<{ pending: string; held: boolean }>(
    'SELECT pending_changes::text AS pending, held_back_since IS NOT NULL AS held FROM ai_cost.refresh_status');
  t.deepEqual(status, { pending: '1', held: true }, 'the refresh leaves both for the next one, which has the updated call to fold');
  await db.query('SELECT * FROM ai_cost.refresh()');
  let folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw);

  // Folded apart: a rollup group one call away from overflowing (damaged by hand) fails the fold, so the
  // calls go through the change table (ai_cost_internal.stage_unfolded_calls).
  const damaged = `tenant_id = 'tenant-2'`;
  await record('tenant-2');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [group] = await db.query<{ cost: string }>(`SELECT cost_micros::text AS cost FROM ai_cost.calls_hourly WHERE ${damaged}`);
  await db.query(`UPDATE ai_cost.calls_hourly SET cost_micros = 9223372036854775807 - 1 WHERE ${damaged}`);
  const victim = await record('tenant-2');
  await changeWhileRefreshReads(db, update(await record('tenant-1')));
  t.deepEqual((await db.query('SELECT call_id::text FROM ai_cost.set_aside_calls')).map((row) => row.call_id), [victim]);
  await db.query(`UPDATE ai_cost.calls_hourly SET cost_micros = $1 WHERE ${damaged}`, [group!.cost]);
  await db.query('SELECT ai_cost.retry_set_aside_changes()');
  await db.query('SELECT * FROM ai_cost.refresh()');
  folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw);
  const [after] = await db.query<{ pending: string; held: boolean }>(
    'SELECT pending_changes::text AS pending, held_back_since IS NOT NULL AS held FROM ai_cost.refresh_status');
  t.deepEqual(after, { pending: '0', held: false });
});

testOnCitus(test.serial, 'a live view read in a transaction older than two refreshes counts the changes each collected from the shards once', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await db.query('SELECT * FROM ai_cost.refresh()');
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 4000 WHERE tenant_id = 'tenant-1'`);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-2' AND id % 2 = 0`);
  const before = await rollupsAndCalls(db, { live: true });
  t.deepEqual(before.rolled, before.raw);

  // The reader's snapshot of the coordinator is taken before both refreshes, which collect the changes
  // from the shards; its first query to the shards comes after (a transaction reaches a worker when it
  // first needs it).
  const reader = new pg.Client({ connectionString: db.url });
  await reader.connect();
  t.teardown(() => reader.end());
  const asReader = { query: async (sql: string) => (await reader.query(sql)).rows };
  await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
  await reader.query('SELECT count(*) FROM ai_cost.calls_hourly');
  // A transaction idle in READ COMMITTED holds no snapshot: its next statement sees every collection,
  // so it keeps none of their changes on the shards, however long it stays open.
  const idle = new pg.Client({ connectionString: db.url });
  await idle.connect();
  t.teardown(() => idle.end());
  await idle.query('BEGIN');
  await idle.query('SELECT count(*) FROM ai_cost.calls_hourly_live');
  const idleSince = async () => (await idle.query<{ began: Date }>('SELECT now() AS began')).rows[0]!.began.getTime();
  const idleBegan = await idleSince();
  await db.query('SELECT * FROM ai_cost.refresh()');
  await db.query(`UPDATE ai_cost.calls SET output_tokens = output_tokens + 30 WHERE tenant_id = 'tenant-3'`);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const now = await rollupsAndCalls(db);
  const read = await rollupsAndCalls(asReader, { live: true });
  t.deepEqual(read.rolled, now.raw, 'neither in the rollups the reader sees nor left out on the shards');

  // A BI login and doctor see which transaction keeps them, and doctor warns once it has for long.
  const readerPid = (await reader.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  const bi = `bi_${db.name.slice(2)}`;
  await db.query(`CREATE ROLE ${bi} LOGIN IN ROLE ai_cost_reader`);
  t.teardown(() => db.query(`DROP ROLE ${bi}`).then(() => undefined));
  const keptStatus = async () => {
    const client = new pg.Client({ connectionString: Object.assign(new URL(db.url), { username: bi }).toString() });
    await client.connect();
    try {
      return (await client.query<{ since: Date | null; pids: number[] | null }>(
        'SELECT shard_changes_kept_since AS since, shard_changes_kept_for_pids AS pids FROM ai_cost.refresh_status')).rows[0]!;
    } finally {
      await client.end();
    }
  };
  const keptCheck = async () => {
    const pool = await createPool(db.url);
    try {
      return (await diagnose(db.url, pool)).checks.find((check) => check.name === 'kept on shards');
    } finally {
      await pool.end();
    }
  };
  const keptForReader = await keptStatus();
  t.deepEqual(keptForReader.pids, [readerPid], 'refresh_status names the reader\'s backend to a BI login, and not the idle transaction\'s');
  t.truthy(keptForReader.since);
  const fresh = await keptCheck();
  t.is(fresh?.level, 'ok');
  t.regex(fresh?.detail ?? '', new RegExp(`stay on the shards for the open transaction\\(s\\) of backend\\(s\\) ${readerPid} `));
  await db.query(`UPDATE ai_cost_internal.shard_collections_kept SET collected_at = collected_at - interval '11 minutes'`);
  const stale = await keptCheck();
  t.is(stale?.level, 'warn', 'a transaction open across refreshes for longer than the refresh may lag');
  t.regex(stale?.detail ?? '', /a live view read in one of those transactions may miss some$/);

  // A transaction left open keeps the changes of ten collections at most.
  const [first] = await db.query<{ collection: string }>(
    'SELECT min(collected_by)::text AS collection FROM ai_cost_internal.shard_call_changes');
  for (let collection = 0; collection < 10; collection += 1) {
    await db.query(`UPDATE ai_cost.calls SET output_tokens = output_tokens + 1 WHERE tenant_id = 'tenant-4'`);
    await db.query('SELECT * FROM ai_cost.refresh()');
  }
  const [kept] = await db.query<{ n: string }>(
    'SELECT count(*)::text AS n FROM ai_cost_internal.shard_call_changes WHERE collected_by = $1', [first!.collection]);
  t.is(kept!.n, '0');
  await reader.query('COMMIT');

  // Once no transaction is open that may need them, a refresh deletes them (another transaction open
  // at that moment, as Citus's own, keeps them one more refresh).
  await until(async () => {
    await db.query('SELECT * FROM ai_cost.refresh()');
    return (await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost_internal.shard_call_changes'))[0]!.n === '0';
  }, 'the refreshes to delete every change collected', 10_000);
  const expected = (await rollupsAndCalls(db)).raw;
  const after = await rollupsAndCalls(db, { live: true });
  t.deepEqual(after.rolled, expected);
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, expected);
  t.deepEqual(await keptStatus(), { since: null, pids: null });
  t.is(await keptCheck(), undefined, 'doctor says nothing of it once the reader has ended');
  t.is(await idleSince(), idleBegan, 'the idle transaction was open all along');
  await idle.query('COMMIT');
});

testOnCitus(test.serial, 'a refresh commits its stamps on the shards before its collection, and live views stay exact through a refresh rolled back', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const collection = async () => {
    const collection = (await db.query<{ collection: string }>(
      'SELECT collection::text FROM ai_cost_internal.shard_changes_collected'))[0]!.collection;
    const [counts] = await db.query<{ waiting: string; stamped: string }>(`SELECT
        count(*) FILTER (WHERE collected_by IS NULL)::text AS waiting, count(*) FILTER (WHERE collected_by > $1)::text AS stamped
      FROM ai_cost_internal.shard_call_changes`, [collection]);
    return { collection, ...counts! };
  };
  const exact = async (message: string) => {
    const live = await rollupsAndCalls(db, { live: true });
    t.deepEqual(live.rolled, live.raw, message);
  };

  // Citus commits the coordinator before the workers: the stamps must already be committed when the
  // number that makes a live view skip them is.
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 4000 WHERE tenant_id = 'tenant-1'`);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-2' AND id % 2 = 0`);
  const before = await collection();
  t.true(Number(before.waiting) > 0);
  // Held before it writes the rollups, which the live views read meanwhile.
  await whileRefreshWaitsFor(db, 'ai_cost.calls_hourly', 'EXCLUSIVE', async () => {
    t.deepEqual(await collection(), { collection: before.collection, waiting: '0', stamped: before.waiting },
      'while the refresh runs, its stamps are committed on the shards and its number is not on the coordinator');
    await exact('a live view counts the stamped changes until the refresh commits');
  });
  await exact('and skips them once the rollups hold them');
  t.is((await collection()).collection, String(Number(before.collection) + 1));

  // A refresh rolled back after it stamped: its stamps stay, with a number the coordinator never had.
  await db.query(`UPDATE ai_cost.calls SET output_tokens = output_tokens + 70 WHERE tenant_id = 'tenant-3'`);
  const rolledBack = new pg.Client({ connectionString: db.url });
  await rolledBack.connect();
  t.teardown(() => rolledBack.end());
  await rolledBack.query('BEGIN');
  await rolledBack.query('SELECT * FROM ai_cost.refresh(views => false)');
  await rolledBack.query('ROLLBACK');
  const left = await collection();
  t.is(left.waiting, '0');
  t.true(Number(left.stamped) > 0, 'the stamps of the rolled back refresh stay');
  await exact('a live view counts the changes of a refresh rolled back');
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-4' AND id % 3 = 0`);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw, 'the next refresh folds them once, with the changes made since');
  await exact('and the live views skip them');

  // A refresh in a transaction that has written already stamps in its own transaction: the nodes'
  // transactions could wait for it. TRUNCATE holds every change shard.
  await rolledBack.query(`BEGIN;
    TRUNCATE ai_cost.calls;
    INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      SELECT 'openai', 'gpt-4o', 'tenant-' || (i % 5), 1000, 100 FROM generate_series(1, 50) AS i`);
  await rolledBack.query('SELECT * FROM ai_cost.refresh(views => false)');
  await rolledBack.query(`UPDATE ai_cost.calls SET input_tokens = 7 WHERE tenant_id = 'tenant-1'`);
  await rolledBack.query('SELECT * FROM ai_cost.refresh(views => false)');
  await rolledBack.query('COMMIT');
  await exact('after a truncate, inserts, an update and refreshes in one transaction');
  const emptied = await rollupsAndCalls(db);
  t.deepEqual(emptied.rolled, emptied.raw);
});

testOnCitus(test.serial, 'the rollups and live views equal the calls after writers that insert, update and delete while refreshes run', async (t) => {
  const db = await distributed(t);
  await assertExactAfterWritesWhileRefreshing(t, db);
});

testOnCitus(test.serial, 'the calls no refresh has folded are read in one round of queries to the shards, and not at all when no id was drawn since', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const session = new pg.Client({ connectionString: db.url });
  await session.connect();
  t.teardown(() => session.end());
  const remote: string[] = [];
  session.on('notice', (notice) => { if (notice.message?.startsWith('issuing ')) remote.push(notice.message); });
  await session.query('SET citus.log_remote_commands = on; SET client_min_messages = log');
  const sent = async (query: string) => {
    remote.length = 0;
    const { rows: [row] } = await session.query<{ n: number }>(query);
    return { calls: row!.n, commands: [...remote] };
  };
  const unfolded = 'SELECT count(*)::int AS n FROM ai_cost_internal.unfolded_calls()';
  t.deepEqual(await sent(unfolded), { calls: 0, commands: [] }, 'the live views ask the shards nothing when no id was drawn since the refresh');

  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    SELECT 'openai', 'gpt-4o', 'round-' || i, 10, 10 FROM generate_series(1, 40) AS i`);
  const live = await sent(unfolded);
  t.is(live.calls, 40);
  const queries = live.commands.filter((command) => /\bSELECT\b/.test(command));
  t.true(queries.length > 0, 'the shards are asked');
  t.deepEqual(live.commands.filter((command) => /intermediate_result|COPY/i.test(command)), [],
    'no local table is sent to the workers first');
  t.is(new Set(queries.map((command) => command.replace(/calls_\d+/g, 'calls_*'))).size, 1, `one query, sent to each shard: ${queries[0]}`);
});

testOnCitus(test.serial, 'TRUNCATE of a distributed ledger\'s calls empties the rollups and the changes captured on the shards', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const distribution = await runCli(['distribute', '--database-url', db.url]);
  t.is(distribution.code, 0, distribution.stderr);
  // Changes captured on the shards and not collected yet, which would subtract from the emptied rollups.
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1 WHERE tenant_id = 'tenant-1'`);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = 'tenant-2'`);
  const [pending] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost_internal.shard_call_changes');
  t.true(Number(pending!.n) > 0, 'updates and deletes wait on the shards');
  await db.query('TRUNCATE ai_cost.calls');
  const [left] = await db.query<{ hourly: string; daily: string; live: string; shards: string }>(`
    SELECT (SELECT count(*) FROM ai_cost.calls_hourly)::text AS hourly,
           (SELECT count(*) FROM ai_cost_internal.dimensions_daily)::text AS daily,
           (SELECT count(*) FROM ai_cost.calls_hourly_live)::text AS live,
           (SELECT count(*) FROM ai_cost_internal.shard_call_changes)::text AS shards`);
  t.deepEqual(left, { hourly: '0', daily: '0', live: '0', shards: '0' });
  // The ledger goes on from empty.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, user_id, input_tokens, output_tokens)
                  SELECT 'openai', 'gpt-4o-mini', 'tenant-' || i % 5, 'user-' || i % 3, 100 + i, 10 FROM generate_series(1, 40) AS i`);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.is(folded.raw.length, 15);
  t.deepEqual(folded.rolled, folded.raw);
});

testOnCitus(test.serial, 'a reprice on a distributed ledger changes and audits each call whose cost or charge changed, and the rollups follow', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const distribution = await runCli(['distribute', '--database-url', db.url]);
  t.is(distribution.code, 0, distribution.stderr);
  // gpt-4o-mini got dearer three hours ago, and tenant-3 is billed 40% from then on.
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok, valid_from)
    VALUES ('openai', 'gpt-4o-mini', 1, 4, now() - interval '3 hours');
    INSERT INTO ai_cost.markups (tenant_id, percent, valid_from) VALUES ('tenant-3', 40, now() - interval '3 hours');`);
  const stale = async () => Number((await db.query<{ n: string }>(`
    -- Read on the coordinator (ORDER BY and LIMIT keep Citus from pushing the functions down to the shards).
    WITH c AS (SELECT * FROM ai_cost.calls ORDER BY id LIMIT 1000000)
    SELECT count(*) AS n FROM c
     CROSS JOIN LATERAL ai_cost_internal.cost_of(c::ai_cost.calls) n
      LEFT JOIN LATERAL ai_cost_internal.billing_of(c.tenant_id, c.provider, c.model, n.price_id, c.status, c.created_at,
                                                    n.cost_micros, c.input_tokens, c.output_tokens) b ON true
     WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id
        OR b.billed_micros IS DISTINCT FROM c.billed_micros`))[0]!.n);
  const before = await stale();
  t.true(before > 20, `${before} calls cost, are priced or are billed otherwise at today's prices and markups`);
  const dry = await runCli(['reprice', '--from', '1d', '--to', 'now', '--dry-run', '--database-url', db.url]);
  t.is(dry.code, 0, dry.stderr);
  const predicted = new RegExp(`^dry run: ${before} calls would change .*; charges: (.*); nothing was written$`, 'm').exec(dry.stdout);
  t.truthy(predicted, dry.stdout);
  const run = await runCli(['reprice', '--from', '1d', '--to', 'now', '--reason', 'dearer mini', '--batch-size', '100', '--database-url', db.url]);
  t.is(run.code, 0, run.stderr);
  t.is(/; charges: (.*); every change is in/.exec(run.stdout)?.[1], predicted?.[1], 'the dry run predicted the charges the run changed');
  t.is(await stale(), 0, 'every call costs, is priced and is billed as it is now');
  const [audit] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ai_cost.reprice_audit WHERE reason = 'dearer mini'`);
  t.is(Number(audit!.n), before, 'each changed call is audited once');
  const live = await rollupsAndCalls(db, { live: true });
  t.deepEqual(live.rolled, live.raw);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw);
});

testOnCitus(test.serial, 'an admin login prices a new model and backfills its calls on a distributed ledger with the CLI', async (t) => {
  const db = await distributed(t);
  const admin = `ad_${db.name.slice(2)}`;
  await db.query(`CREATE ROLE ${admin} LOGIN; GRANT ai_cost_admin TO ${admin}`);
  t.teardown(() => db.query(`DROP OWNED BY ${admin}; DROP ROLE ${admin}`).then(() => undefined));
  const url = new URL(db.url);
  url.username = admin;
  const asAdmin = ['--database-url', url.toString()];
  // Calls of a model with no price yet, for a tenant on each worker.
  const tenants = [...(await tenantPerWorker(db)).values()];
  t.is(tenants.length, 2);
  for (const tenant of tenants) {
    await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens, created_at)
                    VALUES ('acme', 'late-model', $1, 1000, 100, now() - interval '2 hours')`, [tenant]);
  }
  const priced = await runCli(['prices', 'set', 'acme', 'late-model', '--input', '2', '--output', '8', '--from', '1d', ...asAdmin]);
  t.is(priced.code, 0, priced.stderr);
  const backfill = await runCli(['reprice', '--unpriced', '--from', '1d', '--reason', 'late price', ...asAdmin]);
  t.is(backfill.code, 0, backfill.stderr);
  // 1,000 x 2 + 100 x 8 = 2,800 micro-dollars a call.
  t.regex(backfill.stdout, /2 changed \(2 newly priced, now \$0\.0056\)/);
  const calls = await db.query<{ tenant_id: string; cost_micros: string }>(
    `SELECT tenant_id, cost_micros::text FROM ai_cost.calls WHERE model = 'late-model' ORDER BY tenant_id`);
  t.deepEqual(calls, tenants.sort().map((tenant) => ({ tenant_id: tenant, cost_micros: '2800' })));
  const [audit] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ai_cost.reprice_audit WHERE reason = 'late price'`);
  t.is(audit!.n, 2);
});

testOnCitus(test.serial, 'migrate down --all uninstalls a distributed ledger from every node, and it installs and distributes again', async (t) => {
  const db = await distributed(t);
  await db.query(`SELECT ai_cost.enable_tenant_isolation();
                  INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', 'gone', 1000, 100)`);
  const everywhere = async () => {
    const counts: number[] = [];
    for (const url of [db.url, ...db.workerUrls]) {
      const node = new pg.Client({ connectionString: url });
      await node.connect();
      try {
        const { rows: [row] } = await node.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname IN ('ai_cost', 'ai_cost_internal')`);
        counts.push(row!.n);
      } finally {
        await node.end();
      }
    }
    return counts;
  };
  t.deepEqual(await everywhere(), [2, 2, 2]);
  // A view of the user's own over the calls stops it, as on one server.
  await db.query('CREATE VIEW public.my_calls AS SELECT id FROM ai_cost.calls');
  const refused = await runCli(['migrate', 'down', '--all', '--yes', '--database-url', db.url]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /your views public\.my_calls read its objects; drop them first/);
  t.deepEqual(await everywhere(), [2, 2, 2], 'nothing was dropped');
  await db.query('DROP VIEW public.my_calls');
  // Stepping down past the step that made distribution possible is refused in one line.
  const [reverting] = await db.query<{ steps: number }>(
    `SELECT count(*)::int AS steps FROM ai_cost_internal.schema_migrations WHERE name >= '0016_distribution_over_citus'`);
  const steps = reverting!.steps;
  const tooFar = await runCli(['migrate', 'down', '--count', String(steps), '--database-url', db.url]);
  t.is(tooFar.code, 1);
  t.regex(tooFar.stderr, new RegExp(`^ai-cost: migrate down refused: reverting ${steps} step\\(s\\) would take this ledger, distributed over Citus, below 0016_distribution_over_citus, .*migrate down --all --yes\n$`));
  t.deepEqual((await runCli(['migrate', 'status', '--database-url', db.url])).code, 0, 'nothing pending: no step was reverted');

  const uninstall = await runCli(['migrate', 'down', '--all', '--yes', '--database-url', db.url]);
  t.is(uninstall.code, 0, uninstall.stderr);
  t.regex(uninstall.stdout, /reverted 0001_baseline/);
  t.deepEqual(await everywhere(), [0, 0, 0], 'both schemas are gone from the coordinator and the workers');
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM pg_dist_partition`), [{ n: 0 }]);

  t.is((await runCli(['migrate', 'up', '--database-url', db.url])).code, 0);
  t.is((await runCli(['distribute', '--database-url', db.url])).code, 0);
  const [call] = await db.query<{ cost_micros: string }>(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('openai', 'gpt-4o', 'back', 1000, 100) RETURNING cost_micros::text`);
  t.is(call!.cost_micros, '3500');
});

testOnCitus(test.serial, 'the recorder, psql and Python record calls unchanged, each priced as Node records them', async (t) => {
  const db = await distributed(t);
  const env = { ...process.env, DATABASE_URL: db.url };
  const example = (command: string, args: string[]) => run(command, args, { cwd: root, env, timeout: 90_000 });
  await example(process.execPath, ['examples/node/record-calls.mjs', 'node']);
  await example(process.execPath, ['--import=tsx', 'examples/typescript/recorder.ts', 'recorder']);
  const psqlScript = await runPsql(db.url, `\\set prefix psql\n\\i ${root}examples/psql/record-calls.sql\n`);
  t.is(psqlScript.code, 0, psqlScript.stderr);
  const languages = ['node', 'recorder', 'psql'];
  if (pythonWithPsycopg.command) {
    await example(pythonWithPsycopg.command, ['examples/python/record_calls.py', 'python']);
    await example(pythonWithPsycopg.command, ['examples/python/record_calls.py', 'python']);
    languages.push('python');
  } else if (process.env.CI === 'true') {
    t.fail(`${pythonWithPsycopg.name} is missing: install ${pythonWithPsycopg.install}`);
  }
  const stored = async (prefix: string) => (await db.query<{ row: string }>(`
    SELECT concat_ws(' ', provider, model, tenant_id, input_tokens, output_tokens, cost_micros, price_id, unpriced_reason) AS row
      FROM ai_cost.calls WHERE request_id LIKE $1 ORDER BY request_id`, [`${prefix}-%`])).map((r) => r.row);
  const node = await stored('node');
  t.is(node.length, 3);
  for (const language of languages.slice(1)) t.deepEqual(await stored(language), node, `${language} stores what Node stores, once`);
});

testOnCitus(test.serial, 'a batch sent again counts as duplicates, not as new calls, in insert_calls and the recorder', async (t) => {
  const db = await distributed(t);
  const tenants = [...(await tenantPerWorker(db)).values()];
  const calls = (prefix: string) => tenants.flatMap((tenant) => [0, 1, 2].map((i) => (
    { provider: 'openai', model: 'gpt-4o', tenant_id: tenant, request_id: `${prefix}-${tenant}-${i}`, input_tokens: 10 })));
  const insertCalls = async (batch: unknown[]) =>
    (await db.query<{ inserted: string }>('SELECT ai_cost.insert_calls($1::jsonb)::text AS inserted', [JSON.stringify(batch)]))[0]!.inserted;
  t.is(await insertCalls(calls('again')), String(3 * tenants.length));
  t.is(await insertCalls([...calls('again'), ...calls('new').slice(0, 1)]), '1', 'only the call not sent before is new');

  const recorder = createRecorder({ databaseUrl: db.url, flushOnExit: false });
  const record = (prefix: string) => {
    for (const tenant of tenants) {
      for (const i of [0, 1, 2]) {
        recorder.record({ provider: 'openai', model: 'gpt-4o', tenantId: tenant, requestId: `${prefix}-${tenant}-${i}`, inputTokens: 10 });
      }
    }
    return recorder.flush();
  };
  t.true(await record('recorded'));
  t.true(await record('recorded'));
  const { written, duplicates } = recorder.metrics();
  await recorder.close();
  t.deepEqual({ written, duplicates }, { written: 3 * tenants.length, duplicates: 3 * tenants.length });
  const [stored] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.calls WHERE request_id LIKE 'recorded-%'`);
  t.is(stored!.n, String(3 * tenants.length));
});

testOnCitus(test.serial, 'the recorder keeps its connections to the workers from one batch to the next', async (t) => {
  const db = await distributed(t);
  const writer = `rw_${db.name.slice(2)}`;
  // No slow start: the executor opens a connection for each shard's task of a batch at once.
  await db.query(`CREATE ROLE ${writer} LOGIN; GRANT ai_cost_writer TO ${writer};
                  ALTER ROLE ${writer} SET citus.executor_slow_start_interval = 0`);
  t.teardown(() => db.query(`DROP OWNED BY ${writer}; DROP ROLE ${writer}`).then(() => undefined));
  const url = new URL(db.url);
  url.username = writer;
  const recorder = createRecorder({ databaseUrl: url.toString(), concurrency: 1, flushOnExit: false });
  t.teardown(() => recorder.close());
  // Two batches of calls of 300 tenants, which write every shard.
  for (let i = 0; i < 1000; i += 1) recorder.record({ provider: 'openai', model: 'gpt-4o', tenantId: `kept-${i % 300}`, inputTokens: 10 });
  t.true(await recorder.flush());
  t.is(recorder.metrics().written, 1000);
  // Citus names a connection it opens for a session after that session's
  // global pid: the coordinator's node id times 10^10, plus its pid.
  const [session] = await db.query<{ gpid: string }>(`
    SELECT ((SELECT nodeid FROM pg_dist_node WHERE groupid = 0)::bigint * 10000000000 + a.pid)::text AS gpid
      FROM pg_stat_activity a WHERE a.usename = $1 AND a.datname = current_database()`, [writer]);
  t.truthy(session, 'the recorder\'s connection');
  for (const workerUrl of db.workerUrls) {
    const worker = new pg.Client({ connectionString: workerUrl });
    await worker.connect();
    try {
      const { rows: [kept] } = await worker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [`citus_internal gpid=${session!.gpid}`]);
      // Citus keeps one by default (citus.max_cached_conns_per_worker = 1).
      t.true(kept!.n > 1, `connections of the recorder kept open on ${workerUrl}: ${kept!.n}`);
    } finally {
      await worker.end();
    }
  }
});

testOnCitus(test.serial, 'the recorder writes batches of 64 calls per shard to a distributed ledger', async (t) => {
  const db = await distributed(t);
  const writer = `rb_${db.name.slice(2)}`;
  // Counts the writer's calls of insert_calls (pg_stat_user_functions), one per batch.
  await db.query(`CREATE ROLE ${writer} LOGIN; GRANT ai_cost_writer TO ${writer};
                  ALTER ROLE ${writer} SET track_functions = 'all'`);
  t.teardown(() => db.query(`DROP OWNED BY ${writer}; DROP ROLE ${writer}`).then(() => undefined));
  const url = new URL(db.url);
  url.username = writer;
  const recorder = createRecorder({ databaseUrl: url.toString(), concurrency: 1, flushOnExit: false });
  // The first batch (500, the one-server size) is on its way while the
  // recorder learns the shards; the other 4,500 calls wait for it.
  for (let i = 0; i < 5000; i += 1) recorder.record({ provider: 'openai', model: 'gpt-4o', tenantId: `batched-${i % 300}`, inputTokens: 10 });
  t.true(await recorder.flush());
  t.is(recorder.metrics().written, 5000);
  // Closing ends the recorder's backends, which report their counts as they exit.
  await recorder.close();
  let batches = 0;
  for (let waited = 0; waited < 10_000; waited += 100) {
    const [row] = await db.query<{ gone: boolean; batches: number }>(`
      SELECT pg_stat_clear_snapshot() IS NULL
             AND NOT EXISTS (SELECT FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()) AS gone,
             coalesce((SELECT sum(calls) FROM pg_stat_user_functions WHERE schemaname = 'ai_cost' AND funcname = 'insert_calls'), 0)::int AS batches`,
      [writer]);
    batches = row!.batches;
    if (row!.gone && batches > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // 32 shards: 500, then 2,048, 2,048 and 404; batches of 500 would take ten.
  t.is(batches, 4, `5,000 calls written in ${batches} batches`);
});

testOnCitus(test.serial, 'a database owner that is not a superuser installs and distributes where the pg-ai-cost roles exist already', async (t) => {
  // The roles are the cluster's: an install in another database made them on every node.
  const first = await citus.database(t, { migrated: true });
  const owner = `o_${first.name.slice(2)}`;
  // Runs after the database below is dropped (teardowns run last first), when the owner owns nothing.
  t.teardown(() => first.query(`DROP ROLE IF EXISTS ${owner}`).then(() => undefined));
  const db = await citus.database(t);
  await db.query(`CREATE ROLE ${owner} LOGIN CREATEROLE; ALTER DATABASE ${db.name} OWNER TO ${owner}`);
  const url = new URL(db.url);
  url.username = owner;
  const install = await runCli(['migrate', 'up', '--database-url', url.toString()]);
  t.is(install.code, 0, install.stderr);
  t.deepEqual(install.stdout.split('\n').filter((line) => line.startsWith('note:') && !line.includes('pg_cron is not installed')), [],
    'the install leaves nothing to do but scheduling, and passes Citus\'s chatter over');
  const distribute = await runCli(['distribute', '--database-url', url.toString()]);
  t.is(distribute.code, 0, distribute.stderr);
  t.regex(distribute.stdout, /ai_cost\.calls is distributed by tenant_id/);
  const [ledger] = await db.query<{ owner: string }>(`SELECT pg_catalog.pg_get_userbyid(nspowner) AS owner FROM pg_catalog.pg_namespace WHERE nspname = 'ai_cost'`);
  t.is(ledger!.owner, owner, 'the owner, not a superuser, owns the ledger');
  // Again, as after an upgrade: it completes each worker's price state, grants included.
  const worker = new pg.Client({ connectionString: db.workerUrls[0] });
  await worker.connect();
  const writerReadsLookup = async () => (await worker.query<{ granted: boolean }>(
    `SELECT has_table_privilege('ai_cost_writer', 'ai_cost_internal.price_lookup', 'SELECT') AS granted`)).rows[0]!.granted;
  try {
    t.true(await writerReadsLookup());
    await worker.query('REVOKE SELECT ON ai_cost_internal.price_lookup FROM ai_cost_writer');
    const again = await runCli(['distribute', '--database-url', url.toString()]);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stdout, /^calls: ai_cost\.calls was already distributed$/m);
    t.true(await writerReadsLookup(), 'the grant the worker lost is given back');
  } finally {
    await worker.end();
  }
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const { rows } = await client.query<{ cost_micros: string }>(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      SELECT 'openai', 'gpt-4o', 'owner-' || i, 1000, 100 FROM generate_series(1, 20) AS i RETURNING cost_micros::text`);
    t.deepEqual([...new Set(rows.map((row) => row.cost_micros))], ['3500'], 'calls on every worker are priced');
  } finally {
    await client.end();
  }
});

testOnCitus(test.serial, 'roles and tenant isolation hold on every worker', async (t) => {
  const db = await distributed(t);
  const suffix = db.name.slice(2);
  const [writer, tenantReader, reader] = [`w_${suffix}`, `tr_${suffix}`, `r_${suffix}`];
  await db.query(`CREATE ROLE ${writer} LOGIN; GRANT ai_cost_writer TO ${writer};
                  CREATE ROLE ${tenantReader} LOGIN; GRANT ai_cost_tenant_reader TO ${tenantReader};
                  CREATE ROLE ${reader} LOGIN; GRANT ai_cost_reader TO ${reader}`);
  t.teardown(() => db.query(`DROP OWNED BY ${writer}, ${tenantReader}, ${reader}; DROP ROLE ${writer}, ${tenantReader}, ${reader}`).then(() => undefined));
  await db.query('SELECT ai_cost.enable_tenant_isolation()');
  const tenants = [...(await tenantPerWorker(db)).values()];
  await db.query('INSERT INTO ai_cost.tenant_access (reader, tenant_id) VALUES ($1, $2)', [tenantReader, tenants[0]]);
  const as = async <R extends pg.QueryResultRow>(role: string, text: string, params: unknown[] = []) => {
    const url = new URL(db.url);
    url.username = role;
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  for (const tenant of tenants) {
    const [call] = await as<{ cost_micros: string }>(writer, `INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text`, [tenant]);
    t.is(call!.cost_micros, '3500', 'a writer records a call on each worker and reads its cost back');
  }
  await as(writer, `SELECT ai_cost.insert_calls($1::jsonb)`, [JSON.stringify(tenants.map((tenant) => ({ provider: 'openai', model: 'gpt-4o', tenant_id: tenant, input_tokens: 10 })))]);
  const denied = await as(writer, 'SELECT tenant_id FROM ai_cost.calls').then(() => '', (e: Error) => e.message);
  t.regex(denied, /permission denied for table calls/);
  const seen = await as<{ tenant_id: string; calls: string }>(tenantReader, 'SELECT tenant_id, count(*)::text AS calls FROM ai_cost.calls GROUP BY 1');
  t.deepEqual(seen, [{ tenant_id: tenants[0]!, calls: '2' }], 'a tenant reader reads only the calls of its tenant');
  await db.query('SELECT * FROM ai_cost.refresh()');
  const rolled = await as<{ tenant_id: string }>(tenantReader, 'SELECT DISTINCT tenant_id FROM ai_cost.calls_hourly');
  t.deepEqual(rolled, [{ tenant_id: tenants[0]! }], 'and only its rollup rows');
  const [all] = await as<{ n: string }>(reader, 'SELECT count(*)::text AS n FROM ai_cost.calls');
  t.is(all!.n, '4', 'a reader reads every tenant');
  const hidden = await as(reader, 'SELECT error_message FROM ai_cost.calls').then(() => '', (e: Error) => e.message);
  t.regex(hidden, /permission denied for table calls/, 'but not what the calls were about');
  // Changes captured on the shards and not collected yet reach the reader's live views.
  await db.query(`UPDATE ai_cost.calls SET input_tokens = 2000 WHERE tenant_id = $1 AND input_tokens = 1000`, [tenants[0]]);
  const [live] = await as<{ input: string }>(reader, 'SELECT sum(input_tokens)::text AS input FROM ai_cost.calls_hourly_live');
  t.is(live!.input, String(2000 + 1000 + 2 * 10), 'a reader\'s live view includes an update no refresh has folded');

  // One login serving many tenants takes each with SET LOCAL ROLE (docs/security.md). Citus reaches the
  // workers as the role in force, so on a cluster the tenant role needs LOGIN to read the calls there.
  const [tenantRole, api] = [`tn_${suffix}`, `api_${suffix}`];
  await db.query(`CREATE ROLE ${tenantRole} NOLOGIN IN ROLE ai_cost_tenant_reader;
                  CREATE ROLE ${api} LOGIN NOINHERIT IN ROLE ${tenantRole}`);
  t.teardown(() => db.query(`DROP OWNED BY ${api}, ${tenantRole}; DROP ROLE ${api}, ${tenantRole}`).then(() => undefined));
  await db.query('INSERT INTO ai_cost.tenant_access (reader, tenant_id) VALUES ($1, $2)', [tenantRole, tenants[1]]);
  const perRequest = `BEGIN; SET LOCAL ROLE ${tenantRole}; SELECT tenant_id, count(*)::text AS calls FROM ai_cost.calls GROUP BY 1`;
  const refused = await as(api, perRequest).then(() => '', (e: Error) => e.message);
  t.regex(refused, new RegExp(`role "${tenantRole}" is not permitted to log in`));
  await db.query(`ALTER ROLE ${tenantRole} LOGIN`);
  const client = new pg.Client({ connectionString: Object.assign(new URL(db.url), { username: api }).toString() });
  await client.connect();
  try {
    const results = await client.query(perRequest) as unknown as pg.QueryResult[];
    t.deepEqual(results.at(-1)!.rows, [{ tenant_id: tenants[1]!, calls: '2' }], 'with LOGIN, the request reads its tenant\'s calls on its worker');
  } finally {
    await client.end();
  }
});

testOnCitus(test.serial, 'a distributed ledger takes an upgrade: migrate up, then ai-cost distribute again for the tables it adds', async (t) => {
  // The ledger as the release before markups left it (whose distributed
  // calls refused updates and deletes), distributed and in use.
  const db = await citus.database(t, { migrated: true });
  await migrateDownThrough(t, db, '0017_markups_and_billing');
  t.is((await db.query(`SELECT to_regclass('ai_cost.markups') AS markups`))[0]!.markups, null);
  const first = await runCli(['distribute', '--database-url', db.url]);
  t.is(first.code, 0, first.stderr);
  const tenants = [...(await tenantPerWorker(db)).values()];
  const insert = (tenant: string) => db.query<{ cost: string; billed: string | null }>(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost, billed_micros::text AS billed`, [tenant]);
  for (const tenant of tenants) await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('openai', 'gpt-4o', $1, 1000, 100)`, [tenant]);

  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0, up.stderr);
  t.regex(up.stdout, /0017_markups_and_billing/);
  t.regex(up.stdout, /0018_changes_captured_on_shards/);
  // An upgrade that replaces insert_calls keeps the setting distribute gave it.
  const [batches] = await db.query<{ settings: string[] }>(
    `SELECT proconfig AS settings FROM pg_proc WHERE oid = 'ai_cost.insert_calls(jsonb)'::regprocedure`);
  t.true(batches!.settings.includes('citus.all_modifications_commutative=on'), batches!.settings.join(', '));
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.regex(doctor.stdout, /^FAIL +distribution: markups is not on the workers yet \(added by an upgrade since `ai-cost distribute` last ran\).*run `ai-cost distribute` again$/m);
  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^price tables: markups are reference tables$/m);
  const [layout] = await db.query<{ method: string }>(`
    SELECT partmethod AS method FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.markups'::regclass`);
  t.is(layout!.method, 'n');
  t.regex((await runCli(['doctor', '--database-url', db.url])).stdout, /^ok +distribution: /m);

  // Billing works on every worker: 1,000 x $2.50 + 100 x $10 per million tokens = 3,500, plus 10%.
  await db.query(`INSERT INTO ai_cost.markups (percent) VALUES (10)`);
  for (const tenant of tenants) t.deepEqual((await insert(tenant))[0], { cost: '3500', billed: '3850' }, `a call of ${tenant}`);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [rollup] = await db.query<{ calls: string; raw: string; billed: string; unbilled: string }>(`
    SELECT (SELECT sum(calls) FROM ai_cost.calls_hourly)::text AS calls, (SELECT count(*) FROM ai_cost.calls)::text AS raw,
           (SELECT sum(billed_micros) FROM ai_cost.calls_hourly)::text AS billed,
           (SELECT sum(unbilled_calls) FROM ai_cost.calls_hourly)::text AS unbilled`);
  t.deepEqual(rollup, { calls: String(2 * tenants.length), raw: String(2 * tenants.length), billed: String(3850 * tenants.length), unbilled: String(tenants.length) });
  // Its calls, refused updates and deletes before, take them now.
  await db.query(`UPDATE ai_cost.calls SET input_tokens = 2000 WHERE tenant_id = $1`, [tenants[0]]);
  await db.query(`DELETE FROM ai_cost.calls WHERE tenant_id = $1`, [tenants[1]]);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw);
  // A TRUNCATE empties the rollups, which the ledger's calls did not do before the upgrade.
  await db.query('TRUNCATE ai_cost.calls');
  const [emptied] = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM ai_cost.calls_hourly');
  t.is(emptied!.n, '0');
});

testOnCitus(test.serial, 'doctor names a function that lacks its Citus setting, and migrate and distribute give it back', async (t) => {
  const db = await distributed(t);
  const settings = async () => (await db.query<{ setting: string }>(`
    SELECT concat(p.oid::regprocedure, ' ', c.setting) AS setting
      FROM pg_proc p CROSS JOIN LATERAL unnest(p.proconfig) AS c(setting)
     WHERE p.oid IN ('ai_cost.insert_calls(jsonb)'::regprocedure, 'ai_cost_internal.may_read_tenant(text)'::regprocedure)
       AND c.setting LIKE 'citus.%'
     ORDER BY 1`)).map((row) => row.setting);
  const given = await settings();
  t.deepEqual(given, ['ai_cost.insert_calls(jsonb) citus.all_modifications_commutative=on',
    'ai_cost_internal.may_read_tenant(text) citus.allow_nested_distributed_execution=on']);
  t.regex((await runCli(['doctor', '--database-url', db.url])).stdout, /^ok +distribution: /m);
  // What CREATE OR REPLACE in an upgrade step does to a function's settings.
  const replaced = async () => {
    await db.query('ALTER FUNCTION ai_cost.insert_calls(jsonb) RESET citus.all_modifications_commutative');
    await db.query('ALTER FUNCTION ai_cost_internal.may_read_tenant(text) RESET citus.allow_nested_distributed_execution');
  };
  await replaced();
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.regex(doctor.stdout, /^FAIL +distribution: ai_cost\.insert_calls\(jsonb\) \(citus\.all_modifications_commutative = on\), ai_cost_internal\.may_read_tenant\(text\) \(citus\.allow_nested_distributed_execution = on\) lack the settings `ai-cost distribute` gave .*run `ai-cost distribute` again$/m);

  // An upgrade: the step that adds the list, reverted and applied again.
  await migrateDownThrough(t, db, '0028_cluster_settings_listed_once');
  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0, up.stderr);
  t.deepEqual(await settings(), given, 'migrate up gives the settings back');
  t.regex((await runCli(['doctor', '--database-url', db.url])).stdout, /^ok +distribution: /m);

  await replaced();
  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  t.deepEqual(await settings(), given, 'ai-cost distribute gives the settings back');
});

// Each node compiles its own price book (sql/145_distribution.sql), so an
// upgrade that changes what the book holds must have every node compile it
// again, or the cost trigger the upgrade gives the workers would name
// functions their book lacks.
testOnCitus(test.serial, 'an upgrade that changes the compiled book has every worker compile its own again, and calls there are priced at once', async (t) => {
  const db = await distributed(t);
  const generations = async () => (await db.query<{ generation: string }>(`
    SELECT result AS generation FROM run_command_on_workers('SELECT generation FROM ai_cost_internal.price_book_generation')
     ORDER BY nodeport`)).map((row) => Number(row.generation));
  await migrateDownThrough(t, db, '0032_plain_calls_read_small_constants');
  const before = await generations();
  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0, up.stderr);
  t.deepEqual(await generations(), before.map((generation) => (generation + 1) % 2047), 'each worker compiled once more');
  for (const tenant of (await tenantPerWorker(db)).values()) {
    const [call] = await db.query<{ cost: string; priced: boolean }>(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o', $1, 1000, 100)
      RETURNING cost_micros::text AS cost, price_id IS NOT NULL AS priced`, [tenant]);
    t.deepEqual(call, { cost: '3500', priced: true }, `a call of ${tenant}`);
  }
  t.regex((await runCli(['doctor', '--database-url', db.url])).stdout, /^ok +distribution: /m);
});

testOnCitus(test.serial, 'a distributed ledger migrates down to the release before markups and up again, its calls and rollups kept', async (t) => {
  const db = await citus.database(t, { migrated: true });
  await populate(db);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const distribution = await runCli(['distribute', '--database-url', db.url]);
  t.is(distribution.code, 0, distribution.stderr);
  // The costs of the calls recorded before the downgrade (billing is the release's that comes after).
  const [last] = await db.query<{ id: string }>('SELECT max(id)::text AS id FROM ai_cost.calls');
  const priced = async () => (await db.query<{ row: string }>(`
    SELECT concat_ws(' ', id, cost_micros, computed_cost_micros, price_id, discount_id, unpriced_reason) AS row
      FROM ai_cost.calls WHERE id <= $1 ORDER BY id`, [last!.id])).map((r) => r.row);
  const before = await priced();
  t.true(before.length > 1000);
  await migrateDownThrough(t, db, '0017_markups_and_billing');
  t.is((await db.query(`SELECT to_regclass('ai_cost.markups') AS markups`))[0]!.markups, null);
  // That release priced calls on every worker and refused updates of distributed calls.
  for (const tenant of (await tenantPerWorker(db)).values()) {
    const [call] = await db.query<{ cost: string }>(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost`, [tenant]);
    t.is(call!.cost, '3500', `a call of ${tenant}`);
  }
  await t.throwsAsync(db.query(`UPDATE ai_cost.calls SET user_id = 'x' WHERE tenant_id = 'tenant-1'`), { message: /cannot be updated or deleted yet/ });
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [sums] = await db.query<{ rolled: string; raw: string }>(`
    SELECT (SELECT concat_ws(' ', sum(calls), sum(cost_micros), sum(unpriced_calls)) FROM ai_cost.calls_hourly) AS rolled,
           (SELECT concat_ws(' ', count(*), sum(cost_micros), count(*) FILTER (WHERE cost_micros IS NULL)) FROM ai_cost.calls) AS raw`);
  t.is(sums!.rolled, sums!.raw);

  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0, up.stderr);
  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  t.regex((await runCli(['doctor', '--database-url', db.url])).stdout, /^ok +distribution: /m);
  t.deepEqual(await priced(), before, 'every call costs what it did, priced by the same price');
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1 WHERE tenant_id = 'tenant-1'`);
  await db.query('SELECT * FROM ai_cost.refresh()');
  const folded = await rollupsAndCalls(db);
  t.deepEqual(folded.rolled, folded.raw);
  // The upgrade gave refresh_status its reader of the collections kept on this ledger.
  const [kept] = await db.query<{ reads: boolean; dated: boolean }>(`
    SELECT pg_get_functiondef('ai_cost_internal.shard_changes_kept()'::regprocedure) LIKE '%shard_collections_kept%' AS reads,
           (SELECT bool_and(collected_at IS NOT NULL) FROM ai_cost_internal.shard_collections_kept) AS dated
      FROM ai_cost.refresh_status`);
  t.deepEqual(kept, { reads: true, dated: true });
});
