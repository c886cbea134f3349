import type pg from 'pg';
import { inTransaction } from './db.js';

/**
 * Uninstalls pg-ai-cost, in one transaction, and returns the steps it
 * reverted, newest first: what the baseline's Down does, on the schema as it
 * is now. The upgrade steps' Down sections are for going back a release, and
 * would refuse what the earlier schema cannot hold (organisation-wide
 * discounts), drop views of the user's over the views they replace without a
 * word, and cannot take apart a ledger distributed over Citus (the one of
 * 0016 drops functions that the policies ai_cost.distribute() made still
 * use). Dropping both schemas drops everything, on a Citus coordinator on
 * every worker too, with the shards, the copies of the reference tables and
 * each node's own price lookup and book; the migrations table goes with
 * them. It refuses while views of the user's own read pg-ai-cost objects,
 * naming every one, and unschedules the refresh.
 */
export async function uninstallLedger(client: pg.Client, applied: string[]): Promise<string[]> {
  return inTransaction(client, async () => {
    await client.query(`
      DO $$
      DECLARE
        dependents text;
      BEGIN
        SELECT string_agg(DISTINCT v.oid::regclass::text, ', ')
          INTO dependents
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.oid = d.objid
          JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
          JOIN pg_catalog.pg_class used ON d.refclassid = 'pg_catalog.pg_class'::regclass AND used.oid = d.refobjid
         WHERE used.relnamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace)
           AND v.relnamespace NOT IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace);
        IF dependents IS NOT NULL THEN
          RAISE EXCEPTION 'pg-ai-cost was not uninstalled: your views % read its objects; drop them first', dependents;
        END IF;
        IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
           AND pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
          PERFORM cron.unschedule(jobid)
             FROM cron.job
            WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history')
              AND database = pg_catalog.current_database() AND username = current_user;
        END IF;
      END
      $$`);
    await client.query('DROP SCHEMA ai_cost CASCADE');
    await client.query('DROP SCHEMA ai_cost_internal CASCADE');
    return [...applied].reverse();
  });
}
