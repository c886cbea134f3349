import test from 'ava';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import { runCli } from './support/cli.js';
import { testOnCitus, useCitusCluster } from './support/citus-cluster.js';

// pg_cron on the coordinator of a distributed ledger: the refresh job that
// `migrate up` schedules keeps folding the calls the workers hold. pg_cron
// lives in one database of a server (cron.database_name), so this file's
// cluster names the ledger's database for it.
const DATABASE = 'ledger';
const citus = useCitusCluster(test, { cronDatabase: DATABASE });

testOnCitus(test, 'pg_cron on the coordinator refreshes a distributed ledger', async (t) => {
  const url = await citus.cluster.createDatabase(DATABASE);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Citus would create the extension on the workers too, which do not load pg_cron.
    await client.query('SET citus.enable_ddl_propagation TO off; CREATE EXTENSION IF NOT EXISTS pg_cron; RESET citus.enable_ddl_propagation');
    t.true((await migrate(url)).pgCron);
    const distributed = await runCli(['distribute', '--database-url', url]);
    t.is(distributed.code, 0, distributed.stderr);
    const scheduledAt = Date.now();
    await client.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
                        SELECT 'openai', 'gpt-4o-mini', 'tenant-' || i, 1000, 100 FROM generate_series(1, 20) AS i`);
    // pg_cron 1.4 starts jobs on whole minutes: by the second minute boundary
    // after scheduling, plus time for a slow machine (as test/cron.test.ts).
    const deadline = (Math.floor(scheduledAt / 60_000) + 2) * 60_000 + 25_000;
    t.timeout(deadline - Date.now() + 30_000, 'waiting for pg_cron to run ai_cost_refresh');
    let folded = 0;
    let runs: Array<{ status: string; return_message: string }> = [];
    while (Date.now() < deadline) {
      runs = (await client.query<{ status: string; return_message: string }>(`
        SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'ai_cost_refresh' AND d.start_time >= to_timestamp($1 / 1000.0) AND d.status IN ('succeeded', 'failed')`,
      [scheduledAt])).rows;
      folded = (await client.query<{ n: number }>(`SELECT coalesce(sum(calls), 0)::int AS n FROM ai_cost.calls_hourly`)).rows[0]!.n;
      if (folded === 20) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    t.deepEqual(runs.filter((run) => run.status === 'failed'), [], 'no scheduled refresh failed');
    t.is(folded, 20, 'the scheduled refresh folded the calls on the workers into the rollup');
  } finally {
    await client.end();
  }
});
