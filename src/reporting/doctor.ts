import { z } from 'zod';
import { sql, type DatabasePool } from 'slonik';
import { databaseRefusal } from '../db.js';
import { INTERNAL_SCHEMA, migrationStatus } from '../migrate.js';
import { formatCount } from './html-tables.js';
import { refreshStatus } from './refresh.js';

export interface Check {
  name: string;
  /** skip: the login doctor runs as may not see what this check reads; the detail says what and why. */
  level: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
}

export interface Diagnosis {
  checks: Check[];
  /** True when nothing failed (warnings and skipped checks allowed). */
  healthy: boolean;
}

/** The rollups are folded every minute by the schedule: older than this, nothing is folding them. */
const REFRESH_STALE_MS = 10 * 60 * 1000;
/** The materialized views are rebuilt every 5 minutes by the schedule: three missed rebuilds. */
const VIEWS_STALE_MS = 15 * 60 * 1000;

/**
 * Checks an installation: migrations, whether anything schedules the
 * refresh (pg_cron here, or pg_cron in another database of the cluster),
 * how fresh the rollups and the materialized views are, the models whose
 * recent calls have no price, the recent calls with a cost that no markup
 * bills (where markups bill calls), the BI reader role, a distributed
 * ledger's workers and the open transactions it keeps folded changes for,
 * and a partitioned ledger's partitions. Any login may run it,
 * a BI login granted only ai_cost_reader too: what that login may not read
 * is reported as a skipped check saying what and why, and a check the
 * database refuses for another reason is reported as such, so one check
 * never stops the others.
 */
export async function diagnose(databaseUrl: string, pool: DatabasePool): Promise<Diagnosis> {
  const login = await pool.oneFirst(sql.type(z.object({ login: z.string() }))`SELECT current_user AS login`);
  const tenantReader = await pool.oneFirst(sql.type(z.object({ member: z.boolean() }))`
    SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'ai_cost_tenant_reader')
                THEN pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER') ELSE false END AS member`);
  // What would let this login see what it may not: never the reader role for
  // a tenant reader, which would read every tenant.
  const remedy = tenantReader
    ? `${login} reads only the rows of its tenants; run doctor as the owner, or as a login granted ai_cost_reader`
    : `GRANT ai_cost_reader TO ${login} lets it read what doctor and the reports read`;
  const guarded = <T extends Check | Check[] | undefined>(name: string, check: () => Promise<T>) => guardedCheck(name, login, remedy, check);
  const checks: Check[] = [];
  const schema = await guarded('schema', () => schemaCheck(databaseUrl, pool, login));
  checks.push(schema);
  if (schema.level === 'fail') return { checks, healthy: false };

  const more: Array<[string, () => Promise<Check | Check[] | undefined>]> = [
    ['scheduling', () => schedulingCheck(pool)],
    ['refresh', () => freshnessChecks(pool)],
    ['price book', () => priceBookCheck(pool, login)],
    ['batch pricing', () => batchPricingCheck(pool)],
    ['set aside', () => setAsideCheck(pool)],
    ['catalog backfill', () => catalogBackfillCheck(pool)],
    ['unpriced models', () => unpricedModelsCheck(pool)],
    ['billing', () => billingCheck(pool)],
    ['reader role', () => readerCheck(pool, login)],
    ['distribution', () => distributionCheck(pool)],
    ['partitions', () => partitionsCheck(pool, login)],
  ];
  for (const [name, check] of more) {
    const result = await guarded(name, check);
    if (result) checks.push(...[result].flat());
  }
  return { checks, healthy: checks.every((check) => check.level !== 'fail') };
}

/**
 * Runs a check; a database error becomes that check's line: skipped when
 * the login lacks a right (42501), a warning otherwise. Anything that is not
 * the database answering (a lost connection, a bug) is thrown.
 */
async function guardedCheck<T extends Check | Check[] | undefined>(name: string, login: string, remedy: string, check: () => Promise<T>): Promise<T | Check> {
  try {
    return await check();
  } catch (error) {
    const refused = databaseRefusal(error);
    if (!refused || refused.code.startsWith('08')) throw error;
    return refused.code === '42501'
      ? { name, level: 'skip', detail: `cannot check as ${login}: ${refused.message} (${remedy})` }
      : { name, level: 'warn', detail: `could not check: ${refused.message} (SQLSTATE ${refused.code})` };
  }
}

/**
 * Whether pg-ai-cost is installed, and its migrations. The migrations table
 * is internal, readable by the installing owner: another login (a BI login)
 * is told that pending migrations are not visible to it, not refused.
 */
