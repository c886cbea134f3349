import { withClient } from '../db.js';

/** The refresh jobs, as sql/160_schedule.sql schedules them in the database of pg-ai-cost. */
const JOBS = [
  { name: 'ai_cost_refresh', schedule: '* * * * *', command: 'SELECT ai_cost.refresh(views => false)' },
  { name: 'ai_cost_refresh_views', schedule: '*/5 * * * *', command: 'SELECT ai_cost.refresh()' },
] as const;

export interface ScheduleResult {
  /** The database whose pg_cron holds the jobs. */
  cronDatabase: string;
  /** The jobs now scheduled, by name. */
  jobs: string[];
}

/** Nothing could schedule the refresh; the message says why and what to do. */
export class CannotScheduleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CannotScheduleError';
  }
}

export interface ScheduleOptions {
  /**
   * The database of this server that pg_cron lives in, when it is not the
   * database of pg-ai-cost. Default: cron.database_name, where the login may
   * read it.
   */
  cronDatabase?: string;
}

/**
 * Schedules the pg_cron jobs that refresh pg-ai-cost, whenever pg_cron was
 * installed; scheduling again replaces them (pg_cron keys jobs by name).
 * With pg_cron in this database, ai_cost.schedule_refresh() does it. With
 * pg_cron in another database of the server, the jobs are scheduled there
 * with cron.schedule_in_database, named after this database.
 */
export async function scheduleRefresh(databaseUrl: string, options: ScheduleOptions = {}): Promise<ScheduleResult> {
  const here = await withClient(databaseUrl, async (client) => {
    const { rows: [row] } = await client.query<{ database: string; installed: boolean; cron_database: string | null; user: string }>(`
      SELECT pg_catalog.current_database() AS database, current_user AS user,
             EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') AS installed,
             (SELECT setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'cron.database_name') AS cron_database`);
    if (row!.installed) {
      const { rows: [scheduled] } = await client.query<{ ok: boolean }>('SELECT ai_cost.schedule_refresh() AS ok');
      if (!scheduled!.ok) throw new CannotScheduleError(`pg_cron is installed in ${row!.database}, but ${row!.user} may not use its schema cron: an administrator can run GRANT USAGE ON SCHEMA cron TO ${row!.user}`);
    }
    return row!;
  });
  if (here.installed) return { cronDatabase: here.database, jobs: [...JOBS.map((job) => job.name), 'ai_cost_trim_job_history'] };

  const cronDatabase = options.cronDatabase ?? here.cron_database;
  if (!cronDatabase) {
    throw new CannotScheduleError(`pg_cron is not installed in ${here.database}, and where it lives on this server is hidden from ${here.user} ` +
      '(cron.database_name needs pg_read_all_settings): pass --cron-database <name>, or run `ai-cost refresh` from any scheduler');
  }
  if (cronDatabase === here.database) {
    throw new CannotScheduleError(`pg_cron is loaded for ${cronDatabase} but not installed there: run CREATE EXTENSION pg_cron, then \`ai-cost schedule\` again`);
  }
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(cronDatabase)}`;
  return withClient(url.toString(), async (client) => {
    const { rows: [cron] } = await client.query<{ installed: boolean }>(
      "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') AS installed");
    if (!cron!.installed) throw new CannotScheduleError(`pg_cron is not installed in ${cronDatabase} either: install it there (CREATE EXTENSION pg_cron), or pass --cron-database`);
    const jobs: string[] = [];
    for (const job of JOBS) {
      const name = `${job.name}_${here.database}`;
      await client.query('SELECT cron.schedule_in_database($1, $2, $3, $4)', [name, job.schedule, job.command, here.database]);
      jobs.push(name);
    }
    // pg_cron keeps the run history of every job forever: trim these jobs' own.
    // pg_cron runs the command with the search_path of the scheduling user.
    const trim = `ai_cost_trim_job_history_${here.database}`;
    await client.query('SELECT cron.schedule($1, $2, $3)', [trim, '17 3 * * *',
      'DELETE FROM cron.job_run_details WHERE end_time OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval \'7 days\') '
      + `AND jobid OPERATOR(pg_catalog.=) ANY (SELECT jobid FROM cron.job WHERE jobname OPERATOR(pg_catalog.=) ANY (${pgArray([...jobs, trim])}))`]);
    return { cronDatabase, jobs: [...jobs, trim] };
  }).catch((error: unknown) => {
    if ((error as { code?: string }).code === '42501') {
      throw new CannotScheduleError(`${here.user} may not schedule jobs in ${cronDatabase}: ${(error as Error).message}`);
    }
    throw error;
  });
}

/** A text[] literal of job names, quoted for a SQL command pg_cron stores as text. */
function pgArray(names: string[]): string {
  return `ARRAY[${names.map((name) => `'${name.replaceAll("'", "''")}'`).join(', ')}]::pg_catalog.text[]`;
}
