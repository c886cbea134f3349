-- Up Migration
--
-- Release 0.1.0, the baseline. A fresh install applies the schema in sql/
-- as it stands and records this and every later migration as applied, so
-- this step has nothing left to do; an install made by 0.1.0 has it already.
-- Later migrations upgrade a released schema to the next release, and sql/
-- is edited in the same change (CONTRIBUTING.md).
SELECT 1;

-- Down Migration
--
-- Uninstalls pg-ai-cost from this database: its pg_cron jobs, both schemas
-- and everything in them. The roles stay, since other databases of the
-- cluster may use them; their grants here go with the objects. The
-- migrations table goes last, once node-pg-migrate has recorded this step.

-- A view of the user's own over a pg-ai-cost object would be dropped with it
-- without a word: refuse instead, and name it.
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
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
     AND pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
    PERFORM cron.unschedule(jobid)
       FROM cron.job
      WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history')
        AND database = pg_catalog.current_database() AND username = current_user;
  END IF;
END
$$;

DROP SCHEMA ai_cost CASCADE;

DO $$
DECLARE
  statement text;
BEGIN
  FOR statement IN
    SELECT pg_catalog.format('DROP %s IF EXISTS %s CASCADE',
             CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
             pg_catalog.format('ai_cost_internal.%I', c.relname))
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ai_cost_internal'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
       AND NOT c.relispartition AND c.relname <> 'schema_migrations'
    UNION ALL
    SELECT pg_catalog.format('DROP %s IF EXISTS %s CASCADE',
             CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
             pg_catalog.format('ai_cost_internal.%I(%s)', p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)))
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'ai_cost_internal'::regnamespace
  LOOP
    EXECUTE statement;
  END LOOP;
END
$$;
