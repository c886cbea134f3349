import { randomBytes } from 'node:crypto';
import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins } from './support/logins.js';

// One row must never stop the reports. A writer cannot record a cost or a
// count past the per-call ceilings (sql/040_calls.sql), and a row that gets
// past them anyway (a constraint dropped by the owner, a row older than the
// constraint, a rollup damaged by hand) is set aside by ai_cost.refresh()
// with its reason, while every other change is folded. The tests share one
// database and run in order.

const WRITER = `bad_rows_w_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'bad-rows-pw';
const MAX_BIGINT = '9223372036854775807';

// 'mini' costs 1 micro-dollar per input token and 2 per output token; 'max' ten times that.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`CREATE ROLE ${WRITER} LOGIN PASSWORD '${PASSWORD}'; GRANT ai_cost_writer TO ${WRITER}`);
    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                    VALUES ('test', 'mini', '2020-01-01', 1, 2), ('test', 'max', '2020-01-01', 10, 20)`);
  },
});

test.after.always(() => dropLogins(WRITER));

/** Runs one statement as the writer login; the error's message, or undefined when it succeeded. */
async function asWriter(statement: string): Promise<string | undefined> {
  const url = new URL(db.url);
  url.username = WRITER;
  url.password = PASSWORD;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(statement);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end();
  }
}

/** `hours` whole hours before the current UTC hour, plus `minutes`: times that do not depend on the time of day. */
const at = (hours: number, minutes = 0) => `date_trunc('hour', now()) - interval '${hours} hours' + interval '${minutes} minutes'`;

/** Good calls: three an hour over the last six hours, in a few groups. */
async function insertGoodCalls(label: string) {
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, conversation_id, input_tokens, output_tokens, total_ms)
    SELECT ${at(0)} - g * interval '2 hours' / 3 - interval '1 minute', 'test', CASE WHEN g % 2 = 0 THEN 'mini' ELSE 'max' END,
           'tenant-' || (g % 2), $1, 'conv-' || (g % 3), 100 * g, 10 * g, 50 * g
      FROM generate_series(1, 18) AS g`, [label]);
}

/** Every hourly group of the raw calls that no set-aside change concerns, beside the rollup's group. */
async function rollupMismatches(): Promise<unknown[]> {
  return db.query(`
    WITH raw AS (
      SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, tenant_id, feature, count(*) AS calls,
             coalesce(sum(cost_micros), 0) AS cost_micros, coalesce(sum(input_tokens), 0) AS input_tokens,
             coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(total_ms), 0) AS total_ms_sum
        FROM ai_cost.calls
       WHERE id NOT IN (SELECT call_id FROM ai_cost.set_aside_calls WHERE call_id IS NOT NULL)
       GROUP BY 1, 2, 3, 4, 5
    ), rolled AS (
      SELECT hour, provider, model, tenant_id, feature, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
             sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(total_ms_sum) AS total_ms_sum
        FROM ai_cost.calls_hourly
       GROUP BY 1, 2, 3, 4, 5
    )
    SELECT * FROM (SELECT * FROM raw EXCEPT SELECT * FROM rolled) a
    UNION ALL
    SELECT * FROM (SELECT * FROM rolled EXCEPT SELECT * FROM raw) b`);
}

async function setAside(): Promise<{ call_id: string | null; change: string; reason: string }[]> {
  return db.query('SELECT call_id, change, reason FROM ai_cost.set_aside_calls ORDER BY set_aside_at, call_id');
}

/** The reports a user reads: each must still answer. */
async function reportsWork(t: import('ava').ExecutionContext) {
  const [daily] = await db.query<{ calls: string }>('SELECT sum(calls) AS calls FROM ai_cost.spend_daily');
  t.truthy(daily?.calls);
  // Windows that start and end inside hours: their edges come from the raw
  // calls, the first one's from the hour of the set-aside call.
  for (const since of [at(8, 5), at(3, 5)]) {
    const [between] = await db.query<{ calls: string; cost: string }>(
      `SELECT sum(calls) AS calls, sum(cost_micros) AS cost FROM ai_cost.calls_between(${since}, ${at(0, -5)})`);
    t.truthy(between?.calls);
    t.true(BigInt(between!.cost) < 10n ** 10n);
  }
  const report = await runCli(['report', '--since', '1d', '--format', 'json', '--database-url', db.url]);
  t.is(report.code, 0, report.stderr);
}

test.serial('a writer cannot record a cost or a token count past the per-call ceilings', async (t) => {
  const forged = await asWriter(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, provided_cost_micros) VALUES ('openrouter', 'any', 1, ${MAX_BIGINT})`);
  t.regex(forged ?? 'accepted', /provided_cost_micros must be at most 1e10/);
  // 1e10 input tokens at 10 micro-dollars each: a computed cost of 1e11, past the ceiling.
  const computed = await asWriter(`INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('test', 'max', 10000000000)`);
  t.regex(computed ?? 'accepted', /cost_micros must be at most 1e10/);
  const tokens = await asWriter(`INSERT INTO ai_cost.calls (provider, model, output_tokens) VALUES ('test', 'unpriced', 10000000001)`);
  t.regex(tokens ?? 'accepted', /token counts must be at most 1e10/);
  // The ceilings themselves are allowed: 1e10 input tokens at 1 micro-dollar is exactly $10,000.
  t.is(await asWriter(`INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('test', 'mini', 10000000000)`), undefined);
  const [refreshed] = await db.query<{ refreshed: boolean }>('SELECT refreshed FROM ai_cost.refresh()');
  t.true(refreshed!.refreshed);
  await db.query('TRUNCATE ai_cost.calls');
});

