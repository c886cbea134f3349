-- Up Migration
--
-- On PostgreSQL 15 and before, a database owner with CREATEROLE made
-- ai_cost_admin a member of ai_cost_reader no more: the check asked for
-- ADMIN OPTION, which CREATEROLE there does not give (it lets its holder
-- grant membership in any role that is not a superuser instead), and every
-- migrate up printed a note telling an administrator to do it; granting it
-- again once it holds was a NOTICE of its own on every run (sql/ holds
-- the definitions; this step brings the schema there; migrate grants the
-- roles again after its steps).

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
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
      ai_cost_internal.shard_changes()
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

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
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
      ai_cost_internal.shard_changes()
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
