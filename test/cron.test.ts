import test from 'ava';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import { runCli } from './support/cli.js';
import { serverHasPgCron } from './support/database.js';
import { findSystemPostgres, startSystemPostgres } from './support/system-postgres.js';

// pg_cron can only be created in the database named by cron.database_name,
// which is `postgres` on a test server. So this test starts a server of its
// own (the shared one is busy with other test files creating and dropping
// databases, and there pg_cron's scheduler was seen to start no job for
// minutes), installs pg-ai-cost in its `postgres` database, watches the job
// run, and uninstalls it.
const JOBS = ['ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history'];

const TITLE = 'migrate up schedules the refresh with pg_cron, the job runs, and migrate down removes the jobs';
const cronTest = serverHasPgCron ? test.serial : test.serial.skip;

cronTest(serverHasPgCron ? TITLE : `${TITLE} (skipped: this server does not preload pg_cron; the system PostgreSQL 15 with postgresql-15-cron does)`, async (t) => {
  const server = await startSystemPostgres(findSystemPostgres()!);
  t.teardown(() => server.stop());
  const url = server.url('postgres');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows: [before] } = await client.query("SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pg_cron'");
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_cron');
    const result = await migrate(url);
    const scheduledAt = Date.now();
    t.true(result.pgCron);
    const jobs = await client.query('SELECT jobname, schedule, command FROM cron.job WHERE database = current_database() AND jobname = ANY($1) ORDER BY jobname', [JOBS]);
    t.deepEqual(jobs.rows.map((job) => [job.jobname, job.schedule]), [
      ['ai_cost_refresh', '* * * * *'],
      ['ai_cost_refresh_views', '*/5 * * * *'],
      ['ai_cost_trim_job_history', '17 3 * * *'],
    ]);
    t.is(jobs.rows[0].command, 'SELECT ai_cost.refresh(views => false)');

    // pg_cron 1.4 starts jobs on whole minutes only, and a job added just
    // before a minute begins may first run at the next one: wait until the
    // second minute boundary after scheduling, plus time for a slow machine.
    await client.query('INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ($1, $2, 10)', ['openai', 'gpt-4o-mini']);
    const deadline = (Math.floor(scheduledAt / 60_000) + 2) * 60_000 + 25_000;
    t.timeout(deadline - Date.now() + 30_000, 'waiting for pg_cron to run ai_cost_refresh');
    const run = await poll(deadline, async () => {
      const { rows } = await client.query(`
        SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'ai_cost_refresh' AND j.database = current_database() AND d.status IN ('succeeded', 'failed')
         ORDER BY d.runid LIMIT 1`);
      return rows[0] as { status: string; return_message: string } | undefined;
    });
    if (!run) {
      const seen = await client.query('SELECT j.jobname, d.status, d.return_message FROM cron.job j LEFT JOIN cron.job_run_details d USING (jobid)');
      t.log(seen.rows);
      const log = await client.query("SELECT pg_read_file('server.log') AS text").catch(() => ({ rows: [{ text: '' }] }));
      t.log(String(log.rows[0].text).split('\n').filter((line) => /cron/i.test(line)).slice(-15).join('\n'));
    }
    t.is(run?.status, 'succeeded', run?.return_message
      ?? `pg_cron did not finish a run of ai_cost_refresh within ${Math.round((deadline - scheduledAt) / 1000)} s of scheduling it (two minute boundaries); see the pg_cron lines logged above`);
    // Folded into the rollup table itself (not only visible through the live
    // view). At a 5-minute mark the views job may hold the rollup lock, so
    // the call can land a moment after the rollup job's run ends.
    const folded = await poll(deadline + 10_000, async () => {
      const { rows: [row] } = await client.query("SELECT coalesce(sum(calls), 0)::int AS n FROM ai_cost.calls_hourly WHERE model = 'gpt-4o-mini'");
      return row.n > 0 ? row.n : undefined;
    });
    t.is(folded, 1, 'the scheduled refresh folded the new call into ai_cost.calls_hourly');

    // A run that failed before it started (its login refused, say) has a
    // status and a message but no end time: doctor names the failure.
    await client.query(`SELECT cron.alter_job(jobid, schedule => '0 0 1 1 *') FROM cron.job
                         WHERE jobname = 'ai_cost_refresh' AND database = current_database()`);
    await client.query(`INSERT INTO cron.job_run_details (jobid, database, username, command, status, return_message)
      SELECT jobid, database, username, command, 'failed', 'connection failed' FROM cron.job
       WHERE jobname = 'ai_cost_refresh' AND database = current_database()`);
    const doctor = await runCli(['doctor', '--database-url', url]);
    t.regex(doctor.stdout, /^warn +scheduling: pg_cron runs ai_cost\.refresh\(\) \(0 0 1 1 \*\); last run failed: connection failed$/m);
  } finally {
    await migrate(url, { direction: 'down', count: Infinity });
    const left = await client.query('SELECT jobname FROM cron.job WHERE jobname = ANY($1)', [JOBS]).catch(() => ({ rows: [] }));
    t.deepEqual(left.rows, [], 'migrate down unscheduled the jobs');
    const schema = await client.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'ai_cost'");
    t.is(schema.rows[0].n, 0);
    if (before.n === 0) await client.query('DROP EXTENSION IF EXISTS pg_cron');
    await client.end();
  }
});

/** Calls `check` every second until it returns a value or `deadline` (epoch ms) passes. */
async function poll<T>(deadline: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
  for (;;) {
    const value = await check();
    if (value !== undefined || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