test.serial('a row past the ceilings is set aside with its reason; the refresh folds every other change', async (t) => {
  // The owner can always get past a constraint: drop the cost ones, and set
  // the cost directly with the cost trigger off.
  await db.query(`
    DO $$
    DECLARE constraint_name name;
    BEGIN
      FOR constraint_name IN SELECT conname FROM pg_constraint
                              WHERE conrelid = 'ai_cost.calls'::regclass AND pg_get_constraintdef(oid) ~ 'cost_micros' LOOP
        EXECUTE format('ALTER TABLE ai_cost.calls DROP CONSTRAINT %I', constraint_name);
      END LOOP;
    END
    $$`);
  await insertGoodCalls('before');
  await db.query('ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call');
  const [bad] = await db.query<{ id: string }>(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, conversation_id, input_tokens, output_tokens, cost_micros)
    VALUES (${at(3, 10)}, 'test', 'mini', 'tenant-0', 'before', 'conv-0', 1, 1, ${MAX_BIGINT}) RETURNING id`);
  await db.query('ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__price_call');
  await insertGoodCalls('after');

  const [run] = await db.query<{ refreshed: boolean; changes_applied: string }>('SELECT * FROM ai_cost.refresh()');
  t.true(run!.refreshed);
  t.is(run!.changes_applied, '36');
  t.deepEqual(await setAside(), [{ call_id: bad!.id, change: 'added', reason: `cost_micros ${MAX_BIGINT} is past the per-call ceiling of 10000000000` }]);
  t.deepEqual(await rollupMismatches(), []);
  const [status] = await db.query<{ set_aside_changes: string; pending_changes: string }>('SELECT * FROM ai_cost.refresh_status');
  t.is(status!.set_aside_changes, '1');
  t.is(status!.pending_changes, '0');

  // Not retried every minute: the next refreshes succeed and leave it where it is.
  await insertGoodCalls('later');
  const [next] = await db.query<{ changes_applied: string }>('SELECT * FROM ai_cost.refresh()');
  t.is(next!.changes_applied, '18');
  t.is((await setAside()).length, 1);
  t.deepEqual(await rollupMismatches(), []);
  await reportsWork(t);

  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.regex(doctor.stdout, new RegExp(`warn  set aside: 1 call change\\(s\\) could not be folded.*call ${bad!.id}: cost_micros ${MAX_BIGINT} is past the per-call ceiling`));
});

test.serial('a change that fails while folding is found and set aside; after a fix it is retried', async (t) => {
  // A rollup group one call away from overflowing (damaged by hand): the
  // next call of that group cannot be added to it, whatever its values.
  const damaged = `hour = ${at(5)} AND model = 'mini' AND tenant_id = 'tenant-0' AND feature = 'before'`;
  const [group] = await db.query<{ cost_micros: string }>(`SELECT cost_micros FROM ai_cost.calls_hourly WHERE ${damaged}`);
  await db.query(`UPDATE ai_cost.calls_hourly SET cost_micros = ${MAX_BIGINT} - 100 WHERE ${damaged}`);
  const [victim] = await db.query<{ id: string }>(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, input_tokens, output_tokens)
    VALUES (${at(5, 30)}, 'test', 'mini', 'tenant-0', 'before', 1000, 10) RETURNING id`);
  await insertGoodCalls('fallback');
  // While the group is damaged the rollups are folded alone: a view that sums
  // its hour (one whose window starts the day before, as from 00:00 to 05:00
  // UTC) would rightly overflow too.
  const [run] = await db.query<{ changes_applied: string }>('SELECT * FROM ai_cost.refresh(views => false)');
  t.is(run!.changes_applied, '18');
  const reasons = await setAside();
  t.is(reasons.length, 2);
  t.deepEqual(reasons[1], { call_id: victim!.id, change: 'added', reason: 'bigint out of range' });
  // Its later changes wait beside it, so they fold together.
  await db.query(`UPDATE ai_cost.calls SET feature = 'moved' WHERE id = $1`, [victim!.id]);
  await db.query('SELECT ai_cost.refresh(views => false)');
  t.is((await setAside()).filter((change) => change.call_id === victim!.id).length, 3);

  // Repaired, then retried: the change of the damaged hour cancels out, the current version folds.
  await db.query(`UPDATE ai_cost.calls_hourly SET cost_micros = $1 WHERE ${damaged}`, [group!.cost_micros]);
  const [moved] = await db.query<{ moved: string }>('SELECT ai_cost.retry_set_aside_changes($1) AS moved', [victim!.id]);
  t.is(moved!.moved, '1');
  await db.query('SELECT ai_cost.refresh()');
  t.is((await setAside()).length, 1);
  const [hour] = await db.query<{ calls: string }>(`SELECT sum(calls) AS calls FROM ai_cost.calls_hourly WHERE feature = 'moved'`);
  t.is(hour!.calls, '1');
  t.deepEqual(await rollupMismatches(), []);
  await reportsWork(t);
});

test.serial('a bad call deleted by its owner leaves the set-aside list once retried', async (t) => {
  await db.query(`DELETE FROM ai_cost.calls WHERE cost_micros = ${MAX_BIGINT}`);
  await db.query('SELECT ai_cost.refresh()');
  // The removal waits beside the addition it undoes; retried together they cancel out.
  t.deepEqual((await setAside()).map((change) => change.change).sort(), ['added', 'removed']);
  const [moved] = await db.query<{ moved: string }>('SELECT ai_cost.retry_set_aside_changes() AS moved');
  t.is(moved!.moved, '0');
  t.deepEqual(await setAside(), []);
  t.deepEqual(await rollupMismatches(), []);
  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.regex(doctor.stdout, /ok {4}set aside: every call change was folded/);
});
