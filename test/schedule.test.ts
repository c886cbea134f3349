import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { createTestDatabase, serverHasPgCron, serverUrl, type TestDatabase } from './support/database.js';

// `ai-cost schedule` when pg_cron came after the install. On a test server
// pg_cron lives in database `postgres` (cron.database_name), so every test
// database is one where pg_cron is loaded but lives elsewhere: the jobs go
// there, with cron.schedule_in_database.

const databases: TestDatabase[] = [];
test.after.always(async () => {
  for (const db of databases) await db.drop();
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

const TITLE = 'pg_cron in another database: ai-cost schedule puts the jobs there, for this database, and again changes nothing';
const cronTest = serverHasPgCron ? test.serial : test.serial.skip;

cronTest(serverHasPgCron ? TITLE : `${TITLE} (skipped: this server does not preload pg_cron; the system PostgreSQL 15 with postgresql-15-cron does)`, async (t) => {
  const db = await database();
  const cron = new pg.Client({ connectionString: serverUrl('postgres') });
  await cron.connect();
  const { rows: [before] } = await cron.query("SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'pg_cron'");
  await cron.query('CREATE EXTENSION IF NOT EXISTS pg_cron');
  const jobsOf = async () => (await cron.query<{ jobname: string; database: string; schedule: string; command: string }>(
    'SELECT jobname, database, schedule, command FROM cron.job WHERE jobname LIKE $1 ORDER BY jobname', [`%_${db.name}`])).rows;
  t.teardown(async () => {
    await cron.query('SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE $1', [`%_${db.name}`]);
    if (before.n === 0) await cron.query('DROP EXTENSION IF EXISTS pg_cron');
    await cron.end();
  });

  const first = await runCli(['schedule', '--database-url', db.url]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, new RegExp(`scheduled with pg_cron in database postgres: ai_cost_refresh_${db.name}, ai_cost_refresh_views_${db.name}, ai_cost_trim_job_history_${db.name}`));
  const jobs = await jobsOf();
  t.deepEqual(jobs.map((job) => [job.jobname, job.database, job.schedule]), [
    [`ai_cost_refresh_${db.name}`, db.name, '* * * * *'],
    [`ai_cost_refresh_views_${db.name}`, db.name, '*/5 * * * *'],
    [`ai_cost_trim_job_history_${db.name}`, 'postgres', '17 3 * * *'],
  ]);
  t.is(jobs[0]!.command, 'SELECT ai_cost.refresh(views => false)');

  const second = await runCli(['schedule', '--database-url', db.url]);
  t.is(second.code, 0, second.stderr);
  t.deepEqual(await jobsOf(), jobs, 'scheduling again replaces the jobs, it does not add any');

  const doctor = await runCli(['doctor', '--database-url', db.url]);
  t.regex(doctor.stdout, /pg_cron lives in database postgres/);
});

test('with pg_cron in neither database, ai-cost schedule says so in one line and schedules nothing', async (t) => {
  const db = await database();
  const elsewhere = await database();
  const result = await runCli(['schedule', '--database-url', db.url, '--cron-database', elsewhere.name]);
  t.is(result.code, 1);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.regex(result.stderr, new RegExp(`^ai-cost: pg_cron is not installed in ${elsewhere.name} either`));
});
