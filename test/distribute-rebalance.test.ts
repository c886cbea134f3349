import test, { type ExecutionContext } from 'ava';
import { runCli } from './support/cli.js';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';
import { costs, populate, reports, workerOf } from './support/distributed-ledger.js';

// Growing the cluster of a distributed ledger: a third worker, `ai-cost
// distribute` again (the new node's price lookup and book), and a rebalance
// that moves shards of the calls onto it, for a ledger and for one
// partitioned by month. A cluster of its own, since the new worker joins
// every database of the cluster.
const citus = useCitusCluster(test);

testOnCitus(test, 'a third worker and a rebalance keep every cost, rollup and report, of a plain and of a partitioned ledger, and calls routed there are priced', async (t) => {
  const ledgers = [];
  for (const partitioned of [false, true]) {
    const db = await citus.database(t, { migrated: true });
    await populate(db);
    if (partitioned) await db.query('SELECT * FROM ai_cost.partition_calls()');
    const first = await runCli(['distribute', '--database-url', db.url]);
    t.is(first.code, 0, first.stderr);
    await db.query('SELECT * FROM ai_cost.refresh()');
    ledgers.push({ db, partitioned, before: { reports: await reports(db), costs: await costs(db) } });
  }

  const { port } = await citus.cluster.addWorker();
  for (const { db, partitioned, before } of ledgers) await grownLedgerKeepsItsFigures(t, db, port, partitioned, before);
});

/** What a ledger distributed before the cluster grew is after `ai-cost distribute` again and a rebalance onto the new worker. */
async function grownLedgerKeepsItsFigures(t: ExecutionContext, db: CitusDatabase, port: number, partitioned: boolean,
                                           before: { reports: Record<string, string[]>; costs: string[] }): Promise<void> {
  const unready = await runCli(['doctor', '--database-url', db.url]);
  t.regex(unready.stdout, new RegExp(`^FAIL +distribution: worker\\(s\\) localhost:${port} have no price lookup of their own .*run \`ai-cost distribute\` again$`, 'm'));
  const again = await runCli(['distribute', '--database-url', db.url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^workers: 3 worker\(s\) have the node-local price lookup and book$/m);
  const ready = await runCli(['doctor', '--database-url', db.url]);
  t.regex(ready.stdout, /^ok +distribution: ai_cost\.calls is distributed by tenant_id; each of the 3 worker\(s\) has its price lookup and book$/m);
  // block_writes: writes wait while a shard moves, which takes a second here
  // against fifteen for the default logical replication.
  await db.query(`SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')`);
  await db.query('SELECT citus_rebalance_wait()');
  const [moved] = await db.query<{ shards: string }>(`
    SELECT count(*) AS shards FROM citus_shards WHERE table_name = 'ai_cost.calls'::regclass AND nodeport = $1`, [port]);
  t.true(Number(moved!.shards) > 0, 'the new worker holds shards of the calls');

  t.deepEqual(await costs(db), before.costs);
  t.deepEqual(await reports(db), before.reports);

  // A call of each tenant on the new worker, priced there by its own book.
  const candidates = Array.from({ length: 61 }, (_, i) => `moved-${i}`);
  const placed = [...(await workerOf(db, candidates))].filter(([, node]) => node === port).slice(0, 3).map(([tenant]) => ({ tenant }));
  t.is(placed.length, 3);
  for (const { tenant } of placed) {
    const [call] = await db.query<{ cost: string; price_id: string | null }>(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost, price_id::text`, [tenant]);
    t.is(call!.cost, '3500', `a call of ${tenant}: 1,000 x $2.50 + 100 x $10 per million tokens`);
  }
  const [{ price_id: priceId }] = await db.query<{ price_id: string }>(`
    INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok, valid_from)
    VALUES ('openai', 'gpt-4o', 3, 12, now() - interval '1 second') RETURNING id::text AS price_id`) as [{ price_id: string }];
  const [after] = await db.query<{ cost: string; price_id: string }>(`
    INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost, price_id::text`, [placed[0]!.tenant]);
  t.deepEqual(after, { cost: '4200', price_id: priceId }, 'a price change reaches the new worker');
  if (partitioned) {
    // Its request ids moved with its calls: a retry on the new worker is skipped.
    const retry = `INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens, request_id)
                   VALUES ('openai', 'gpt-4o', $1, 1000, 100, 'moved-request') ON CONFLICT DO NOTHING`;
    await db.query(retry, [placed[0]!.tenant]);
    await db.query(retry, [placed[0]!.tenant]);
    const [recorded] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.calls WHERE request_id = 'moved-request'`);
    t.is(recorded!.n, '1');
  }
  await db.query('SELECT * FROM ai_cost.refresh()');
  const [total] = await db.query<{ rolled: string; raw: string }>(`
    SELECT (SELECT sum(calls) FROM ai_cost.calls_hourly)::text AS rolled, (SELECT count(*) FROM ai_cost.calls)::text AS raw`);
  t.is(total!.rolled, total!.raw);
}
