import { z } from 'zod';
import { sql, type DatabasePool } from 'slonik';
import { migrationStatus } from '../migrate.js';
import { refreshStatus } from './refresh.js';

export interface Check {
  name: string;
  level: 'ok' | 'warn' | 'fail';
  detail: string;
}

export interface Diagnosis {
  checks: Check[];
  /** True when nothing failed (warnings allowed). */
  healthy: boolean;
}

const REFRESH_STALE_MS = 10 * 60 * 1000;

/**
 * Checks an installation: migrations, whether anything schedules the
 * refresh (pg_cron here, or pg_cron in another database of the cluster),
 * how fresh the rollups are, and the BI reader role.
 */
export async function diagnose(databaseUrl: string, pool: DatabasePool): Promise<Diagnosis> {
  const checks: Check[] = [];
  const status = await migrationStatus(databaseUrl);
  if (status.applied.length === 0) {
    checks.push({ name: 'schema', level: 'fail', detail: 'pg-ai-cost is not installed in this database: run `ai-cost migrate up`' });
    return { checks, healthy: false };
  }
  checks.push(status.pending.length
    ? { name: 'schema', level: 'warn', detail: `${status.pending.length} migration(s) pending (${status.pending.join(', ')}): run \`ai-cost migrate up\`` }
    : { name: 'schema', level: 'ok', detail: `up to date (${status.applied.at(-1)})` });

  checks.push(await schedulingCheck(pool));

  const refreshed = await refreshStatus(pool);
  const age = refreshed.refreshedAt ? Date.now() - refreshed.refreshedAt.getTime() : undefined;
  checks.push({
    name: 'refresh',
    level: age === undefined || age > REFRESH_STALE_MS ? 'warn' : 'ok',
    detail: (refreshed.refreshedAt
      ? `last refresh ${refreshed.refreshedAt.toISOString()} (${Math.round(age! / 1000)}s ago, ${refreshed.durationMs} ms)`
      : 'never refreshed')
      + (refreshed.viewsRefreshedAt ? `; views rebuilt ${refreshed.viewsRefreshedAt.toISOString()}` : '; views never rebuilt')
      + `; ${refreshed.pendingChanges} change(s) pending (the live views include them; the materialized views wait for the next refresh)`,
  });

  const book = await priceBookCheck(pool);
  if (book) checks.push(book);
  const batches = await batchPricingCheck(pool);
  if (batches) checks.push(batches);
  const setAside = await setAsideCheck(pool);
  if (setAside) checks.push(setAside);

  checks.push(await readerCheck(pool));

  return { checks, healthy: checks.every((check) => check.level !== 'fail') };
}

/**
 * The compiled price book holds the list prices in force when it was
 * compiled. Once one starts or ends, calls of that model are still priced
 * right, by the lookup, but slower until a refresh compiles the book again.
 * Undefined on a schema without the compiled price book.
 */
async function priceBookCheck(pool: DatabasePool): Promise<Check | undefined> {
  const compiled = await pool.oneFirst(sql.type(z.object({ compiled: z.boolean() }))`
    SELECT pg_catalog.to_regprocedure('ai_cost_internal.price_book_stale_at()') IS NOT NULL AS compiled`);
  if (!compiled) return undefined;
  const { stale_at: staleAt, stale } = await pool.one(sql.type(z.object({ stale_at: z.string(), stale: z.boolean() }))`
    SELECT ai_cost_internal.price_book_stale_at()::pg_catalog.text AS stale_at,
           ai_cost_internal.price_book_stale_at() OPERATOR(pg_catalog.<=) pg_catalog.now() AS stale`);
  if (stale) {
    return { name: 'price book', level: 'warn', detail: `a price started or ended at ${staleAt}, after the price book was compiled: those calls are priced right but by the slower lookup until \`ai-cost refresh\` runs` };
  }
  return { name: 'price book', level: 'ok', detail: staleAt === 'infinity' ? 'compiled; no price change is scheduled' : `compiled; the next scheduled price change, at ${staleAt}, is compiled in by the first refresh after it` };
}

