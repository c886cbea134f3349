import test from 'ava';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';

// The harness itself: a coordinator and two workers, a database on every
// node, tables spread over the workers, and a third worker that a rebalance
// moves shards onto.
const citus = useCitusCluster(test);

/** Per worker port: the rows it holds in the local shards of `table` (read on the worker itself). */
async function rowsPerWorker(db: CitusDatabase, table: string): Promise<Map<number, number>> {
  const rows = await db.query<{ nodeport: number; success: boolean; result: string }>(
    `SELECT nodeport, success, result FROM run_command_on_workers($$
       SELECT coalesce(sum((xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint), 0)
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND c.relname ~ '^${table}_[0-9]+$'
     $$)`,
  );
  for (const row of rows) if (!row.success) throw new Error(`worker ${row.nodeport}: ${row.result}`);
  return new Map(rows.map((row) => [row.nodeport, Number(row.result)]));
}

testOnCitus(test, 'a distributed table spreads over both workers, a reference table is on each, and a rebalance fills a third worker', async (t) => {
  const db = await citus.database(t);
  const workers = citus.cluster.workerPorts();
  t.is(workers.length, 2);

  await db.query('CREATE TABLE events (tenant_id text NOT NULL, id bigint NOT NULL, amount bigint NOT NULL, PRIMARY KEY (tenant_id, id))');
  await db.query("SELECT create_distributed_table('events', 'tenant_id', shard_count => 8)");
  await db.query('CREATE TABLE models (name text PRIMARY KEY)');
  await db.query("SELECT create_reference_table('models')");
  await db.query("INSERT INTO events SELECT 'tenant-' || i, i, i * 10 FROM generate_series(1, 200) AS i");
  await db.query("INSERT INTO models VALUES ('gpt-4o-mini'), ('claude-haiku-4-5'), ('gemini-2.5-flash')");

  const events = await rowsPerWorker(db, 'events');
  t.deepEqual([...events.keys()].sort(), [...workers].sort());
  for (const port of workers) t.true(events.get(port)! > 0, `worker ${port} holds events`);
  t.is([...events.values()].reduce((a, b) => a + b, 0), 200);
  const models = await rowsPerWorker(db, 'models');
  for (const port of workers) t.is(models.get(port), 3, `worker ${port} holds the reference table`);

  const { port: third } = await citus.cluster.addWorker();
  t.deepEqual(await rowsPerWorker(db, 'events').then((held) => held.get(third)), 0);
  // The default transfer mode moves shards by logical replication (events has
  // a primary key, so it may): about 15 s here, against 1 s with
  // shard_transfer_mode => 'block_writes'. The default is what users run.
  await db.query('SELECT citus_rebalance_start()');
  await db.query('SELECT citus_rebalance_wait()');
  // A moved shard's old copy stays until Citus's deferred cleanup: drop it now.
  await db.query('CALL citus_cleanup_orphaned_resources()');

  const shards = await db.query<{ nodeport: number; shards: string }>(
    "SELECT nodeport, count(*) AS shards FROM citus_shards WHERE table_name = 'events'::regclass GROUP BY nodeport",
  );
  t.true(shards.some((row) => row.nodeport === third && Number(row.shards) > 0), 'the third worker holds shards of events');
  const after = await rowsPerWorker(db, 'events');
  t.true(after.get(third)! > 0, 'the third worker holds events');
  t.is([...after.values()].reduce((a, b) => a + b, 0), 200);
  t.is((await rowsPerWorker(db, 'models')).get(third), 3);
  const [{ total }] = await db.query<{ total: string }>('SELECT sum(amount) AS total FROM events') as [{ total: string }];
  t.is(total, String(10 * (200 * 201) / 2));
});
