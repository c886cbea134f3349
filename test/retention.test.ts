import test from 'ava';
import pg from 'pg';
import { useTestDatabase, type TestDatabase } from './support/database.js';

// Partitioning and retention under load: writers keep inserting calls across
// the last months (retries included) while ai_cost.calls is converted and
// old partitions are dropped. Afterwards the rollups must hold exactly what
// the writers were told was written, for the dropped months too, while the
// raw calls of those months are gone and every other raw call is still there.
const db = useTestDatabase(test);

const DAY = 86_400_000;
/** The first instant of the UTC month `offset` months from the current one. */
const monthStart = (offset: number) => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
};
const monthKey = (at: Date) => at.toISOString().slice(0, 7);

interface Written { calls: number; cost: bigint }

/**
 * A writer: batches of 20 calls at random instants of the last ~5 months,
 * each batch sent twice (a retry after a lost acknowledgement), counting per
 * UTC month the calls and cost the database returned for the first send.
 */
async function writer(url: string, name: string, stop: { now: boolean }, written: Map<string, Written>): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let batches = 0;
  try {
    while (!stop.now) {
      const instants = Array.from({ length: 20 }, () => new Date(Date.now() - Math.random() * 150 * DAY));
      const ids = instants.map((_, i) => `${name}-${batches}-${i}`);
      const insert = () => client.query<{ created_at: Date; cost_micros: string | null }>(
        `INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens, total_ms)
         SELECT at, 'openai', 'gpt-4o-mini', id, 1000 + n, 100, 300
           FROM unnest($1::timestamptz[], $2::text[]) WITH ORDINALITY AS c(at, id, n)
         ON CONFLICT DO NOTHING
         RETURNING created_at, cost_micros`, [instants, ids]);
      const first = await insert();
      for (const row of first.rows) {
        const entry = written.get(monthKey(row.created_at)) ?? { calls: 0, cost: 0n };
        entry.calls += 1;
        entry.cost += BigInt(row.cost_micros ?? 0);
        written.set(monthKey(row.created_at), entry);
      }
      const retry = await insert();
      if (first.rowCount !== 20 || retry.rowCount !== 0) {
        throw new Error(`batch ${batches} of ${name}: ${first.rowCount} written, ${retry.rowCount} written again`);
      }
      batches += 1;
    }
  } finally {
    await client.end();
  }
  return batches;
}

/** Calls and cost per UTC month, from a query returning (month text, calls, cost). */
async function perMonth(database: TestDatabase, query: string): Promise<Map<string, Written>> {
  const rows = await database.query<{ month: string; calls: string; cost: string }>(query);
  return sorted(new Map(rows.map((row) => [row.month, { calls: Number(row.calls), cost: BigInt(row.cost) }])));
}
const sorted = (months: Map<string, Written>) => new Map([...months].sort(([a], [b]) => a.localeCompare(b)));
const ROLLUP_BY_MONTH = `SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM') AS month, sum(calls) AS calls, sum(cost_micros) AS cost
                           FROM ai_cost.calls_hourly GROUP BY 1 HAVING sum(calls) <> 0`;
const RAW_BY_MONTH = `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, count(*) AS calls, coalesce(sum(cost_micros), 0) AS cost
                        FROM ai_cost.calls GROUP BY 1`;

