import test from 'ava';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import { serverHasPgCron, serverUrl } from './support/database.js';

// pg_cron can only be created in the database named by cron.database_name,
// which is `postgres` on the test server. So this test installs pg-ai-cost
// there, watches the job run, and uninstalls it (and pg_cron, if it created
// it), leaving the server as it found it.
const JOBS = ['ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history'];

const TITLE = 'migrate up schedules the refresh with pg_cron, the job runs, and migrate down removes the jobs';
const cronTest = serverHasPgCron ? test.serial : test.serial.skip;

cronTest(serverHasPgCron ? TITLE : `${TITLE} (skipped: this server does not preload pg_cron; the system PostgreSQL 15 with postgresql-15-cron does)`, async (t) => {
  t.timeout(118_000);
  const url = serverUrl('postgres');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows: [before] } = await client.query("SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pg_cron'");
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_cron');
    const result = await migrate(url);
    t.true(result.pgCron);
    const jobs = await client.query('SELECT jobname, schedule FROM cron.job WHERE database = current_database() AND jobname = ANY($1) ORDER BY jobname', [JOBS]);
    t.deepEqual(jobs.rows, [
      { jobname: 'ai_cost_refresh', schedule: '* * * * *' },
      { jobname: 'ai_cost_refresh_views', schedule: '*/5 * * * *' },
      { jobname: 'ai_cost_trim_job_history', schedule: '17 3 * * *' },
    ]);

    // pg_cron 1.4 schedules in whole minutes: the first run comes within one.
    await client.query('INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ($1, $2, 10)', ['openai', 'gpt-4o-mini']);
    let run: { status: string; return_message: string } | undefined;
    for (let waited = 0; waited < 100 && !run; waited += 1) {
      const { rows } = await client.query(`
        SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid)
         WHERE j.jobname = 'ai_cost_refresh' AND j.database = current_database() AND d.status IN ('succeeded', 'failed')`);
      run = rows[0];
      if (!run) await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    if (!run) {
      const seen = await client.query("SELECT j.jobname, d.status, d.return_message FROM cron.job j LEFT JOIN cron.job_run_details d USING (jobid)");
      t.log(seen.rows);
      const log = await client.query("SELECT pg_read_file('server.log') AS text").catch(() => ({ rows: [{ text: '' }] }));
      t.log(String(log.rows[0].text).split('\n').filter((line) => /cron/i.test(line)).slice(-15).join('\n'));
    }
    t.is(run?.status, 'succeeded', run?.return_message ?? 'the job did not run within 100 s');
    // Folded into the rollup table itself (not only visible through the live view).
    const { rows: [folded] } = await client.query("SELECT coalesce(sum(calls), 0)::int AS n FROM ai_cost.calls_hourly WHERE model = 'gpt-4o-mini'");
    t.is(folded.n, 1, 'the scheduled refresh folded the new call into ai_cost.calls_hourly');
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