async function schemaCheck(databaseUrl: string, pool: DatabasePool, login: string): Promise<Check> {
  // From the catalogs, which every login may read.
  const found = await pool.one(sql.type(z.object({ schema: z.boolean(), migrations: z.boolean(), readable: z.boolean() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'ai_cost') AS schema,
           m.oid IS NOT NULL AS migrations,
           coalesce(pg_catalog.has_table_privilege(m.oid, 'SELECT'), false) AS readable
      FROM (SELECT NULL) AS one
      LEFT JOIN (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  WHERE n.nspname OPERATOR(pg_catalog.=) ${INTERNAL_SCHEMA} AND c.relname OPERATOR(pg_catalog.=) 'schema_migrations') AS m ON true`);
  const notInstalled: Check = { name: 'schema', level: 'fail', detail: 'pg-ai-cost is not installed in this database: run `ai-cost migrate up`' };
  if (!found.schema || !found.migrations) return notInstalled;
  if (!found.readable) {
    return { name: 'schema', level: 'skip', detail: `pg-ai-cost is installed; whether migrations are pending is not visible to ${login}: ${INTERNAL_SCHEMA}.schema_migrations is readable by the installing owner only (run doctor as that owner to check)` };
  }
  const status = await migrationStatus(databaseUrl);
  if (status.applied.length === 0) return notInstalled;
  return status.pending.length
    ? { name: 'schema', level: 'warn', detail: `${status.pending.length} migration(s) pending (${status.pending.join(', ')}): run \`ai-cost migrate up\`` }
    : { name: 'schema', level: 'ok', detail: `up to date (${status.applied.at(-1)})` };
}

/** An instant to the minute, in UTC: 2026-01-02T10:20Z. */
function utcMinute(at: Date): string {
  return `${at.toISOString().slice(0, 16)}Z`;
}

/** How long ago, in seconds up to two hours, then hours, then days (whole units, so the line stays short). */
function age(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 2 * 3600) return `${seconds}s`;
  if (seconds < 2 * 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)} days`;
}

/**
 * How fresh the data is: when the rollups were last refreshed (the live
 * views add what came since, so they are exact regardless), and when the
 * materialized views were last rebuilt, since those show only what was
 * there at their rebuild, and nothing before the first one.
 */
async function freshnessChecks(pool: DatabasePool): Promise<Check[]> {
  const refreshed = await refreshStatus(pool);
  const views = await pool.any(sql.type(z.object({ name: z.string(), populated: z.boolean() }))`
    SELECT pg_catalog.substr(matviewname, 4) AS name, ispopulated AS populated FROM pg_catalog.pg_matviews
     WHERE schemaname OPERATOR(pg_catalog.=) 'ai_cost' ORDER BY matviewname`);
  const now = Date.now();
  const rollupAge = refreshed.refreshedAt ? now - refreshed.refreshedAt.getTime() : undefined;
  const rollups: Check = {
    name: 'refresh',
    level: rollupAge === undefined || rollupAge > REFRESH_STALE_MS ? 'warn' : 'ok',
    detail: (refreshed.refreshedAt
      ? `last refresh of the rollups ${refreshed.refreshedAt.toISOString()}, ${age(rollupAge!)} ago (took ${refreshed.durationMs} ms)`
      : 'the rollups were never refreshed: run `ai-cost refresh`')
      + `; ${refreshed.pendingChanges} change(s) pending (the live views include them; the materialized views wait for the next refresh)`,
  };
  const names = views.map((view) => view.name).join(', ');
  const viewsAge = refreshed.viewsRefreshedAt ? now - refreshed.viewsRefreshedAt.getTime() : undefined;
  let materialized: Check;
  if (viewsAge === undefined || views.some((view) => !view.populated)) {
    materialized = { name: 'views', level: 'warn', detail: `the materialized views (${names}) were never rebuilt: they are empty until \`ai-cost refresh\` runs` };
  } else {
    materialized = {
      name: 'views',
      level: viewsAge > VIEWS_STALE_MS ? 'warn' : 'ok',
      detail: `the materialized views (${names}) were rebuilt ${refreshed.viewsRefreshedAt!.toISOString()}, ${age(viewsAge)} ago: they show the calls up to then`
        + (viewsAge > VIEWS_STALE_MS ? '; nothing has rebuilt them since (see scheduling)' : ''),
    };
  }
  return [rollups, materialized, ...heldBackCheck(refreshed, now), ...keptOnShardsCheck(refreshed, now)];
}

/**
 * How far behind the rollups are and why, when a transaction that was
 * writing calls stayed open across refreshes: only the ids it could still
 * fill wait (every call committed around it is folded), and they are folded
 * by the first refresh after it ends. Long enough, that is worth a look.
 */