test.serial('converting and dropping old months under concurrent inserts loses no rollup data', async (t) => {
  const written = new Map<string, Written>();
  const stop = { now: false };
  const writers = ['w1', 'w2', 'w3'].map((name) => writer(db.url, name, stop, written));
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  await pause(500);
  const [converted] = await db.query<{ calls_copied: string }>('SELECT * FROM ai_cost.partition_calls()');
  t.true(Number(converted?.calls_copied) > 0, 'writers had written before the conversion');
  await pause(500);
  await db.query('SELECT ai_cost.refresh()');
  await db.query('UPDATE ai_cost.partition_settings SET retain_months = 2');
  // Retention while writers still write into the months it drops: a call
  // that lands after its partition went falls into the default partition,
  // and the next run deletes it there (no partition is made for it).
  const duringLoad = await db.query<{ action: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  await pause(300);
  stop.now = true;
  const batches = await Promise.all(writers);
  t.true(batches.every((n) => n > 3), `each writer wrote several batches: ${batches.join(', ')}`);
  t.true(duringLoad.length > 0);

  // Changes not yet in the rollups hold their partition back.
  const waiting = await db.query<{ action: string; partition_name: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.true(waiting.length > 0 && waiting.every((row) => row.action === 'waiting' || row.action === 'created'), JSON.stringify(waiting));
  const [pending] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ai_cost_internal.pending_changes WHERE created_at < $1`, [monthStart(-2)]);
  t.not(pending?.n, '0');

  await db.query('SELECT ai_cost.refresh()');
  const dropped = await db.query<{ action: string }>('SELECT * FROM ai_cost.maintain_partitions()');
  t.true(dropped.length > 0 && dropped.every((row) => ['dropped', 'deleted', 'created'].includes(row.action)), JSON.stringify(dropped));
  t.deepEqual(await db.query('SELECT * FROM ai_cost.maintain_partitions()'), [], 'nothing left to do');

  // The rollups hold every month the writers wrote, dropped ones included.
  const rollup = await perMonth(db, ROLLUP_BY_MONTH);
  t.deepEqual(rollup, sorted(written));
  const cutoff = monthStart(-2);
  const droppedMonths = [...written.keys()].filter((month) => month < monthKey(cutoff));
  t.true(droppedMonths.length >= 2, `months dropped: ${droppedMonths.join(', ')}`);

  // Raw calls: the dropped months are gone, the kept ones complete.
  const raw = await perMonth(db, RAW_BY_MONTH);
  t.deepEqual(raw, sorted(new Map([...written].filter(([month]) => month >= monthKey(cutoff)))));
  const [partitions] = await db.query<{ oldest: Date; past: string }>(
    `SELECT min(range_start) AS oldest, count(*) FILTER (WHERE retention = 'past retention') AS past FROM ai_cost.call_partitions`);
  t.is(partitions?.oldest.getTime(), cutoff.getTime());
  t.is(partitions?.past, '0');

  // Request ids of dropped months are forgotten; the others still skip retries.
  const [ids] = await db.query<{ old: string; kept: string; calls: string }>(
    `SELECT count(*) FILTER (WHERE created_at < $1) AS old, count(*) FILTER (WHERE created_at >= $1) AS kept,
            (SELECT count(*) FROM ai_cost.calls WHERE request_id IS NOT NULL) AS calls
       FROM ai_cost_internal.request_ids`, [cutoff]);
  t.is(ids?.old, '0');
  t.is(ids?.kept, ids?.calls);

  // Reports over the dropped months still answer from the rollups.
  const [spend] = await db.query<{ cost: string }>(
    `SELECT sum(cost_micros) AS cost FROM ai_cost.spend_by_day WHERE day < $1::date`, [cutoff.toISOString().slice(0, 10)]);
  const droppedCost = droppedMonths.reduce((sum, month) => sum + written.get(month)!.cost, 0n);
  t.is(BigInt(spend?.cost ?? 0), droppedCost);
});

test.serial('retention = detach leaves the old month as a table of its own; refresh runs the maintenance once a day', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, request_id, input_tokens, output_tokens)
                  SELECT $1::timestamptz + i * interval '1 hour', 'openai', 'gpt-4o-mini', 'detach-' || i, 100, 10
                    FROM generate_series(0, 9) AS i`, [monthStart(-2)]);
  await db.query('SELECT ai_cost.refresh()');
  await db.query(`UPDATE ai_cost.partition_settings SET retain_months = 1, retention = 'detach'`);
  // Maintenance last ran today: the refresh leaves it alone.
  await db.query('SELECT ai_cost.refresh()');
  t.is((await db.query(`SELECT FROM ai_cost.calls WHERE request_id LIKE 'detach-%'`)).length, 10);

  // A day later, the refresh runs it.
  await db.query(`UPDATE ai_cost_internal.partition_state SET maintained_at = now() - interval '25 hours', attempted_at = NULL`);
  await db.query('SELECT ai_cost.refresh()');
  const name = `calls_${monthKey(monthStart(-2)).replace('-', '_')}`;
  t.is((await db.query(`SELECT FROM ai_cost.calls WHERE request_id LIKE 'detach-%'`)).length, 0);
  const [detached] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ai_cost.${name} WHERE request_id LIKE 'detach-%'`);
  t.is(detached?.n, '10', 'the detached table keeps its rows');
  await db.query('SELECT ai_cost_internal.grant_roles()');
  const [readable] = await db.query<{ reader: boolean }>(
    `SELECT has_table_privilege('ai_cost_reader', 'ai_cost.${name}', 'SELECT') AS reader`);
  t.false(readable!.reader, 'BI readers may not read the raw calls of a detached month, content included');
  const [state] = await db.query<{ fresh: boolean; last_error: string | null }>(
    `SELECT maintained_at > now() - interval '1 minute' AS fresh, last_error FROM ai_cost_internal.partition_state`);
  t.deepEqual(state, { fresh: true, last_error: null });
  const [rollup] = await db.query<{ calls: string }>(
    `SELECT sum(calls) AS calls FROM ai_cost.calls_hourly WHERE hour >= $1 AND hour < $2`, [monthStart(-2), monthStart(-1)]);
  t.not(rollup?.calls, undefined);
  t.true(Number(rollup?.calls) >= 10, 'the rollups still count the detached month');
});
