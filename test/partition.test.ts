import test from 'ava';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import { insertCalls, type QueuedCall } from '../src/recorder/insert.js';
import { useTestDatabase } from './support/database.js';
import { schemaSnapshot } from './support/schema-snapshot.js';

// ai_cost.partition_calls() on a database with history: what changes, what
// must not, and how idempotency by request_id works afterwards. The tests
// run in order on one database and build on each other.
const db = useTestDatabase(test);

/** Calls over the last ~4 months (one every 2 hours), a third without request_id, some unpriced, those of t1 billed by a markup. */
const HISTORY = `
  INSERT INTO ai_cost.markups (tenant_id, percent, per_call) VALUES ('t1', 30, 0.0001);
  INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, request_id, input_tokens, output_tokens,
                             cache_read_tokens, total_ms, streamed, ttft_ms, conversation_id)
  SELECT now() - i * interval '2 hours', 'openai', CASE WHEN i % 11 = 0 THEN 'no-such-model' ELSE 'gpt-4o-mini' END,
         't' || i % 3, CASE WHEN i % 3 <> 0 THEN 'hist-' || i END, 1000 + i, 100 + i % 50, i % 200,
         50 + i % 900, i % 2 = 0, CASE WHEN i % 2 = 0 THEN 20 + i % 300 END, 'conv-' || i % 40
    FROM generate_series(1, 1500) AS i`;

const ROWS = `SELECT id, created_at, request_id, cost_micros, price_id, unpriced_reason, tenant_id, input_tokens, billed_micros, markup_id
                FROM ai_cost.calls WHERE NOT cached ORDER BY id`;
const HOURLY = 'SELECT * FROM ai_cost.calls_hourly ORDER BY hour, model, status, tenant_id, user_id, feature, cached, unpriced_reason';
const CONVERSATIONS = 'SELECT * FROM ai_cost.conversations_hourly ORDER BY hour, conversation_id, tenant_id, user_id';
const PENDING = `SELECT sign, created_at, model, cost_micros, input_tokens FROM ai_cost_internal.pending_changes
                  WHERE NOT cached ORDER BY created_at, sign, model, cost_micros, input_tokens`;

/** Lines of a schema snapshot that describe partitions: they only exist after the conversion. */
const isPartitionLine = (line: string) =>
  /^\S+ (CREATE (UNIQUE )?INDEX )?(ai_cost\.)?calls_(\d{4}_\d{2}|default)[ ._]/.test(line)
  || /^trigger .* ON ai_cost\.calls_(\d{4}_\d{2}|default) /.test(line);

const call = (requestId: string, createdAt = new Date()): QueuedCall => ({
  provider: 'openai', model: 'gpt-4o-mini', operation: 'chat', status: 'success', serviceTier: 'standard',
  metadata: {}, streamed: false, cached: false, requestId, createdAt, inputTokens: 1000n, outputTokens: 10n,
});