function heldBackCheck(refreshed: Awaited<ReturnType<typeof refreshStatus>>, now: number): Check[] {
  if (!refreshed.heldBackSince) return [];
  const waited = now - refreshed.heldBackSince.getTime();
  const backends = refreshed.heldBackByPids.length > 0
    ? `by the open transaction(s) of backend(s) ${refreshed.heldBackByPids.join(', ')} (see pg_stat_activity)`
    : 'by transactions that have ended since: the next refresh folds their calls';
  return [{
    name: 'held back',
    level: waited > REFRESH_STALE_MS ? 'warn' : 'ok',
    detail: `calls have waited for the rollups for ${age(waited)}, held back ${backends}; only their own calls wait, every call committed around them is folded`,
  }];
}

/**
 * On a distributed ledger, a refresh keeps the updates and deletes it folded
 * on the shards while a transaction open since may still count them in its
 * live views, and every live view and refresh reads past them meanwhile.
 * Ten refreshes that fold changes on, they go whatever is open, and a live
 * view in such a transaction may then miss some: a transaction left open
 * that long is worth a look.
 */
function keptOnShardsCheck(refreshed: Awaited<ReturnType<typeof refreshStatus>>, now: number): Check[] {
  if (!refreshed.shardChangesKeptSince || refreshed.shardChangesKeptForPids.length === 0) return [];
  const kept = now - refreshed.shardChangesKeptSince.getTime();
  const stale = kept > REFRESH_STALE_MS;
  return [{
    name: 'kept on shards',
    level: stale ? 'warn' : 'ok',
    detail: `updates and deletes folded ${age(kept)} ago stay on the shards for the open transaction(s) of backend(s) `
      + `${refreshed.shardChangesKeptForPids.join(', ')} (see pg_stat_activity), whose live views may still count them; `
      + 'every live view and refresh reads past them until those transactions end'
      + (stale ? ', and after ten refreshes that fold changes they go, so a live view read in one of those transactions may miss some' : ''),
  }];
}

/**
 * The compiled price book holds the list prices in force when it was
 * compiled. Once one starts or ends, calls of that model are still priced
 * right, by the lookup, but slower until a refresh compiles the book again.
 * Undefined on a schema without the compiled price book.
 */
