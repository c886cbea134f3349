-- Up Migration
--
-- The windowed views read a day that a window starts inside from its smaller
-- side: the daily row less the hours before the cut, when those are fewer
-- than the hours after it; the per-user slices are summed between the cuts
-- as the dimension slices are; and the users of the top spenders are cut at
-- the two windows they rank, not at the 24-hour one too (sql/ holds each
-- definition; this step brings the schema there).

SET LOCAL check_function_bodies = off;

CREATE FUNCTION ai_cost_internal.day_reading(day timestamptz, first timestamptz, cuts timestamptz[],
                                             OUT bounds timestamptz[], OUT read_from timestamptz,
                                             OUT skip_from timestamptz, OUT skip_to timestamptz,
                                             OUT derived_start timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH parts AS (
    SELECT b.start, b.from_hour, lead(b.from_hour, 1, day + interval '24 hours') OVER (ORDER BY b.start) AS to_hour
      FROM (SELECT DISTINCT c AS start,
                   date_trunc('hour', c, 'UTC')
                     + CASE WHEN date_trunc('hour', c, 'UTC') = c THEN interval '0' ELSE interval '1 hour' END AS from_hour
              FROM unnest(cuts || greatest(day, first)) AS c
             WHERE c >= greatest(day, first) AND c < day + interval '24 hours') AS b
  ), longest AS (
    SELECT p.start, p.from_hour, p.to_hour,
           p.to_hour - p.from_hour > greatest(day, first) - day + interval '1 hour' AS derived
      FROM parts p
     ORDER BY p.to_hour - p.from_hour DESC, p.start
     LIMIT 1
  )
  SELECT ARRAY(SELECT p.start FROM parts p ORDER BY p.start),
         CASE WHEN l.derived THEN day ELSE greatest(day, first) END,
         CASE WHEN l.derived THEN l.from_hour ELSE day + interval '24 hours' END,
         CASE WHEN l.derived THEN l.to_hour ELSE day + interval '24 hours' END,
         CASE WHEN l.derived THEN l.start END
    FROM longest l
$$;
COMMENT ON FUNCTION ai_cost_internal.day_reading(timestamptz, timestamptz, timestamptz[]) IS 'Internal: how the slices read a UTC day that first or a cut falls inside: the parts'' starts, the hours read by the hour, and the part summed as the daily row less them.';

CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_slices(since timestamptz, cuts timestamptz[], dimensions text[])
RETURNS TABLE (start timestamptz, dimension text, value text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  cut_day timestamptz;
  -- Scalars, not a record: the planner sees a scalar's value when it plans
  -- each call (a record's fields stay parameters, estimated blind).
  bounds timestamptz[];
  read_from timestamptz;
  skip_from timestamptz;
  skip_to timestamptz;
  derived_start timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day::timestamp AT TIME ZONE 'UTC', CASE WHEN d.dimension = 'model_id' THEN 'model' ELSE d.dimension END,
           d.value, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.dimensions_daily_live d
     WHERE d.dimension = ANY (array_replace(dimensions, 'model', 'model_id'))
       AND d.day >= (first AT TIME ZONE 'UTC')::date
       AND d.day::timestamp AT TIME ZONE 'UTC' <> ALL (split);
  FOREACH cut_day IN ARRAY split LOOP
    SELECT * INTO bounds, read_from, skip_from, skip_to, derived_start
      FROM ai_cost_internal.day_reading(cut_day, first, cuts);
    RETURN QUERY
      WITH hours AS MATERIALIZED (
        -- The hours read by the hour, each summed into its part (start NULL:
        -- before the first part, read only to be taken off the daily row):
        -- width_bucket finds the last bound at or before the hour in the
        -- sorted bounds, and one pass groups every dimension at once.
        SELECT h.start,
               CASE GROUPING(h.provider, h.model, h.operation, h.tenant_id, h.user_id, h.feature)
                    WHEN 31 THEN 'provider' WHEN 47 THEN 'model' WHEN 55 THEN 'operation' WHEN 59 THEN 'tenant'
                    WHEN 61 THEN 'user' ELSE 'feature' END AS dimension,
               CASE GROUPING(h.provider, h.model, h.operation, h.tenant_id, h.user_id, h.feature)
                    WHEN 31 THEN h.provider WHEN 47 THEN h.model WHEN 55 THEN h.operation WHEN 59 THEN h.tenant_id
                    WHEN 61 THEN h.user_id ELSE h.feature END AS value,
               sum(h.calls) AS calls,
               coalesce(sum(h.calls) FILTER (WHERE h.status = 'success'), 0) AS successes,
               sum(h.unpriced_calls) AS unpriced_calls, sum(h.cost_micros) AS cost_micros
          FROM (SELECT bounds[width_bucket(r.hour, bounds)] AS start, r.status, r.provider, r.model, r.operation,
                       r.tenant_id, r.user_id, r.feature, r.calls, r.unpriced_calls, r.cost_micros
                  FROM ai_cost.calls_hourly_live r
                 WHERE r.hour >= read_from AND r.hour < skip_from
                UNION ALL
                SELECT bounds[width_bucket(r.hour, bounds)], r.status, r.provider, r.model, r.operation,
                       r.tenant_id, r.user_id, r.feature, r.calls, r.unpriced_calls, r.cost_micros
                  FROM ai_cost.calls_hourly_live r
                 WHERE r.hour >= skip_to AND r.hour < cut_day + interval '24 hours') AS h
         GROUP BY GROUPING SETS ((h.start, h.provider), (h.start, h.model), (h.start, h.operation), (h.start, h.tenant_id),
                                 (h.start, h.user_id), (h.start, h.feature))
      )
      SELECT h.start, h.dimension, h.value, h.calls::bigint, h.successes::bigint, h.unpriced_calls::bigint,
             h.cost_micros::bigint
        FROM hours h
       WHERE h.start IS NOT NULL AND h.dimension = ANY (dimensions)
      UNION ALL
      SELECT derived_start, t.dimension, t.value, sum(t.calls)::bigint, sum(t.successes)::bigint,
             sum(t.unpriced_calls)::bigint, sum(t.cost_micros)::bigint
        FROM (SELECT CASE WHEN d.dimension = 'model_id' THEN 'model' ELSE d.dimension END AS dimension, d.value,
                     d.calls, d.successes, d.unpriced_calls, d.cost_micros
                FROM ai_cost_internal.dimensions_daily_live d
               WHERE derived_start IS NOT NULL AND d.day = (cut_day AT TIME ZONE 'UTC')::date
                 AND d.dimension = ANY (array_replace(dimensions, 'model', 'model_id'))
              UNION ALL
              SELECT h.dimension, h.value, -h.calls, -h.successes, -h.unpriced_calls, -h.cost_micros
                FROM hours h
               WHERE derived_start IS NOT NULL AND h.dimension = ANY (dimensions)) AS t
       GROUP BY t.dimension, t.value
      HAVING sum(t.calls) <> 0;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]) IS 'Internal: calls and spend per value of the dimensions named (provider, model as its id, operation, tenant, user, feature) from the hour of since on, daily except a row per part between the cuts in the UTC days that since or a cut falls inside; start is the day or the cut.';

CREATE OR REPLACE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  cut_day timestamptz;
  bounds timestamptz[];
  read_from timestamptz;
  skip_from timestamptz;
  skip_to timestamptz;
  derived_start timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.users_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH cut_day IN ARRAY split LOOP
    SELECT * INTO bounds, read_from, skip_from, skip_to, derived_start
      FROM ai_cost_internal.day_reading(cut_day, first, cuts);
    RETURN QUERY
      WITH hours AS MATERIALIZED (
        SELECT h.start, h.tenant_id, h.user_id, sum(h.calls) AS calls,
               coalesce(sum(h.calls) FILTER (WHERE h.status = 'success'), 0) AS successes,
               sum(h.unpriced_calls) AS unpriced_calls, sum(h.cost_micros) AS cost_micros
          FROM (SELECT bounds[width_bucket(r.hour, bounds)] AS start, r.status, r.tenant_id,
                       r.user_id, r.calls, r.unpriced_calls, r.cost_micros
                  FROM ai_cost.calls_hourly_live r
                 WHERE r.hour >= read_from AND r.hour < skip_from
                UNION ALL
                SELECT bounds[width_bucket(r.hour, bounds)], r.status, r.tenant_id,
                       r.user_id, r.calls, r.unpriced_calls, r.cost_micros
                  FROM ai_cost.calls_hourly_live r
                 WHERE r.hour >= skip_to AND r.hour < cut_day + interval '24 hours') AS h
         GROUP BY h.start, h.tenant_id, h.user_id
      )
      SELECT h.start, h.tenant_id, h.user_id, h.calls::bigint, h.successes::bigint, h.unpriced_calls::bigint,
             h.cost_micros::bigint
        FROM hours h
       WHERE h.start IS NOT NULL
      UNION ALL
      SELECT derived_start, t.tenant_id, t.user_id, sum(t.calls)::bigint, sum(t.successes)::bigint,
             sum(t.unpriced_calls)::bigint, sum(t.cost_micros)::bigint
        FROM (SELECT d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
                FROM ai_cost_internal.users_daily_live d
               WHERE derived_start IS NOT NULL AND d.day = cut_day
              UNION ALL
              SELECT h.tenant_id, h.user_id, -h.calls, -h.successes, -h.unpriced_calls, -h.cost_micros
                FROM hours h
               WHERE derived_start IS NOT NULL) AS t
       GROUP BY t.tenant_id, t.user_id
      HAVING sum(t.calls) <> 0;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.user_slices(timestamptz, timestamptz[]) IS 'Internal: per-user spend rows from the hour of since on, daily except a row per part between the cuts in the UTC days that since or a cut falls inside; start is the day or the cut.';

CREATE OR REPLACE VIEW ai_cost_internal.window_users AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows WHERE label IN ('7d', '30d'))
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_users IS 'Internal: per-user spend rows of the 7d and 30d windows, labelled.';

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
      ai_cost_internal.reference_tables(), ai_cost_internal.shard_changes()
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
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_slices(since timestamptz, cuts timestamptz[], dimensions text[])
RETURNS TABLE (start timestamptz, dimension text, value text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
  bounds timestamptz[];
BEGIN
  RETURN QUERY
    SELECT d.day::timestamp AT TIME ZONE 'UTC', CASE WHEN d.dimension = 'model_id' THEN 'model' ELSE d.dimension END,
           d.value, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.dimensions_daily_live d
     WHERE d.dimension = ANY (array_replace(dimensions, 'model', 'model_id'))
       AND d.day >= (first AT TIME ZONE 'UTC')::date
       AND d.day::timestamp AT TIME ZONE 'UTC' <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    bounds := ARRAY(SELECT b FROM unnest(cuts || greatest(day, first)) AS b
                     WHERE b >= greatest(day, first) AND b < day + interval '24 hours');
    RETURN QUERY
      SELECT p.start, v.dimension, v.value, sum(h.calls)::bigint,
             coalesce(sum(h.calls) FILTER (WHERE h.status = 'success'), 0)::bigint,
             sum(h.unpriced_calls)::bigint, sum(h.cost_micros)::bigint
        FROM ai_cost.calls_hourly_live h
       CROSS JOIN LATERAL (SELECT max(b) AS start FROM unnest(bounds) AS b WHERE b <= h.hour) AS p
       CROSS JOIN LATERAL (VALUES ('provider', h.provider), ('model', h.model), ('operation', h.operation),
                                  ('tenant', h.tenant_id), ('user', h.user_id), ('feature', h.feature)) AS v(dimension, value)
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours' AND v.dimension = ANY (dimensions)
       GROUP BY p.start, v.dimension, v.value;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]) IS 'Internal: calls and spend per value of the dimensions named (provider, model as its id, operation, tenant, user, feature) from the hour of since on, daily except between the cuts in the UTC days that since or a cut falls inside; start is the day or the cut.';

CREATE OR REPLACE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.users_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.tenant_id, h.user_id, h.calls, CASE WHEN h.status = 'success' THEN h.calls ELSE 0 END,
             h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.user_slices(timestamptz, timestamptz[]) IS 'Internal: per-user spend rows from the hour of since on, daily except hourly in the UTC days that since or a cut falls inside; start is the day or hour.';

CREATE OR REPLACE VIEW ai_cost_internal.window_users AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_users IS 'Internal: per-user spend rows of the 24h, 7d and 30d windows, labelled.';

DROP FUNCTION ai_cost_internal.day_reading(timestamptz, timestamptz, timestamptz[]);

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
      ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables(), ai_cost_internal.shard_changes()
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
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

SELECT ai_cost_internal.grant_roles();
