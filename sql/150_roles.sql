-- Roles, grants and row-level security: who may do what with the ledger.
--
--   ai_cost_writer         the application: INSERT calls (or insert_calls),
--                          nothing else. It cannot change a cost (the trigger
--                          sets it), prices or history.
--   ai_cost_reader         BI tools: SELECT on everything in ai_cost (prices,
--                          rollups, views, budgets, and every column of the
--                          calls but their content: error_message and
--                          metadata), nothing in ai_cost_internal, no writes.
--                          A BI login listing ai_cost sees what it can read.
--   ai_cost_admin          finance and operators: prices, aliases, discounts,
--                          providers, budgets, repricing; reads calls; cannot
--                          delete or rewrite them.
--   ai_cost_tenant_reader  a login that may see one tenant's calls and rollups,
--                          chosen per session with SET ai_cost.tenant_id, once
--                          tenant isolation is enabled (see below).
--
-- All are NOLOGIN: grant them to your own logins (GRANT ai_cost_writer TO app).
-- Roles are cluster-wide, so they are created once, only by a user allowed to
-- create roles, and tolerating another installer creating them at the same
-- moment; without that right the install goes on, says so, and grants to
-- whichever of them exist. Uninstalling drops the grants with the objects and
-- keeps the roles, which other databases on the server may still use.
--
-- The cost trigger runs with the inserting user's rights (it is SECURITY
-- INVOKER, see 060_cost.sql), so the writer may read the price tables and the
-- price lookup. List prices are public; tenant prices and discounts are the
-- writer's own customers' terms.

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

-- What every role may run: nothing by default. The functions of the API that
-- write are revoked from PUBLIC and granted per role below; the rest (price
-- and cost explanations, histogram helpers, reads) stay callable by anyone
-- who may read the tables behind them.
REVOKE EXECUTE ON FUNCTION ai_cost.refresh(boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.maintain_partitions() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ai_cost.partition_calls() FROM PUBLIC;
-- A trigger function runs when its trigger fires, whoever fires it: nobody
-- needs to call one. The price book compiler is SECURITY DEFINER and locks
-- the price lookup, so a login that could run it could, by holding its
-- transaction open, make a price change wait: only ai_cost_admin, whose
-- price changes recompile the book, may run it.
REVOKE EXECUTE ON FUNCTION
  ai_cost_internal.close_previous_price(), ai_cost_internal.forbid_price_delete(),
  ai_cost_internal.price_sources_changed(), ai_cost_internal.price_call(),
  ai_cost_internal.capture_call_changes(), ai_cost_internal.truncate_rollups(),
  ai_cost_internal.claim_request_id(), ai_cost_internal.move_request_id(),
  ai_cost_internal.end_request_id_move(), ai_cost_internal.release_request_ids(),
  ai_cost_internal.maintain_partitions_when_due(), ai_cost_internal.compile_price_book()
  FROM PUBLIC;

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

-- Row-level security by tenant. The policies exist from the install on but
-- do nothing until tenant isolation is enabled: turning row-level security on
-- for a table hides all its rows from any role without a policy, which would
-- break readers an installation already has. So it is a choice: SELECT
-- ai_cost.enable_tenant_isolation().
--
-- A tenant reader sees the rows whose tenant_id equals the session setting
-- ai_cost.tenant_id (SET LOCAL ai_cost.tenant_id = 'acme' per request); with
-- no setting it sees nothing. Whoever can run SQL as that login can change the
-- setting, so this scopes an application's queries (as PostgREST or Supabase
-- do), it does not confine a person with a SQL prompt: give such a person a
-- login of their own with a fixed setting (ALTER ROLE ... SET ai_cost.tenant_id).
-- Every other role keeps seeing and writing every row.
DO $$
DECLARE
  rollup text;
BEGIN
  FOREACH rollup IN ARRAY ARRAY['calls', 'calls_hourly', 'conversations_hourly'] LOOP
    EXECUTE format($policy$
      CREATE POLICY tenant_rows ON ai_cost.%I FOR SELECT
        USING (pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER')
               AND tenant_id = pg_catalog.current_setting('ai_cost.tenant_id', true))$policy$, rollup);
    EXECUTE format($policy$
      CREATE POLICY other_roles_all_rows ON ai_cost.%I
        USING (NOT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER'))
        WITH CHECK (true)$policy$, rollup);
  END LOOP;
END
$$;

-- Turns tenant isolation on for the calls and their rollups. Run it as the
-- owner of the tables (the installing user). Costs a policy check per row for
-- roles other than the owner; see docs/security.md.
CREATE FUNCTION ai_cost.enable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    RAISE EXCEPTION 'role ai_cost_tenant_reader does not exist: create it (CREATE ROLE ai_cost_tenant_reader NOLOGIN) and run ai-cost migrate again';
  END IF;
  ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly ENABLE ROW LEVEL SECURITY;
END
$$;
COMMENT ON FUNCTION ai_cost.enable_tenant_isolation() IS 'Turns on row-level security for calls, calls_hourly and conversations_hourly: members of ai_cost_tenant_reader then see only rows of the tenant in the session setting ai_cost.tenant_id.';
REVOKE EXECUTE ON FUNCTION ai_cost.enable_tenant_isolation() FROM PUBLIC;

CREATE FUNCTION ai_cost.disable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost.calls DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly DISABLE ROW LEVEL SECURITY;
END
$$;
COMMENT ON FUNCTION ai_cost.disable_tenant_isolation() IS 'Turns row-level security for calls and their rollups off again: every role with SELECT sees every row.';
REVOKE EXECUTE ON FUNCTION ai_cost.disable_tenant_isolation() FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION ai_cost_internal.create_roles(), ai_cost_internal.grant_roles() FROM PUBLIC;
SELECT ai_cost_internal.create_roles();
SELECT ai_cost_internal.grant_roles();
