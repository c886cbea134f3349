-- Roles, grants and row-level security: who may do what with the ledger.
--
--   ai_cost_writer         the application: INSERT calls (or insert_calls),
--                          nothing else. It cannot change a cost (the trigger
--                          sets it), prices or history.
--   ai_cost_reader         BI tools: SELECT on everything in ai_cost (prices,
--                          rollups, views, budgets, and every column of the
--                          calls but their content: error_message and
--                          metadata), no table in ai_cost_internal, no writes.
--                          A BI login listing ai_cost sees what it can read.
--   ai_cost_admin          finance and operators: prices, aliases, discounts,
--                          service tiers, providers, budgets, unpriced model alerts,
--                          repricing; reads calls; cannot delete or rewrite
--                          them.
--   ai_cost_tenant_reader  a login that may see the calls and rollups of the
--                          tenants ai_cost.tenant_access maps to its roles,
--                          once tenant isolation is enabled (see below).
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

-- The functions the cost trigger calls with the rights of whoever inserts a
-- call or reprices one.
CREATE FUNCTION ai_cost_internal.grant_pricing_functions(grantee text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION
      ai_cost_internal.price_book_slot(text), ai_cost_internal.price_book_rates(),
      ai_cost_internal.price_book_plain_rates(), ai_cost_internal.price_book_ids(),
      ai_cost_internal.price_book_windows(), ai_cost_internal.price_book_has_tenant(text),
      ai_cost_internal.book_cost_of_plain_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_cost_of_call(bigint[], timestamptz[], integer, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint),
      ai_cost_internal.book_discount_id(bigint[], integer),
      ai_cost_internal.price_call_slowly(ai_cost.calls), ai_cost_internal.cost_of(ai_cost.calls),
      ai_cost_internal.priced(text, text, text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, jsonb),
      ai_cost_internal.no_price_reason(text, text, text, timestamptz), ai_cost_internal.pattern_model(text, text),
      ai_cost_internal.in_daily_window(timestamptz, time, time, text), ai_cost_internal.bills_calls(),
      ai_cost_internal.markup_book(), ai_cost_internal.markup_book_window(),
      ai_cost_internal.charge(bigint, text, bigint, bigint, numeric, numeric, numeric),
      ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint),
      ai_cost_internal.explain_billing(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint)
    TO %I', grantee);
END
$$;

-- Gives each existing role its rights; idempotent, so every `ai-cost migrate
-- up` runs it again and a role created after the install gets them too.
--
-- No function runs for PUBLIC: PostgreSQL lets everyone execute a new
-- function, so each `migrate up` revokes that from every function of the
-- package (those a later upgrade adds too) and grants each role the ones its
-- job needs. A role also needs EXECUTE on what runs in its name: functions
-- inside the views it reads, and the pricing functions the cost trigger calls
-- when it inserts or reprices (trigger functions themselves need no grant).
-- test/execute-rights.test.ts holds each role to its list.
CREATE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
  calls_reader name;