test.serial('the install converts nothing: ai_cost.calls stays a plain table until asked', async (t) => {
  const [table] = await db.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE oid = 'ai_cost.calls'::regclass`);
  t.is(table?.relkind, 'r');
  t.deepEqual(await db.query('SELECT * FROM ai_cost.call_partitions'), []);
  t.deepEqual(await db.query('SELECT * FROM ai_cost.maintain_partitions()'), []);
});

test.serial('partition_calls keeps every row, cost, rollup and pending change, and the table clients see', async (t) => {
  await db.query(HISTORY);
  await db.query('SELECT ai_cost.refresh()');
  // A few changes stay pending across the conversion.
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens)
                  VALUES (now() - interval '40 days', 'openai', 'gpt-4o', 'pending-1', 500, 50),
                         (now(), 'openai', 'gpt-4o', NULL, 700, 70)`);
  const before = {
    rows: await db.query(ROWS), hourly: await db.query(HOURLY), conversations: await db.query(CONVERSATIONS),
    pending: await db.query(PENDING), schema: await schemaSnapshot(db),
  };

  // A session that ran the pricing functions before the conversion (they
  // take a calls row, so the conversion creates them again) keeps working.
  const session = new pg.Client({ connectionString: db.url });
  await session.connect();
  const pricingWorks = async () => {
    const explained = await session.query(`SELECT component FROM ai_cost.explain_cost((SELECT max(id) FROM ai_cost.calls))`);
    const cached = await session.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, cached)
                                        VALUES ('openai', 'gpt-4o-mini', 10, true) RETURNING cost_micros`);
    const preview = await session.query(`SELECT * FROM ai_cost.reprice_preview(now() - interval '10 days', now())`);
    return explained.rows.length > 0 && cached.rows[0]?.cost_micros === '0' && preview.rows.length > 0;
  };
  try {
    t.true(await pricingWorks());
    before.rows = await db.query(ROWS);
    before.pending = await db.query(PENDING);

    const [result] = await db.query<{ partitions: number; calls_copied: string }>('SELECT * FROM ai_cost.partition_calls()');
    t.is(result?.calls_copied, String(before.rows.length + 1), 'the rows, and the app-cache hit just recorded');
    t.deepEqual(await db.query(PENDING), before.pending, 'the calls waiting for the refresh wait on, before any call is recorded after');
    t.true(await pricingWorks());
  } finally {
    await session.end();
  }

  t.deepEqual(await db.query(ROWS), before.rows);
  t.deepEqual(await db.query(HOURLY), before.hourly);
  t.deepEqual(await db.query(CONVERSATIONS), before.conversations);
  t.deepEqual(await db.query(PENDING), before.pending);

  // (Procedures come out of schemaSnapshot as null lines; they are the same on both sides.)
  const after = (await schemaSnapshot(db)).filter((line) => !isPartitionLine(line ?? ''));
  const removed = before.schema.filter((line) => !after.includes(line));
  const added = after.filter((line) => !before.schema.includes(line));
  // What changes, and nothing else: the table becomes partitioned, the keys
  // gain created_at, the created_at index becomes a partitioned index, and
  // the request_id triggers join.
  t.deepEqual(removed.map((line) => line.replace(/ acl=.*/, '')).sort(), [
    'constraint ai_cost.calls calls_pkey PRIMARY KEY (id)',
    'constraint ai_cost.calls calls_request_id_key UNIQUE (request_id)',
    'index CREATE INDEX calls_created_at_idx ON ai_cost.calls USING btree (created_at)',
    'index CREATE UNIQUE INDEX calls_pkey ON ai_cost.calls USING btree (id)',
    'index CREATE UNIQUE INDEX calls_request_id_key ON ai_cost.calls USING btree (request_id)',
    'relation ai_cost.calls r',
    'relation ai_cost.calls_created_at_idx i',
    'relation ai_cost.calls_pkey i',
    'relation ai_cost.calls_request_id_key i',
  ]);
  t.deepEqual(added.filter((line) => !line.startsWith('trigger ')).map((line) => line.replace(/ (acl|notnull)=.*/, '')).sort(), [
    'column calls_pkey.created_at timestamp with time zone',
    'column calls_request_id_key.created_at timestamp with time zone',
    'constraint ai_cost.calls calls_pkey PRIMARY KEY (id, created_at)',
    'constraint ai_cost.calls calls_request_id_key UNIQUE (request_id, created_at)',
    'index CREATE INDEX calls_created_at_idx ON ONLY ai_cost.calls USING btree (created_at)',
    'index CREATE UNIQUE INDEX calls_pkey ON ONLY ai_cost.calls USING btree (id, created_at)',
    'index CREATE UNIQUE INDEX calls_request_id_key ON ONLY ai_cost.calls USING btree (request_id, created_at)',
    'relation ai_cost.calls p',
    'relation ai_cost.calls_created_at_idx I',
    'relation ai_cost.calls_pkey I',
    'relation ai_cost.calls_request_id_key I',
  ]);
  t.deepEqual(added.filter((line) => line.startsWith('trigger ')).map((line) => /TRIGGER (\S+)/.exec(line)?.[1]).sort(), [
    'tg_calls__claim_request_id', 'tg_calls__end_request_id_move', 'tg_calls__move_request_id',
    'tg_calls__release_request_ids', 'tg_calls__truncate_request_ids',
  ]);
  // Grants, comments and column privileges come along (the acl and comment
  // are part of the relation line).
  const relation = (lines: string[]) => lines.find((line) => line?.startsWith('relation ai_cost.calls '))!.replace(/^relation ai_cost\.calls \w/, '');
  t.is(relation(after), relation(before.schema));

  // Ids continue after the copied ones.
  const [next] = await db.query<{ id: string }>(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens)
                                                  VALUES ('openai', 'gpt-4o-mini', 1, 1) RETURNING id`);
  t.true(BigInt(next!.id) > BigInt((before.rows.at(-1) as { id: string }).id));
  // Running it again changes nothing.
  const [again] = await db.query<{ calls_copied: string }>('SELECT * FROM ai_cost.partition_calls()');
  t.is(again?.calls_copied, '0');
});

