import pg from 'pg';
import { median, medianMs, timed, type Benchmark, type Measurement } from './support.js';

/**
 * What partitioning costs and buys:
 *  - inserts with request_id (the recorder's 1,000-row batches, and a bulk
 *    INSERT ... SELECT) into a plain and into a partitioned ai_cost.calls:
 *    the partitioned one also claims each request_id in
 *    ai_cost_internal.request_ids;
 *  - how long ai_cost.partition_calls() takes per million calls;
 *  - a BRIN index on created_at against the btree, on one month of calls in
 *    arrival order: size, a one-hour aggregate, and the newest 20 calls.
 */
const BATCH = 1000;

/** A 1,000-row batch as the recorder sends it: one jsonb parameter, ON CONFLICT DO NOTHING. */
const RECORDER_INSERT = `
  INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, request_id, input_tokens, output_tokens)
  SELECT now() - (n % 1000) * interval '1 second', 'openai', 'gpt-4o-mini', 'tenant-' || n % 50, $1 || '-' || n, 1000 + n % 500, 200
    FROM generate_series(1, ${BATCH}) AS n
  ON CONFLICT DO NOTHING`;
const BULK_INSERT = `
  INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, request_id, input_tokens, output_tokens)
  SELECT now() - (n % 100000) * interval '1 second', 'openai', 'gpt-4o-mini', 'tenant-' || n % 50, $1 || '-' || n, 1000 + n % 500, 200
    FROM generate_series(1, $2::int) AS n`;

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

const bench: Benchmark = {
  name: 'partition',
  async run({ database, scale }) {
    const results: Measurement[] = [];
    const add = (metric: string, value: number, unit: string) => results.push({ bench: 'partition', metric, value, unit });
    const plain = await connect(await database('partition_plain'));
    const split = await connect(await database('partition_split'));
    try {
      await split.query('SELECT ai_cost.partition_calls()');

      // Inserts: alternate the two tables so drift on a shared machine hits both.
      const batches = Math.max(5, Math.round(50 * scale));
      let run = 0;
      const batchMs = { plain: 0, split: 0 };
      for (let i = 0; i < batches; i += 1) {
        batchMs.plain += await timed(() => plain.query(RECORDER_INSERT, [`b${run}`]));
        batchMs.split += await timed(() => split.query(RECORDER_INSERT, [`b${run}`]));
        run += 1;
      }
      const batchRows = batches * BATCH;
      add('1,000-row batches: plain table', batchRows / (batchMs.plain / 1000), 'rows/s');
      add('1,000-row batches: partitioned', batchRows / (batchMs.split / 1000), 'rows/s');
      add('1,000-row batches: partitioned / plain time', batchMs.split / batchMs.plain, 'x');

      const bulkRows = Math.max(20_000, Math.round(200_000 * scale));
      const bulk = { plain: [] as number[], split: [] as number[] };
      for (let i = 0; i < 3; i += 1) {
        bulk.plain.push(await timed(() => plain.query(BULK_INSERT, [`k${i}`, bulkRows])));
        bulk.split.push(await timed(() => split.query(BULK_INSERT, [`k${i}`, bulkRows])));
      }
      add('bulk INSERT ... SELECT: plain table', bulkRows / (median(bulk.plain) / 1000), 'rows/s');
      add('bulk INSERT ... SELECT: partitioned', bulkRows / (median(bulk.split) / 1000), 'rows/s');
      add('bulk INSERT ... SELECT: partitioned / plain time', median(bulk.split) / median(bulk.plain), 'x');
      add('bulk INSERT ... SELECT: partitioned extra per row',
        ((median(bulk.split) - median(bulk.plain)) * 1000) / bulkRows, 'us/row');

      // Converting the plain table, which now holds batchRows + 3 * bulkRows calls.
      const [{ n: calls }] = (await plain.query<{ n: string }>('SELECT count(*) AS n FROM ai_cost.calls')).rows as [{ n: string }];
      const convertMs = await timed(() => plain.query('SELECT ai_cost.partition_calls()'));
      add('partition_calls(): calls converted', Number(calls), 'calls');
      add('partition_calls(): time per million calls', convertMs / (Number(calls) / 1e6), 'ms');

      // BRIN against btree on one month of calls in arrival order (a little
      // out of order, as concurrent writers deliver them).
      const monthRows = Math.max(100_000, Math.round(1_000_000 * scale));
      await split.query(`
        CREATE TABLE bench_month AS
        SELECT '2026-01-01'::timestamptz + (n + random() * 50) * (interval '31 days' / $1::int) AS created_at,
               'openai'::text AS provider, 'gpt-4o-mini'::text AS model, 1000 + n % 500 AS input_tokens, (n % 900)::bigint AS cost_micros
          FROM generate_series(1, $1::int) AS n`, [monthRows]);
      await split.query('VACUUM ANALYZE bench_month');
      const hour = `SELECT count(*), sum(cost_micros) FROM bench_month
                     WHERE created_at >= '2026-01-17 10:00+00' AND created_at < '2026-01-17 11:00+00'`;
      const newest = 'SELECT * FROM bench_month ORDER BY created_at DESC LIMIT 20';
      for (const kind of ['btree', 'brin'] as const) {
        await split.query('DROP INDEX IF EXISTS bench_month_created_at_idx');
        const buildMs = await timed(() => split.query(`CREATE INDEX bench_month_created_at_idx ON bench_month USING ${kind} (created_at)`));
        await split.query('ANALYZE bench_month');
        const [{ bytes }] = (await split.query<{ bytes: string }>(`SELECT pg_relation_size('bench_month_created_at_idx') AS bytes`)).rows as [{ bytes: string }];
        add(`${kind} on ${monthRows} calls: index size`, Number(bytes) / 1024, 'kB');
        add(`${kind} on ${monthRows} calls: build`, buildMs, 'ms');
        add(`${kind} on ${monthRows} calls: one-hour aggregate`, await medianMs(15, () => split.query(hour)), 'ms');
        add(`${kind} on ${monthRows} calls: newest 20`, await medianMs(15, () => split.query(newest)), 'ms');
      }
      add('table size of that month', Number((await split.query<{ b: string }>(`SELECT pg_relation_size('bench_month') AS b`)).rows[0]!.b) / 1024, 'kB');
    } finally {
      await plain.end();
      await split.end();
    }
    return results;
  },
};

export default bench;
