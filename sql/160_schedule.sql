-- The pg_cron jobs, when pg_cron is installed in this database: fold new
-- calls into the rollups every minute (pg_cron 1.4 schedules in minutes),
-- rebuild the windowed materialized views every 5 minutes (their cost
-- follows the 30-day window, not the new rows), and trim the run history of
-- these jobs daily, which pg_cron otherwise keeps forever. Without pg_cron,
-- nothing schedules the refresh: run SELECT ai_cost.refresh() or
-- `ai-cost refresh` from any scheduler.
--
-- Scheduling is a function, so that pg_cron installed after pg-ai-cost is
-- used too: `ai-cost schedule` (or SELECT ai_cost.schedule_refresh()) runs
-- it, and scheduling again only replaces the jobs, since pg_cron keys them by
-- name. Where pg_cron lives in another database of the server
-- (cron.database_name), `ai-cost schedule` schedules from there with
-- cron.schedule_in_database.
CREATE FUNCTION ai_cost.schedule_refresh() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    RAISE NOTICE 'pg_cron is not installed in this database: nothing schedules ai_cost.refresh() (see `ai-cost doctor` and `ai-cost schedule`)';
    RETURN false;
  END IF;
  IF NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
    RAISE NOTICE 'pg_cron is installed but % may not use schema cron: nothing schedules ai_cost.refresh(); an administrator can run GRANT USAGE ON SCHEMA cron TO %, then run `ai-cost schedule`', current_user, current_user;
    RETURN false;
  END IF;
  PERFORM cron.schedule('ai_cost_refresh', '* * * * *', 'SELECT ai_cost.refresh(views => false)');
  PERFORM cron.schedule('ai_cost_refresh_views', '*/5 * * * *', 'SELECT ai_cost.refresh()');
  PERFORM cron.schedule('ai_cost_trim_job_history', '17 3 * * *',
    $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' AND jobid IN (SELECT jobid FROM cron.job WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history') AND database = current_database())$cmd$);
  RETURN true;
END
$$;
COMMENT ON FUNCTION ai_cost.schedule_refresh() IS 'Schedules (or schedules again) the pg_cron jobs that run ai_cost.refresh() when pg_cron is installed in this database; returns whether it could. Run by the install; run it again after installing pg_cron.';
REVOKE EXECUTE ON FUNCTION ai_cost.schedule_refresh() FROM PUBLIC;

SELECT ai_cost.schedule_refresh();