test.serial('rollups stay exact: calls inserted, updated and deleted after the conversion reach them', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens)
                  SELECT now() - i * interval '1 day', 'openai', 'gpt-4o-mini', 'after-' || i, 2000, 20
                    FROM generate_series(1, 60) AS i`);
  await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens + 1 WHERE request_id LIKE 'after-%' AND request_id < 'after-3'`);
  await db.query(`DELETE FROM ai_cost.calls WHERE request_id IN ('after-5', 'after-50')`);
  await db.query('SELECT ai_cost.refresh()');
  const [raw] = await db.query(`SELECT count(*)::bigint AS calls, sum(cost_micros)::bigint AS cost, sum(input_tokens)::bigint AS input,
                                      sum(billed_micros)::bigint AS billed FROM ai_cost.calls`);
  const [rolled] = await db.query(`SELECT sum(calls)::bigint AS calls, sum(cost_micros)::bigint AS cost, sum(input_tokens)::bigint AS input,
                                         sum(billed_micros)::bigint AS billed FROM ai_cost.calls_hourly`);
  t.deepEqual(rolled, raw);
  t.true(Number((raw as { billed: string }).billed) > 0, 'the calls of t1 are billed');
});

test.serial('a known request_id is skipped, as ON CONFLICT (request_id) DO NOTHING did, whatever the statement says', async (t) => {
  const insert = (requestId: string, suffix = '') => db.query<{ id: string }>(
    `INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, output_tokens)
     VALUES ('openai', 'gpt-4o-mini', $1, 10, 10) ${suffix} RETURNING id`, [requestId]);
  t.is((await insert('dup-1')).length, 1);
  t.is((await insert('dup-1')).length, 0, 'a plain INSERT of a known id is skipped');
  t.is((await insert('dup-1', 'ON CONFLICT DO NOTHING')).length, 0);
  t.is((await insert('hist-1')).length, 0, 'ids copied by the conversion are known');
  const both = await db.query(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens, output_tokens)
                               VALUES ('openai', 'gpt-4o-mini', 'dup-2', 1, 1), ('openai', 'gpt-4o-mini', 'dup-2', 2, 2) RETURNING id`);
  t.is(both.length, 1, 'the same id twice in one statement is written once');
  const error = await t.throwsAsync(insert('dup-3', 'ON CONFLICT (request_id) DO NOTHING'));
  t.regex(error.message, /no unique or exclusion constraint matching the ON CONFLICT specification/);

  const [counts] = await db.query<{ rows: string; ids: string }>(
    `SELECT (SELECT count(*) FROM ai_cost.calls WHERE request_id IN ('dup-1', 'dup-2', 'hist-1')) AS rows,
            (SELECT count(*) FROM ai_cost_internal.request_ids WHERE request_id IN ('dup-1', 'dup-2', 'hist-1')) AS ids`);
  t.deepEqual(counts, { rows: '3', ids: '3' });
});

test.serial('two sessions inserting the same request_id at once write one row', async (t) => {
  const sessions = [new pg.Client({ connectionString: db.url }), new pg.Client({ connectionString: db.url })];
  await Promise.all(sessions.map((session) => session.connect()));
  try {
    const [first, second] = sessions as [pg.Client, pg.Client];
    await first.query('BEGIN');
    await first.query(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens) VALUES ('openai', 'gpt-4o-mini', 'race', 1)`);
    const waiting = second.query(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens) VALUES ('openai', 'gpt-4o-mini', 'race', 2) RETURNING id`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await first.query('COMMIT');
    t.is((await waiting).rowCount, 0);
  } finally {
    await Promise.all(sessions.map((session) => session.end()));
  }
  const rows = await db.query(`SELECT input_tokens FROM ai_cost.calls WHERE request_id = 'race'`);
  t.deepEqual(rows, [{ input_tokens: '1' }]);
});

test.serial('request_ids follow deletes and updates, including a move to another month\'s partition', async (t) => {
  await db.query(`DELETE FROM ai_cost.calls WHERE request_id = 'dup-1'`);
  t.deepEqual(await db.query(`SELECT * FROM ai_cost_internal.request_ids WHERE request_id = 'dup-1'`), []);
  t.is((await db.query(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens) VALUES ('openai', 'gpt-4o-mini', 'dup-1', 5) RETURNING id`)).length, 1,
    'a deleted call\'s request_id can be recorded again');

  const error = await t.throwsAsync(db.query(`UPDATE ai_cost.calls SET request_id = 'dup-2' WHERE request_id = 'dup-1'`));
  t.regex(error.message, /duplicate key value violates unique constraint "calls_request_id_key"/);

  const [moved] = await db.query<{ partition: string }>(
    `UPDATE ai_cost.calls SET created_at = created_at - interval '62 days' WHERE request_id = 'dup-1' RETURNING tableoid::regclass::text AS partition`);
  const [claim] = await db.query<{ same: boolean }>(
    `SELECT r.created_at = c.created_at AS same FROM ai_cost_internal.request_ids r JOIN ai_cost.calls c USING (request_id) WHERE request_id = 'dup-1'`);
  t.true(claim?.same, 'the claim follows the call\'s created_at');
  t.not(moved?.partition, undefined);
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost.calls WHERE request_id = 'dup-1'`), [{ n: 1 }]);
  t.is((await db.query(`INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens) VALUES ('openai', 'gpt-4o-mini', 'dup-1', 5) RETURNING id`)).length, 0,
    'after a move the id is still known');
});

for (const path of ['insert_calls', 'statement'] as const) {
  test.serial(`the recorder's batch insert (${path}) works on the partitioned table and stays idempotent`, async (t) => {
    const batch = [call(`${path}-1`), call(`${path}-2`), call(`${path}-3`, new Date(Date.now() - 45 * 86_400_000))];
    t.is(await insertCalls(db.pool, batch, path), 3);
    t.is(await insertCalls(db.pool, batch, path), 0, 'a retried batch writes nothing');
    t.is(await insertCalls(db.pool, [call(`${path}-1`), call(`${path}-4`)], path), 1);
    const [priced] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ai_cost.calls WHERE request_id LIKE '${path}-%' AND cost_micros > 0 AND price_id IS NOT NULL`);
    t.is(priced!.n, 4);
  });
}

test.serial('maintain_partitions adds the months ahead and moves stray rows out of the default partition', async (t) => {
  // A month of the window without its partition (taken away by hand here;
  // in life, maintenance that did not run for months): its calls land in
  // the default partition.
  const [lastMonth] = await db.query<{ name: string; at: Date }>(
    `SELECT 'calls_' || to_char(m, 'YYYY_MM') AS name, m AT TIME ZONE 'UTC' + interval '1 day' AS at
       FROM (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month' AS m) AS last_month`);
  await db.query(`ALTER TABLE ai_cost.calls DETACH PARTITION ai_cost.${lastMonth!.name};
                  ALTER TABLE ai_cost.${lastMonth!.name} RENAME TO set_aside`);
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens)
                  VALUES ($1, 'openai', 'gpt-4o-mini', 'stray', 10, 10)`, [lastMonth!.at]);
  const [stray] = await db.query<{ partition: string }>(`SELECT tableoid::regclass::text AS partition FROM ai_cost.calls WHERE request_id = 'stray'`);
  t.is(stray?.partition, 'ai_cost.calls_default');
  await db.query('UPDATE ai_cost.partition_settings SET months_ahead = 6');
  const liveBefore = await db.query('SELECT sum(calls)::bigint AS calls, sum(cost_micros)::bigint AS cost FROM ai_cost.calls_hourly_live');

  const actions = await db.query<{ action: string; partition_name: string; detail: string | null }>('SELECT * FROM ai_cost.maintain_partitions()');
  const movedTo = actions.find((a) => a.detail?.includes('1 calls moved'));
  t.truthy(movedTo, JSON.stringify(actions));
  const [placed] = await db.query<{ partition: string }>(`SELECT tableoid::regclass::text AS partition FROM ai_cost.calls WHERE request_id = 'stray'`);
  t.is(placed?.partition, movedTo?.partition_name);
  t.is(placed?.partition, `ai_cost.${lastMonth!.name}`);
  await db.query('DROP TABLE ai_cost.set_aside');
  t.deepEqual(await db.query('SELECT sum(calls)::bigint AS calls, sum(cost_micros)::bigint AS cost FROM ai_cost.calls_hourly_live'), liveBefore,
    'moving rows between partitions is no change for the rollups');

  const [ahead] = await db.query<{ months: number }>(
    `SELECT count(*)::int AS months FROM ai_cost.call_partitions
      WHERE range_start > now() AND range_start <= now() + interval '6 months 1 day' AND range_start < now() + interval '2 years'`);
  t.is(ahead?.months, 6);
  t.deepEqual(await db.query('SELECT * FROM ai_cost.maintain_partitions()'), [], 'a second run has nothing to do');
  t.deepEqual(await db.query('SELECT count(*)::int AS n FROM ai_cost.calls_default'), [{ n: 0 }]);
});

test.serial('migrate down --all uninstalls a partitioned ledger, partitions and all', async (t) => {
  await migrate(db.url, { direction: 'down', count: Infinity });
  const [left] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class
     WHERE relnamespace::regnamespace::text IN ('ai_cost', 'ai_cost_internal') OR relname LIKE 'calls_20%'`);
  t.is(left!.n, 0);
});
