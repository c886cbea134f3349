import test, { type ExecutionContext } from 'ava';
import { runCli } from './support/cli.js';
import { testOnCitus, useCitusCluster, type CitusDatabase } from './support/citus-cluster.js';
import { costs, populate, reports, workerOf } from './support/distributed-ledger.js';

// Growing the cluster of a distributed ledger: a third worker, `ai-cost
// distribute` again (the new node's price lookup and book), and a rebalance
// that moves shards of the calls onto it, for a ledger installed and
// distributed by a database owner that is no superuser and for one
// partitioned by month. A cluster of its own, since the new worker joins
// every database of the cluster.
const citus = useCitusCluster(test);

interface Ledger {
  db: CitusDatabase;
  /** The URL its owner runs the CLI with. */
  ownerUrl: string;
  /** A superuser owns it; else a database owner that is none. */
  bySuperuser: boolean;
  partitioned: boolean;
  before: { reports: Record<string, string[]>; costs: string[] };
}

testOnCitus(test, 'a third worker and a rebalance keep every cost, rollup and report, of a plain and of a partitioned ledger, and calls routed there are priced', async (t) => {
  const ledgers: Ledger[] = [];
  for (const partitioned of [true, false]) {
    // The partitioned ledger, first, makes the pg-ai-cost roles of the cluster.
    const bySuperuser = partitioned;
    const { db, ownerUrl } = bySuperuser ? await superusersLedger(t) : await plainOwnersLedger(t, ledgers[0]!.db);
    if (!bySuperuser) {
      const install = await runCli(['migrate', 'up', '--database-url', ownerUrl]);
      t.is(install.code, 0, install.stderr);
    }
    await populate(db);
    if (partitioned) await db.query('SELECT * FROM ai_cost.partition_calls()');
    const first = await runCli(['distribute', '--database-url', ownerUrl]);
    t.is(first.code, 0, first.stderr);
    await db.query('SELECT * FROM ai_cost.refresh()');
    ledgers.push({ db, ownerUrl, bySuperuser, partitioned, before: { reports: await reports(db), costs: await costs(db) } });
  }

  const { port } = await citus.cluster.addWorker();
  for (const ledger of ledgers) await grownLedgerKeepsItsFigures(t, ledger, port);
});

async function superusersLedger(t: ExecutionContext): Promise<{ db: CitusDatabase; ownerUrl: string }> {
  const db = await citus.database(t, { migrated: true });
  return { db, ownerUrl: db.url };
}

/** A database owned by a new login that is no superuser, and that login's URL of it; `other` drops the login after the database. */
async function plainOwnersLedger(t: ExecutionContext, other: CitusDatabase): Promise<{ db: CitusDatabase; ownerUrl: string }> {
  const owner = `o_${other.name.slice(2)}`;
  await other.query(`CREATE ROLE ${owner} LOGIN`);
  // Registered before the database, so it runs after the database is dropped (teardowns run last first).
  t.teardown(() => other.query(`DROP ROLE ${owner}`).then(() => undefined));
  const db = await citus.database(t);
  await db.query(`ALTER DATABASE ${db.name} OWNER TO ${owner}`);
  const url = new URL(db.url);
  url.username = owner;
  return { db, ownerUrl: url.toString() };
}

/** What a ledger distributed before the cluster grew is after `ai-cost distribute` again and a rebalance onto the new worker. */
async function grownLedgerKeepsItsFigures(t: ExecutionContext, { db, ownerUrl, bySuperuser, partitioned, before }: Ledger, port: number): Promise<void> {
  const unready = await runCli(['doctor', '--database-url', ownerUrl]);
  t.regex(unready.stdout, new RegExp(`^FAIL +distribution: worker\\(s\\) localhost:${port} have no price lookup of their own .*run \`ai-cost distribute\` again$`, 'm'));
  if (!bySuperuser) {
    // Citus lets only a superuser copy the price tables to the new node.
    const refused = await runCli(['distribute', '--database-url', ownerUrl]);
    t.is(refused.code, 1);
    t.is(refused.stderr, "ai-cost: a node added to the cluster has no copy of the reference tables yet, and Citus lets only a superuser copy them: "
      + "run SELECT replicate_reference_tables('block_writes') as a superuser, then this again\n");
    // The refused run wrote nothing on the new worker.
    const halfway = await runCli(['doctor', '--database-url', ownerUrl]);
    t.regex(halfway.stdout, new RegExp(`^FAIL +distribution: worker\\(s\\) localhost:${port} have no price lookup of their own`, 'm'));
    await db.query(`SELECT replicate_reference_tables('block_writes')`);
  }
  const again = await runCli(['distribute', '--database-url', ownerUrl]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /^workers: 3 worker\(s\) have the node-local price lookup and book$/m);
  const ready = await runCli(['doctor', '--database-url', ownerUrl]);
  t.regex(ready.stdout, /^ok +distribution: ai_cost\.calls is distributed by tenant_id; each of the 3 worker\(s\) has its price lookup and book$/m);
  // The partitioned ledger moves with block_writes: writes wait while a
  // shard moves, a second here. The other by the default, what users run:
  // logical replication, about fifteen.
  await db.query(partitioned ? `SELECT citus_rebalance_start(shard_transfer_mode => 'block_writes')` : 'SELECT citus_rebalance_start()');
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
  if (!bySuperuser) {
    // Its owner uninstalls it and installs and distributes it again, on the
    // grown cluster, whose new node Citus gave btree_gist as a superuser.
    for (const args of [['migrate', 'down', '--all', '--yes'], ['migrate', 'up'], ['distribute']]) {
      const result = await runCli([...args, '--database-url', ownerUrl]);
      t.is(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
    }
    const [call] = await db.query<{ cost: string }>(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
      VALUES ('openai', 'gpt-4o', $1, 1000, 100) RETURNING cost_micros::text AS cost`, [placed[0]!.tenant]);
    t.is(call!.cost, '3500', 'a call on the new worker is priced after the reinstall');
  }
}