/**
 * ai_cost.insert_calls() prices batches itself, and the cost trigger skips
 * the rows it priced only when the function runs as the role named in the
 * trigger's condition, its owner at install time. After an ALTER ... OWNER
 * or a restore as another user the two differ: costs stay right (the
 * trigger prices every row again) but batches lose their speed. Undefined
 * on a schema without ai_cost.insert_calls(). The trigger's condition is
 * read as pg_get_triggerdef prints it, which qualifies an operator or a type
 * that the search_path hides: under pg_catalog alone it prints the plain form.
 */
async function batchPricingCheck(pool: DatabasePool): Promise<Check | undefined> {
  const state = await pool.transaction(async (transaction) => {
    await transaction.query(sql.unsafe`SET LOCAL search_path = pg_catalog, pg_temp`);
    return transaction.maybeOne(sql.type(z.object({ owner: z.string(), trusted: z.boolean() }))`
      SELECT f.proowner::pg_catalog.regrole::pg_catalog.text AS owner,
             pg_catalog.strpos(pg_catalog.pg_get_triggerdef(t.oid),
               pg_catalog.concat('CURRENT_USER <> ', pg_catalog.quote_literal(pg_catalog.pg_get_userbyid(f.proowner)), '::name'))
               OPERATOR(pg_catalog.>) 0 AS trusted
        FROM pg_catalog.pg_proc f, pg_catalog.pg_trigger t
       WHERE f.oid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('ai_cost.insert_calls(pg_catalog.jsonb)')
         AND t.tgrelid OPERATOR(pg_catalog.=) 'ai_cost.calls'::pg_catalog.regclass
         AND t.tgname OPERATOR(pg_catalog.=) 'tg_calls__price_call'`);
  });
  if (!state) return undefined;
  return state.trusted
    ? { name: 'batch pricing', level: 'ok', detail: `ai_cost.insert_calls() prices batches in its own statement (owned by ${state.owner})` }
    : { name: 'batch pricing', level: 'warn', detail: `the cost trigger does not trust ai_cost.insert_calls()'s owner ${state.owner}, so it prices every batch row again: costs are right, batches slower. Give the function back to the role the trigger names (ALTER FUNCTION ai_cost.insert_calls(jsonb) OWNER TO that role)` };
}