async function priceBookCheck(pool: DatabasePool, login: string): Promise<Check | undefined> {
  const book = await pool.maybeOne(sql.type(z.object({ callable: z.boolean() }))`
    SELECT pg_catalog.has_function_privilege(p.oid, 'EXECUTE') AS callable
      FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
     WHERE n.nspname OPERATOR(pg_catalog.=) 'ai_cost_internal' AND p.proname OPERATOR(pg_catalog.=) 'price_book_stale_at'`);
  if (!book) return undefined;
  if (!book.callable) {
    return { name: 'price book', level: 'skip', detail: `whether the compiled price book is current is not visible to ${login}: ai_cost_internal.price_book_stale_at() runs for the installing owner only` };
  }
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
  const here = await pool.one(sql.type(z.object({
    installed: z.boolean(), uses_cron: z.boolean(), database: z.string(), cron_database: z.string().nullable(), sees_settings: z.boolean(), user: z.string(),
    may_schedule: z.boolean(), owner: z.string(),
  }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') AS installed,
           coalesce(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure('ai_cost.schedule_refresh()'), 'EXECUTE'), false) AS may_schedule,
           (SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'ai_cost') AS owner,
           EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'cron' AND pg_catalog.has_schema_privilege(oid, 'USAGE')) AS uses_cron,
           pg_catalog.current_database() AS database, current_user AS user,
           (SELECT setting FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'cron.database_name') AS cron_database,
           pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE') AS sees_settings`);
  // What to do about a missing schedule is the installing owner's to do.
  const forOwner = here.may_schedule ? '' : ` That is for ${here.owner}, who installed pg-ai-cost, to do: ${here.user} may not schedule the refresh.`;
  if (here.installed && !here.uses_cron) {
    return { name: 'scheduling', level: 'skip', detail: `pg_cron is installed in this database, but its jobs are not visible to ${here.user}, who may not use schema cron` };
  }
  if (here.installed) {
    const jobs = await pool.any(sql.type(z.object({
      jobname: z.string(), schedule: z.string(), active: z.boolean(),
      last_status: z.string().nullable(), last_start: z.date().nullable(), last_end: z.date().nullable(), last_message: z.string().nullable(),
    }))`
      SELECT j.jobname, j.schedule, j.active, d.status AS last_status, d.start_time AS last_start, d.end_time AS last_end,
             d.return_message AS last_message
        FROM cron.job j
        LEFT JOIN LATERAL (SELECT status, start_time, end_time, return_message FROM cron.job_run_details r
                            WHERE r.jobid OPERATOR(pg_catalog.=) j.jobid ORDER BY r.runid DESC LIMIT 1) d ON true
       WHERE j.jobname OPERATOR(pg_catalog.=) 'ai_cost_refresh' AND j.database OPERATOR(pg_catalog.=) pg_catalog.current_database()`);
    // The views job (every 5 minutes) is reported through views_refreshed_at in the refresh check.
    const job = jobs[0];
    if (!job) {
      // pg_cron shows a login only the jobs it scheduled, unless it is a superuser.
      return {
        name: 'scheduling',
        level: 'warn',
        detail: `pg_cron is installed but shows ${here.user} no ai_cost_refresh job (it shows a login only its own jobs): `
          + `run \`ai-cost schedule\`, or run doctor as whoever scheduled it.${forOwner}`,
      };
    }
    if (!job.active) return { name: 'scheduling', level: 'warn', detail: 'pg_cron job ai_cost_refresh exists but is inactive' };
    return { name: 'scheduling', level: job.last_status === 'failed' ? 'warn' : 'ok', detail: `pg_cron runs ai_cost.refresh() (${job.schedule})${lastRun(job)}` };
  }
  let advice: string;
  if (here.cron_database && here.cron_database !== here.database) {
    advice = ` pg_cron lives in database ${here.cron_database}: run \`ai-cost schedule\` to schedule the refresh from there (its jobs are not visible from here, so this check cannot see them).`;
  } else if (here.cron_database === null && !here.sees_settings) {
    advice = ` Whether pg_cron is loaded elsewhere on this server is hidden from ${here.user} (it needs pg_read_all_settings): if it is, run \`ai-cost schedule --cron-database <name>\`; if not, run \`ai-cost refresh --no-views\` every minute and \`ai-cost refresh\` every few minutes from any scheduler.`;
  } else {
    advice = ' Install pg_cron and run `ai-cost schedule`, or run `ai-cost refresh --no-views` every minute and `ai-cost refresh` every few minutes from any scheduler.';
  }
  return { name: 'scheduling', level: 'warn', detail: `nothing in this database schedules ai_cost.refresh().${advice}${forOwner}` };
}

/**
 * What the last run of the refresh's pg_cron job did. A run that failed
 * to start (its database gone, a login refused) has no end time, but a
 * status and a message.
 */
function lastRun(run: { last_status: string | null; last_start: Date | null; last_end: Date | null; last_message: string | null }): string {
  const at = run.last_end ?? run.last_start;
  if (run.last_status === 'failed') {
    const message = run.last_message?.trim().split('\n')[0];
    return `; last run failed${at ? ` at ${at.toISOString()}` : ''}${message ? `: ${message}` : ''}`;
  }
  if (run.last_status === null) return '; not run yet';
  return `; last run ${run.last_status}${at ? ` at ${at.toISOString()}` : ''}`;
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

/**
 * On a ledger partitioned by month (ai_cost.partition_calls()): whether the
 * maintenance keeps a partition ready for next month. It runs inside the
 * refresh once a day, where a failure is only a WARNING in the refresh's
 * log; while it fails, the calls of a month without a partition land in
 * ai_cost.calls_default, and retention waits. Undefined on a ledger that is
 * not partitioned.
 */
async function partitionsCheck(pool: DatabasePool, login: string): Promise<Check | undefined> {
  // The catalog, not ai_cost_internal.calls_partitioned(): a BI login may not execute that.
  const ledger = await pool.one(sql.type(z.object({ partitioned: z.boolean(), visible: z.boolean() }))`
    SELECT coalesce((SELECT c.relkind OPERATOR(pg_catalog.=) 'p' FROM pg_catalog.pg_class c
                      WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('ai_cost.calls')), false) AS partitioned,
           pg_catalog.has_table_privilege('ai_cost_internal.partition_state', 'SELECT') AS visible`);
  if (!ledger.partitioned) return undefined;
  if (!ledger.visible) {
    return { name: 'partitions', level: 'skip', detail: `whether partition maintenance keeps up is not visible to ${login}: ai_cost_internal.partition_state is readable by the installing owner only` };
  }
  const state = await pool.one(sql.type(z.object({
    maintained_at: z.date().nullable(), attempted_at: z.date().nullable(), last_error: z.string().nullable(),
    next_month: z.string(), next_month_ready: z.boolean(), last_month: z.string().nullable(),
  }))`
    WITH next AS (
      SELECT pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC') OPERATOR(pg_catalog.+) interval '1 month' AS month
    )
    SELECT s.maintained_at, s.attempted_at, s.last_error,
           pg_catalog.to_char(n.month, 'YYYY-MM') AS next_month,
           EXISTS (SELECT FROM ai_cost.call_partitions p
                    WHERE p.range_start OPERATOR(pg_catalog.=) (n.month AT TIME ZONE 'UTC')) AS next_month_ready,
           (SELECT pg_catalog.to_char(pg_catalog.max(p.range_start) AT TIME ZONE 'UTC', 'YYYY-MM')
              FROM ai_cost.call_partitions p) AS last_month
      FROM ai_cost_internal.partition_state s, next n`);
  const when = (at: Date | null) => (at ? utcMinute(at) : 'never');
  if (state.last_error !== null) {
    return {
      name: 'partitions',
      level: 'warn',
      detail: `partition maintenance failed at ${when(state.attempted_at)}: ${state.last_error}. The refresh tries it again every 10 minutes; `
        + 'SELECT * FROM ai_cost.maintain_partitions() runs it now and shows the error',
    };
  }
  if (!state.next_month_ready) {
    return {
      name: 'partitions',
      level: 'warn',
      detail: `no partition is ready for ${state.next_month}: its calls would land in ai_cost.calls_default. `
        + `Partition maintenance last ran ${when(state.maintained_at)}; it runs inside ai_cost.refresh() once a day, `
        + 'so schedule the refresh (`ai-cost schedule`), or run SELECT * FROM ai_cost.maintain_partitions()',
    };
  }
  return { name: 'partitions', level: 'ok', detail: `monthly partitions are ready up to ${state.last_month}; maintenance last ran ${when(state.maintained_at)}` };
}

/**
 * On a ledger distributed over Citus (`ai-cost distribute`): every worker
 * needs a price lookup and book of its own, which a worker added since the
 * last run lacks, and the cost trigger fails for calls routed to it.
 * Undefined on a ledger that is not distributed.
 */
async function distributionCheck(pool: DatabasePool): Promise<Check | undefined> {
  const citus = await pool.oneFirst(sql.type(z.object({ citus: z.boolean() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus') AS citus`);
  if (!citus) return undefined;
  const distributed = await pool.oneFirst(sql.type(z.object({ distributed: z.boolean() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'ai_cost.calls'::pg_catalog.regclass) AS distributed`);
  if (!distributed) return undefined;
  const workers = await pool.any(sql.type(z.object({ node: z.string(), ready: z.boolean() }))`
    SELECT pg_catalog.concat(w.nodename, ':', w.nodeport) AS node, w.success AND w.result OPERATOR(pg_catalog.=) 't' AS ready
      FROM pg_catalog.run_command_on_workers($$SELECT pg_catalog.to_regclass('ai_cost_internal.price_lookup') IS NOT NULL$$) w
     ORDER BY 1`);
  const local = await pool.anyFirst(sql.type(z.object({ table: z.string() }))`
    SELECT pg_catalog.replace(t.t::pg_catalog.text, 'ai_cost.', '') AS table
      FROM pg_catalog.unnest(ai_cost_internal.reference_tables()) AS t(t)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid OPERATOR(pg_catalog.=) t.t)
     ORDER BY 1`);
  if (local.length > 0) {
    return {
      name: 'distribution',
      level: 'fail',
      detail: `${local.join(', ')} ${local.length === 1 ? 'is' : 'are'} not on the workers yet (added by an upgrade since \`ai-cost distribute\` last ran): calls on the workers cannot read ${local.length === 1 ? 'it' : 'them'}; run \`ai-cost distribute\` again`,
    };
  }
  const missing = workers.filter((worker) => !worker.ready).map((worker) => worker.node);
  if (missing.length > 0) {
    return {
      name: 'distribution',
      level: 'fail',
      detail: `worker(s) ${missing.join(', ')} have no price lookup of their own (added since \`ai-cost distribute\` last ran): calls on their shards cannot be priced; run \`ai-cost distribute\` again`,
    };
  }
  const unbuilt = await workersWithoutTheCoordinatorsLookup(pool);
  if (unbuilt.length > 0) {
    return {
      name: 'distribution',
      level: 'fail',
      detail: `the price lookup of worker(s) ${unbuilt.join(', ')} is not the coordinator's (a run of \`ai-cost distribute\` stopped before building it, or the node has no copy of the price tables): `
        + 'calls on their shards are priced wrongly or not at all; run `ai-cost distribute` again, then `ai-cost reprice --unpriced` for calls it left unpriced',
    };
  }
  const unset = await functionsWithoutTheirClusterSetting(pool);
  if (unset.length > 0) {
    return {
      name: 'distribution',
      level: 'fail',
      detail: `${unset.join(', ')} ${unset.length === 1 ? 'lacks the setting' : 'lack the settings'} \`ai-cost distribute\` gave (replaced since, by hand or by an upgrade): run \`ai-cost distribute\` again`,
    };
  }
  return { name: 'distribution', level: 'ok', detail: `ai_cost.calls is distributed by tenant_id; each of the ${workers.length} worker(s) has its price lookup and book` };
}

/**
 * The workers whose price lookup holds another number of rows than the
 * coordinator's: every node builds its lookup from its copy of the same
 * price tables, so a worker's differs only when it was never built (an
 * empty one, from a run of `ai-cost distribute` that stopped) or its node
 * lacks the price tables. Empty for a login that may not read the lookup,
 * which cannot tell.
 */
async function workersWithoutTheCoordinatorsLookup(pool: DatabasePool): Promise<readonly string[]> {
  const mayRead = await pool.oneFirst(sql.type(z.object({ may: z.boolean() }))`
    SELECT pg_catalog.has_table_privilege('ai_cost_internal.price_lookup', 'SELECT') AS may`);
  if (!mayRead) return [];
  return pool.anyFirst(sql.type(z.object({ node: z.string() }))`
    SELECT pg_catalog.concat(w.nodename, ':', w.nodeport) AS node
      FROM pg_catalog.run_command_on_workers($$SELECT pg_catalog.count(*) FROM ai_cost_internal.price_lookup$$) w
     WHERE w.success
       AND w.result OPERATOR(pg_catalog.<>) (SELECT pg_catalog.count(*) FROM ai_cost_internal.price_lookup)::pg_catalog.text
     ORDER BY 1`);
}

/**
 * The functions of a distributed ledger that lack the Citus setting
 * `ai-cost distribute` gave them, each as `function (setting = value)`.
 * None on a schema older than the list of those settings.
 */
async function functionsWithoutTheirClusterSetting(pool: DatabasePool): Promise<readonly string[]> {
  const listed = await pool.oneFirst(sql.type(z.object({ listed: z.boolean() }))`
    SELECT pg_catalog.to_regprocedure('ai_cost_internal.cluster_function_settings()') IS NOT NULL AS listed`);
  if (!listed) return [];
  return pool.anyFirst(sql.type(z.object({ unset: z.string() }))`
    SELECT pg_catalog.concat(s.function, ' (', s.setting, ' = ', s.value, ')') AS unset
      FROM ai_cost_internal.cluster_function_settings() s
      JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) s.function
     WHERE NOT pg_catalog.concat(s.setting, '=', s.value) OPERATOR(pg_catalog.=) ANY (COALESCE(p.proconfig, '{}'))
     ORDER BY 1`);
}

/**
 * A catalog update's backfill that has not finished (interrupted, or left
 * by `migrate up --no-backfill`): calls it would price are still unpriced.
 * Undefined when none is pending, or on a schema without catalog backfills.
 */
async function catalogBackfillCheck(pool: DatabasePool): Promise<Check | undefined> {
  const exists = await pool.oneFirst(sql.type(z.object({ exists: z.boolean() }))`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                    WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('ai_cost.reprice_runs')
                      AND attname OPERATOR(pg_catalog.=) 'catalog' AND NOT attisdropped) AS exists`);
  if (!exists) return undefined;
  const runs = await pool.any(sql.type(z.object({ id: z.bigint(), catalog: z.string(), calls_done: z.bigint(), total_calls: z.bigint() }))`
    SELECT r.id, r.catalog, r.calls_done, r.total_calls FROM ai_cost.reprice_runs r
     WHERE r.catalog IS NOT NULL AND r.finished_at IS NULL ORDER BY r.id`);
  if (runs.length === 0) return undefined;
  const lines = runs.map((r) => `built-in catalog ${r.catalog} (reprice run ${r.id}, ${r.calls_done} of ${r.total_calls} unpriced calls examined)`);
  return {
    name: 'catalog backfill',
    level: 'warn',
    detail: `the backfill of ${lines.join(', ')} is unfinished, so calls it would price are still unpriced: run \`ai-cost migrate up\` to finish it`,
  };
}

/** How recent an unpriced call must be for doctor to name its model. */
const UNPRICED_RECENT_DAYS = 7;
/** How many unpriced models the line names; the rest are counted. */
const UNPRICED_NAMED = 3;

/**
 * The models that had calls without a price in the last days, from
 * ai_cost.unpriced_models: with all their unpriced calls and since when,
 * since a price must be in force from the first of them for the reprice to
 * cost them all. last_hour is the start of an hour, hence the extra hour.
 */
async function unpricedModelsCheck(pool: DatabasePool): Promise<Check> {
  const models = await pool.any(sql.type(z.object({
    provider: z.string(), model: z.string(), service_tier: z.string(), unpriced_reason: z.string(), other_reasons: z.number(),
    unpriced_calls: z.bigint(), first_hour: z.date(),
  }))`
    SELECT provider, model, service_tier,
           (pg_catalog.array_agg(unpriced_reason ORDER BY last_hour DESC, unpriced_reason))[1] AS unpriced_reason,
           (pg_catalog.count(*) OPERATOR(pg_catalog.-) 1)::integer AS other_reasons,
           pg_catalog.sum(unpriced_calls)::bigint AS unpriced_calls, pg_catalog.min(first_hour) AS first_hour
      FROM ai_cost.unpriced_models
     GROUP BY provider, model, service_tier
    HAVING pg_catalog.max(last_hour) OPERATOR(pg_catalog.>)
           (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => ${UNPRICED_RECENT_DAYS}, hours => 1))
     ORDER BY unpriced_calls DESC, provider, model, service_tier`);
  if (models.length === 0) {
    return { name: 'unpriced models', level: 'ok', detail: `every call of the last ${UNPRICED_RECENT_DAYS} days has a price` };
  }
  const named = models.slice(0, UNPRICED_NAMED).map((m) =>
    `${m.provider}/${m.model} (${m.service_tier}): ${formatCount(m.unpriced_calls)} unpriced call(s) since ${utcMinute(m.first_hour)}, `
    + `${m.unpriced_reason}${m.other_reasons > 0 ? ` (and ${m.other_reasons} other reason(s))` : ''}`);
  const more = models.length > UNPRICED_NAMED ? `; and ${models.length - UNPRICED_NAMED} more` : '';
  const from = utcMinute(new Date(Math.min(...models.map((m) => m.first_hour.getTime()))));
  const reasons = models.map((m) => m.unpriced_reason);
  const withoutPrice = reasons.some((reason) => /^(unknown provider|no price for model) /.test(reason));
  const lackingRates = [...new Set(reasons.map(rateOptionFor).filter((option) => option !== undefined))];
  const remedies = [
    ...(withoutPrice
      ? [`give each a price in force from its first call (\`ai-cost prices set <provider> <model> --input <usd> --output <usd> --from ${from}\`, `
        + 'with --tier for another tier; or `ai-cost prices sync --apply` when the community list has it)']
      : []),
    ...(lackingRates.length > 0
      ? [`give the prices the rates they lack (\`ai-cost prices set <provider> <model>\` with the rates of the price in force `
        + `and ${lackingRates.join(', ')}, --from ${from}; \`ai-cost prices list\` shows them)`]
      : []),
  ];
  const noUsage = reasons.some((reason) => reason.startsWith('no usage reported'));
  const advice = (remedies.length > 0 ? `${remedies.join(', and ')}, then \`ai-cost reprice --unpriced --from ${from}\`; ` : '')
    + (noUsage ? 'calls that reported no usage (no tokens, no units) have nothing to price: record their usage; ' : '')
    + 'SELECT * FROM ai_cost.unpriced_models lists them all';
  return {
    name: 'unpriced models',
    level: 'warn',
    detail: `${models.length} model(s) had calls without a price in the last ${UNPRICED_RECENT_DAYS} days: ${named.join('; ')}${more}. `
      + `${advice[0]!.toUpperCase()}${advice.slice(1)}`,
  };
}

/** The `ai-cost prices set` option that adds the rate an unpriced reason says is missing, if it names one. */
function rateOptionFor(reason: string): string | undefined {
  const tokens = /^no price for (input|output|cache read|cache write|1-hour cache write|audio input|audio output) tokens$/.exec(reason);
  if (tokens) return `--${tokens[1]!.replace('1-hour cache write', 'cache-write-1h').replaceAll(' ', '-')} <usd>`;
  const unit = /^no price per (.+)$/.exec(reason);
  return unit ? `--unit-prices ${unit[1]}=<usd>` : undefined;
}

/**
 * Where markups bill calls (ai_cost.markups): the calls of the last days
 * that have a cost and that no markup bills, by tenant, since a reseller
 * would otherwise find the gap at invoice time. Calls without a cost are
 * the unpriced-models check's. Undefined without markups.
 */
async function billingCheck(pool: DatabasePool): Promise<Check | undefined> {
  const bills = await pool.oneFirst(sql.type(z.object({ bills: z.boolean() }))`
    SELECT pg_catalog.to_regclass('ai_cost.markups') IS NOT NULL AND EXISTS (SELECT FROM ai_cost.markups) AS bills`);
  if (!bills) return undefined;
  const tenants = await pool.any(sql.type(z.object({ tenant_id: z.string().nullable(), calls: z.bigint(), first: z.date() }))`
    SELECT r.tenant_id, pg_catalog.sum(r.unbilled_calls OPERATOR(pg_catalog.-) r.unpriced_calls)::bigint AS calls, pg_catalog.min(r.hour) AS first
      FROM ai_cost.calls_between(pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(days => ${UNPRICED_RECENT_DAYS}), pg_catalog.now()) r
     GROUP BY r.tenant_id
    HAVING pg_catalog.sum(r.unbilled_calls OPERATOR(pg_catalog.-) r.unpriced_calls) OPERATOR(pg_catalog.>) 0
     ORDER BY calls DESC, r.tenant_id NULLS LAST`);
  if (tenants.length === 0) {
    return { name: 'billing', level: 'ok', detail: `every call of the last ${UNPRICED_RECENT_DAYS} days that has a cost is billed by a markup` };
  }
  const total = tenants.reduce((sum, t) => sum + t.calls, 0n);
  const named = tenants.slice(0, UNPRICED_NAMED).map((t) => `${t.tenant_id === null ? '(no tenant)' : `tenant ${t.tenant_id}`} ${formatCount(t.calls)}`);
  const more = tenants.length > UNPRICED_NAMED ? `; and ${tenants.length - UNPRICED_NAMED} more tenant(s)` : '';
  const from = `${new Date(Math.min(...tenants.map((t) => t.first.getTime()))).toISOString().slice(0, 13)}:00Z`;
  // A markup of every call in force now bills the calls recorded from now
  // on: these were recorded before it, and only a reprice bills them.
  const billsEveryCall = await pool.oneFirst(sql.type(z.object({ every: z.boolean() }))`
    SELECT EXISTS (SELECT FROM ai_cost.markups m
                    WHERE m.tenant_id IS NULL AND m.provider IS NULL AND m.model IS NULL
                      AND m.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
                      AND (m.valid_to IS NULL OR m.valid_to OPERATOR(pg_catalog.>) pg_catalog.now())) AS every`);
  const remedy = billsEveryCall
    ? `a markup of every call is in force, added after they were recorded: \`ai-cost reprice --from ${from} --to now\` bills them`
    : `give them a markup in ai_cost.markups (percent 0 bills at cost), then \`ai-cost reprice --from ${from} --to now\` bills them`;
  return {
    name: 'billing',
    level: 'warn',
    detail: `${formatCount(total)} call(s) of the last ${UNPRICED_RECENT_DAYS} days have a cost but no markup bills them (${named.join('; ')}${more}): ${remedy}`,
  };
}

/** The BI reader role: that it exists, and that it was given its rights (a role created after the install gets them from the next migrate up). */
async function readerCheck(pool: DatabasePool, login: string): Promise<Check> {
  const reader = await pool.one(sql.type(z.object({ exists: z.boolean(), granted: z.boolean(), member: z.boolean() }))`
    SELECT r.oid IS NOT NULL AS exists,
           r.oid IS NOT NULL AND pg_catalog.has_table_privilege(r.oid, 'ai_cost.spend_daily', 'SELECT') AS granted,
           -- A superuser is a member of every role: only a login granted it is named.
           r.oid IS NOT NULL AND pg_catalog.pg_has_role(r.oid, 'MEMBER')
             AND NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) AS member
      FROM (SELECT NULL) AS one
      LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) 'ai_cost_reader'`);
  if (!reader.exists) {
    return { name: 'reader role', level: 'warn', detail: 'ai_cost_reader is missing (the installing user may not create roles): an administrator can run CREATE ROLE ai_cost_reader NOLOGIN, then `ai-cost migrate up` grants it its rights' };
  }
  if (reader.granted && reader.member) {
    return { name: 'reader role', level: 'ok', detail: `ai_cost_reader exists and ${login} is a member: it reads the ai_cost views and runs \`ai-cost report\`` };
  }
  return reader.granted
    ? { name: 'reader role', level: 'ok', detail: 'ai_cost_reader exists: GRANT ai_cost_reader TO <your BI login>' }
    : { name: 'reader role', level: 'warn', detail: 'ai_cost_reader exists but has not been given its rights: run `ai-cost migrate up`' };
}
