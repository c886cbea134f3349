-- Up Migration
--
-- Roles, grants and the pg_cron schedule become functions that every
-- `ai-cost migrate up` runs again (sql/150_roles.sql, sql/160_schedule.sql):
-- a role an administrator creates after the install gets its rights, and
-- pg_cron installed later gets its jobs (`ai-cost schedule`).

-- Creates the roles that do not exist yet, where the installing user may
-- create roles, and names the others with the statements an administrator
-- can run. Run at install and by every `ai-cost migrate up`, so roles an
-- administrator creates later get their rights from grant_roles() below.
CREATE FUNCTION ai_cost_internal.create_roles() RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  role_name text;
  missing text[] := '{}';
BEGIN
  FOREACH role_name IN ARRAY ARRAY['ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader'] LOOP
    CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
      missing := missing || role_name;
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- another installer created it a moment ago
    END;
  END LOOP;
  IF cardinality(missing) > 0 THEN
    RAISE NOTICE 'roles % not created: % may not create roles. An administrator can run: %; then run `ai-cost migrate up` again, which grants them their rights',
      array_to_string(missing, ', '), current_user,
      (SELECT string_agg(format('CREATE ROLE %I NOLOGIN', m), '; ') FROM unnest(missing) AS m);
  END IF;
  RETURN missing;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_roles() IS 'Internal: creates the missing ai_cost_* roles where the current user may, and returns (and announces) those it could not create.';

-- Gives each existing role its rights; idempotent, so every `ai-cost migrate
-- up` runs it again and a role created after the install gets them too.
CREATE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_reader;
    -- Every table and view but the calls and their partitions (reading a
    -- partition directly would bypass the column grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id)
       ON ai_cost.calls TO ai_cost_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
                              ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never the calls' content.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb) TO ai_cost_writer;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost columns; the cost trigger recomputes them
    -- from the prices, so this cannot set an arbitrary cost either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets
       TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION ai_cost_internal.compile_price_book() TO ai_cost_admin;
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION') THEN
        GRANT ai_cost_reader TO ai_cost_admin;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

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
    RAISE NOTICE 'pg_cron is installed but % may not use schema cron: nothing schedules ai_cost.refresh()', current_user;
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

REVOKE EXECUTE ON FUNCTION ai_cost_internal.create_roles(), ai_cost_internal.grant_roles(),
                           ai_cost.schedule_refresh() FROM PUBLIC;

-- Down Migration

DROP FUNCTION ai_cost.schedule_refresh();
DROP FUNCTION ai_cost_internal.grant_roles();
DROP FUNCTION ai_cost_internal.create_roles();