async function schedulingCheck(pool: DatabasePool): Promise<Check> {
  // cron.database_name is readable only with pg_read_all_settings: through
  // pg_settings a login without it sees no row instead of an error.
  const here = await pool.one(sql.type(z.object({ installed: z.boolean(), database: z.string(), cron_database: z.string().nullable(), sees_settings: z.boolean(), user: z.string() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') AS installed,
           pg_catalog.current_database() AS database, current_user AS user,
           (SELECT setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'cron.database_name') AS cron_database,
           pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE') AS sees_settings`);
  if (here.installed) {
    const jobs = await pool.any(sql.type(z.object({ jobname: z.string(), schedule: z.string(), active: z.boolean(), last_status: z.string().nullable(), last_end: z.date().nullable() }))`
      SELECT j.jobname, j.schedule, j.active, d.status AS last_status, d.end_time AS last_end
        FROM cron.job j
        LEFT JOIN LATERAL (SELECT status, end_time FROM cron.job_run_details r
                            WHERE r.jobid OPERATOR(pg_catalog.=) j.jobid ORDER BY r.runid DESC LIMIT 1) d ON true
       WHERE j.jobname OPERATOR(pg_catalog.=) 'ai_cost_refresh' AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()`);
    // The views job (every 5 minutes) is reported through views_refreshed_at in the refresh check.
    const job = jobs[0];
    if (!job) {
      return { name: 'scheduling', level: 'warn', detail: 'pg_cron is installed but has no ai_cost_refresh job: run `ai-cost schedule`' };
    }
    if (!job.active) return { name: 'scheduling', level: 'warn', detail: 'pg_cron job ai_cost_refresh exists but is inactive' };
    const last = job.last_end ? `; last run ${job.last_status} at ${job.last_end.toISOString()}` : '; not run yet';
    return { name: 'scheduling', level: job.last_status === 'failed' ? 'warn' : 'ok', detail: `pg_cron runs ai_cost.refresh() (${job.schedule})${last}` };
  }
  let advice: string;
  if (here.cron_database && here.cron_database !== here.database) {
    advice = ` pg_cron lives in database ${here.cron_database}: run \`ai-cost schedule\` to schedule the refresh from there (its jobs are not visible from here, so this check cannot see them).`;
  } else if (here.cron_database === null && !here.sees_settings) {
    advice = ` Whether pg_cron is loaded elsewhere on this server is hidden from ${here.user} (it needs pg_read_all_settings): if it is, run \`ai-cost schedule --cron-database <name>\`; if not, run \`ai-cost refresh --no-views\` every minute and \`ai-cost refresh\` every few minutes from any scheduler.`;
  } else {
    advice = ' Install pg_cron and run `ai-cost schedule`, or run `ai-cost refresh --no-views` every minute and `ai-cost refresh` every few minutes from any scheduler.';
  }
  return { name: 'scheduling', level: 'warn', detail: `nothing in this database schedules ai_cost.refresh().${advice}` };
}

/**
 * Call changes the refresh could not fold (a value past a per-call ceiling,
 * an overflow) are set aside, out of every report, instead of stopping it:
 * how many, and the first reasons. Undefined on a schema without them.
 */
async function setAsideCheck(pool: DatabasePool): Promise<Check | undefined> {
  const exists = await pool.oneFirst(sql.type(z.object({ exists: z.boolean() }))`
    SELECT pg_catalog.to_regclass('ai_cost.set_aside_calls') IS NOT NULL AS exists`);
  if (!exists) return undefined;
  const aside = await pool.one(sql.type(z.object({ count: z.number(), first: z.array(z.string()).nullable() }))`
    SELECT (SELECT pg_catalog.count(*)::int FROM ai_cost.set_aside_calls) AS count,
           (SELECT pg_catalog.array_agg(f.line) FROM (
              SELECT pg_catalog.format('call %s: %s', s.call_id, s.reason) AS line
                FROM ai_cost.set_aside_calls s ORDER BY s.set_aside_at, s.call_id LIMIT 3) f) AS first`);
  if (aside.count === 0) return { name: 'set aside', level: 'ok', detail: 'every call change was folded into the rollups' };
  return {
    name: 'set aside',
    level: 'warn',
    detail: `${aside.count} call change(s) could not be folded into the rollups and are left out of every report (${aside.first!.join('; ')}${aside.count > 3 ? '; ...' : ''}): fix or delete those calls, then SELECT ai_cost.retry_set_aside_changes(); SELECT * FROM ai_cost.set_aside_calls lists them`,
  };
}

/** The BI reader role: that it exists, and that it was given its rights (a role created after the install gets them from the next migrate up). */
async function readerCheck(pool: DatabasePool): Promise<Check> {
  const reader = await pool.one(sql.type(z.object({ exists: z.boolean(), granted: z.boolean() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'ai_cost_reader') AS exists,
           EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'ai_cost_reader')
             AND pg_catalog.has_table_privilege('ai_cost_reader', 'ai_cost.spend_daily', 'SELECT') AS granted`);
  if (!reader.exists) {
    return { name: 'reader role', level: 'warn', detail: 'ai_cost_reader is missing (the installing user may not create roles): an administrator can run CREATE ROLE ai_cost_reader NOLOGIN, then `ai-cost migrate up` grants it its rights' };
  }
  return reader.granted
    ? { name: 'reader role', level: 'ok', detail: 'ai_cost_reader exists: GRANT ai_cost_reader TO <your BI login>' }
    : { name: 'reader role', level: 'warn', detail: 'ai_cost_reader exists but has not been given its rights: run `ai-cost migrate up`' };
}