BEGIN
  REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM PUBLIC;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    -- USAGE on ai_cost_internal lets the reader's functions (calls_between)
    -- name the internal ones granted below; it reads no internal table.
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_reader;
    -- Every table and view but the calls, their partitions and the months
    -- retention detached (reading one directly would bypass the column
    -- grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls' AND c.relname !~ '^calls_[0-9]{4}_[0-9]{2}$'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros,
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units,
                  billed_micros, markup_id)
       ON ai_cost.calls TO ai_cost_reader;
    -- The functions of the reporting views, and the histogram and price
    -- helpers a dashboard query may call itself.
    GRANT EXECUTE ON FUNCTION
      ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
      ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
      ai_cost.histogram_merge(bigint[]), ai_cost.price_at(text, text, timestamptz),
      ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint),
      ai_cost_internal.histogram(integer, integer),
      ai_cost_internal.dimension_values(text, text, text, text, text, text, text),
      ai_cost_internal.split_days(timestamptz, timestamptz[]),
      ai_cost_internal.day_reading(timestamptz, timestamptz, timestamptz[]),
      ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables(), ai_cost_internal.cluster_function_settings(),
      ai_cost_internal.shard_changes(), ai_cost_internal.shard_changes_kept(), ai_cost_internal.partition_footprints(),
      ai_cost_internal.calls_are_distributed()
      TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never what a call was about or whose it was.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts,
                    ai_cost.service_tiers, ai_cost.markups
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb)
      TO ai_cost_writer;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_writer');
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost and charge columns; the cost and billing
    -- triggers recompute them from the prices and markups, so this cannot
    -- set an arbitrary cost or charge either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason, billed_micros, markup_id) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    -- On a ledger distributed over Citus, a reprice batch's audit rows are
    -- written by a statement over the distributed calls, and Citus draws
    -- their ids with nextval(), which needs USAGE on the sequence.
    GRANT USAGE ON SEQUENCE ai_cost.reprice_audit_id_seq TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers, ai_cost.markups
       TO ai_cost_admin;
    -- Operators choose whether the refresh announces unpriced models.
    GRANT SELECT, UPDATE (enabled) ON ai_cost.unpriced_model_alert_settings TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean),
      ai_cost_internal.reprice_preview_rows(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers(),
      ai_cost_internal.calls_are_distributed()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so. Before
    -- PostgreSQL 16, CREATEROLE grants membership in any role that is not a
    -- superuser instead, and gives no ADMIN OPTION on the roles it creates.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION')
         OR (pg_catalog.current_setting('server_version_num')::integer < 160000
             AND (SELECT r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
        -- Once: granting it again is a NOTICE on every migrate up.
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                        WHERE m.roleid = 'ai_cost_reader'::regrole AND m.member = 'ai_cost_admin'::regrole) THEN
          GRANT ai_cost_reader TO ai_cost_admin;
        END IF;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_tenant_reader;
    -- A tenant reader reads the calls and their rollups only while the
    -- policies below confine it to its tenants.
    SELECT c.relrowsecurity INTO isolated FROM pg_catalog.pg_class c WHERE c.oid = 'ai_cost.calls'::regclass;
    IF isolated THEN
      GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
    ELSE
      REVOKE SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly FROM ai_cost_tenant_reader;
    END IF;
  END IF;

  -- On a ledger distributed over Citus the calls' policies call these, as
  -- whoever reads the calls (145_distribution.sql).
  FOR calls_reader IN
    SELECT r.rolname FROM pg_catalog.pg_roles r
     WHERE r.rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION ai_cost_internal.is_tenant_reader(), ai_cost_internal.may_read_tenant(text) TO %I',
                   calls_reader);
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

-- Row-level security by tenant.
--
-- Which tenants a role may read is data: a row (reader, tenant_id) in
-- ai_cost.tenant_access lets the members of role `reader` read that tenant's
-- calls and rollups. A member of ai_cost_tenant_reader reads only the rows of
-- the tenants mapped to a role it has the privileges of (pg_has_role ...
-- 'USAGE'), and never through a setting it could change itself: a login with
-- a SQL prompt is confined as firmly as an application.
--
-- An application that connects as one login and serves many tenants gets one
-- NOLOGIN role per tenant, each a member of ai_cost_tenant_reader and mapped
-- to its tenant; the login is a NOINHERIT member of them all and takes the
-- tenant of each request with SET LOCAL ROLE (docs/security.md). Every other
-- role keeps seeing and writing every row.
--
-- The policies exist from the install on but do nothing until tenant
-- isolation is enabled: row-level security costs a policy check per row for
-- every role but the owner, which an installation without tenant readers
-- need not pay. So it is a choice: SELECT ai_cost.enable_tenant_isolation().
-- Until then a tenant reader is granted nothing to read.
CREATE TABLE ai_cost.tenant_access (
  reader    regrole NOT NULL,
  tenant_id text NOT NULL CHECK (tenant_id <> ''),
  PRIMARY KEY (reader, tenant_id)
);
COMMENT ON TABLE ai_cost.tenant_access IS 'Which tenants a role may read once tenant isolation is on: members of reader (and of ai_cost_tenant_reader) see the calls and rollups of tenant_id. Each role sees only its own rows here.';
COMMENT ON COLUMN ai_cost.tenant_access.reader IS 'A role whose members may read the tenant; a member of several such roles reads all their tenants.';
COMMENT ON COLUMN ai_cost.tenant_access.tenant_id IS 'The tenant_id of ai_cost.calls that reader may read.';
ALTER TABLE ai_cost.tenant_access ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT
  USING (pg_catalog.pg_has_role(reader, 'USAGE'));
CREATE POLICY admins_manage ON ai_cost.tenant_access
  USING (pg_catalog.pg_has_role('ai_cost_admin', 'USAGE'))
  WITH CHECK (pg_catalog.pg_has_role('ai_cost_admin', 'USAGE'));
-- The calls' policies read this table as whoever reads the calls (a writer's
-- INSERT ... RETURNING included), so everyone may: each sees its own rows.
GRANT SELECT ON ai_cost.tenant_access TO PUBLIC;

-- The membership tests are written as scalar subqueries so that PostgreSQL
-- evaluates them once per query, not once per row.
DO $$
DECLARE
  rollup text;
BEGIN
  FOREACH rollup IN ARRAY ARRAY['calls', 'calls_hourly', 'conversations_hourly'] LOOP
    EXECUTE format($policy$
      CREATE POLICY tenant_rows ON ai_cost.%I FOR SELECT
        USING ((SELECT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER'))
               AND tenant_id IN (SELECT a.tenant_id FROM ai_cost.tenant_access a))$policy$, rollup);
    EXECUTE format($policy$
      CREATE POLICY other_roles_all_rows ON ai_cost.%I
        USING ((SELECT NOT pg_catalog.pg_has_role('ai_cost_tenant_reader', 'MEMBER')))
        WITH CHECK (true)$policy$, rollup);
  END LOOP;
END
$$;

-- Turns tenant isolation on for the calls and their rollups, and lets tenant
-- readers read them. Run it as the owner of the tables (the installing user).
CREATE FUNCTION ai_cost.enable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    RAISE EXCEPTION 'role ai_cost_tenant_reader does not exist: create it (CREATE ROLE ai_cost_tenant_reader NOLOGIN) and run ai-cost migrate again';
  END IF;
  ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly ENABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly ENABLE ROW LEVEL SECURITY;
  PERFORM ai_cost_internal.grant_roles();
END
$$;
COMMENT ON FUNCTION ai_cost.enable_tenant_isolation() IS 'Turns on row-level security for calls, calls_hourly and conversations_hourly: members of ai_cost_tenant_reader then read only the rows of the tenants ai_cost.tenant_access maps to their roles.';

-- Turns it off again, and takes the tenant readers' rights to read with it.
CREATE FUNCTION ai_cost.disable_tenant_isolation() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost.calls DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.calls_hourly DISABLE ROW LEVEL SECURITY;
  ALTER TABLE ai_cost.conversations_hourly DISABLE ROW LEVEL SECURITY;
  PERFORM ai_cost_internal.grant_roles();
END
$$;
COMMENT ON FUNCTION ai_cost.disable_tenant_isolation() IS 'Turns row-level security for calls and their rollups off again, and revokes the tenant readers'' SELECT on them.';

SELECT ai_cost_internal.create_roles();
SELECT ai_cost_internal.grant_roles();
