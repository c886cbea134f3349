-- Up Migration
--
-- The spend share and the spend trends read the daily dimension rollup, a
-- row per dimension value a day, instead of every group of the daily calls
-- rollup; the trends compute their bounds once; and the top spenders sum
-- each conversation once for both windows (sql/ holds each definition;
-- this step brings the schema there). The dimension rollup gains the model
-- id alone (model_id), what these views count as a model, filled here from
-- the hourly rollup, which holds the same folded changes. The daily calls
-- rollup, which nothing reads any more, goes, and with it its share of
-- every refresh.

SET LOCAL check_function_bodies = off;

-- The refresh lock: a refresh folding meanwhile would count new calls in
-- the hourly rollup and miss them in the model ids filled from it.
SELECT pg_advisory_xact_lock(x'6169636f73745f72'::bigint);

CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_values(
  provider text, model text, operation text, service_tier text, tenant_id text, user_id text, feature text,
  OUT dimension text, OUT value text
) RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES ('provider', provider), ('model', provider OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) model), ('operation', operation),
         ('service_tier', service_tier), ('tenant', tenant_id), ('user', user_id), ('feature', feature),
         ('model_id', model)
$$;
COMMENT ON FUNCTION ai_cost_internal.dimension_values(text, text, text, text, text, text, text) IS 'Internal: the (dimension, value) pairs of a call, as ai_cost_internal.dimensions_daily counts them.';

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
                                              OUT applied bigint, OUT set_aside bigint, OUT arrived_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  emptied_hourly tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end) u WHERE only_changes IS NULL
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), delta AS (
    -- The hourly groups, each histogram built from the buckets of its changes.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           sum(sign)::bigint AS calls,
           coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
           coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
           coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
           coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens,
           coalesce(sum(sign * cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(sum(sign * cache_write_tokens), 0)::bigint AS cache_write_tokens,
           coalesce(sum(sign * reasoning_tokens), 0)::bigint AS reasoning_tokens,
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint AS total_ms_calls,
           coalesce(sum(sign * total_ms), 0)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)) AS total_ms_hist,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL)) AS ttft_ms_hist,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, sum(sign),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0), coalesce(sum(sign * total_ms), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL))
      FROM folded
     GROUP BY 1, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    -- One pass over the hourly groups into a group per day and value of each
    -- dimension (GROUPING SETS), the pairs ai_cost_internal.dimension_values names.
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'),
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN 'provider' WHEN 31 THEN 'model' WHEN 111 THEN 'operation' WHEN 119 THEN 'service_tier'
                WHEN 123 THEN 'tenant' WHEN 125 THEN 'user' WHEN 95 THEN 'model_id' ELSE 'feature' END,
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN provider WHEN 31 THEN provider || '/' || model WHEN 111 THEN operation
                WHEN 119 THEN service_tier WHEN 123 THEN tenant_id WHEN 125 THEN user_id WHEN 95 THEN model
                ELSE feature END,
           sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta
     GROUP BY date_trunc('day', hour, 'UTC'),
              GROUPING SETS ((provider), (provider, model), (operation), (service_tier), (tenant_id), (user_id), (feature),
                            (model))
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM folded
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed) - (SELECT count(*) FROM aside),
         (SELECT count(*) FROM aside),
         (SELECT array_agg(a.call_id) FROM arrived a),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, emptied_hourly, emptied_users, emptied_conversations, emptied_models, emptied_features,
         emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls read; run by ai_cost_internal.refresh_rollups().';

COMMENT ON TABLE ai_cost_internal.dimensions_daily IS 'Internal: daily (UTC) calls, spend and tokens per dimension and value (one row per provider, model, operation, service tier, tenant, user and feature a day, and per model id whatever its provider), maintained by ai_cost.refresh(); what ai_cost.spend_daily_by_dimension and the windowed views read.';

INSERT INTO ai_cost_internal.dimensions_daily (day, dimension, value, calls, successes, errors, cancelled, cost_micros,
                                               success_cost_micros, unpriced_calls, input_tokens, output_tokens,
                                               unpriced_successes)
SELECT date_trunc('day', hour, 'UTC'), 'model_id', model, sum(calls), coalesce(sum(calls) FILTER (WHERE status = 'success'), 0),
       coalesce(sum(calls) FILTER (WHERE status = 'error'), 0), coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0),
       sum(cost_micros), coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
       sum(input_tokens), sum(output_tokens), coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
  FROM ai_cost.calls_hourly
 GROUP BY 1, model
HAVING sum(calls) <> 0;

CREATE OR REPLACE VIEW ai_cost.spend_daily_by_dimension AS
SELECT day, dimension, value, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM ai_cost_internal.dimensions_daily_live
 WHERE dimension <> 'model_id';

DROP VIEW ai_cost.spend_share, ai_cost.top_spenders, ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends;
DROP VIEW ai_cost_internal.window_calls;
DROP FUNCTION ai_cost_internal.calls_slices(timestamptz, timestamptz[]);

-- Nothing reads the daily calls rollup any more.
DROP VIEW ai_cost_internal.calls_daily_live;
DROP TABLE ai_cost_internal.calls_daily;

CREATE OR REPLACE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  TRUNCATE ai_cost_internal.call_changes, ai_cost_internal.set_aside_changes, ai_cost_internal.unfolded_ids,
           ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  IF ai_cost_internal.calls_are_distributed() THEN
    TRUNCATE ai_cost_internal.shard_call_changes;
  END IF;
  UPDATE ai_cost_internal.fold_state SET folded_through = ai_cost_internal.last_drawn_call_id();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.truncate_rollups() IS 'Trigger: empties the rollups and pending changes when ai_cost.calls is truncated.';

CREATE FUNCTION ai_cost_internal.dimension_slices(since timestamptz, cuts timestamptz[], dimensions text[])
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

CREATE VIEW ai_cost_internal.window_dimensions AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.dimension_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w),
                                         ARRAY['provider', 'model', 'operation', 'tenant', 'user', 'feature']) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_dimensions IS 'Internal: calls and spend per provider, model, operation, tenant, user and feature in the 24h, 7d and 30d windows, labelled; a row belongs to every window it starts in.';

CREATE MATERIALIZED VIEW ai_cost.mv_spend_share AS
WITH grouped AS (
  SELECT r.label AS "window", r.dimension, r.value, sum(r.calls)::bigint AS calls,
         sum(r.successes)::bigint AS successes, sum(r.cost_micros)::bigint AS cost_micros,
         sum(r.unpriced_calls)::bigint AS unpriced_calls
    FROM ai_cost_internal.window_dimensions r
   GROUP BY r.label, r.dimension, r.value
  HAVING sum(r.calls) <> 0
)
SELECT "window", dimension, value, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros, unpriced_calls,
       CASE WHEN calls <> unpriced_calls
            THEN round(cost_micros::numeric / nullif(sum(cost_micros) OVER (PARTITION BY "window", dimension), 0), 6)
       END AS share_of_cost
  FROM grouped;
CREATE UNIQUE INDEX mv_spend_share_key_idx ON ai_cost.mv_spend_share ("window", dimension, value) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.spend_share.';
COMMENT ON COLUMN ai_cost.mv_spend_share.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_spend_share.dimension IS 'What value is: provider, model, operation, tenant, user or feature. The rows of one dimension and window add up to all calls of the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.value IS 'The provider, model, operation, tenant, user or feature; NULL: calls without one.';
COMMENT ON COLUMN ai_cost.mv_spend_share.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.successes IS 'Calls with status success in the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_share.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_share.share_of_cost IS 'cost_micros as a fraction of the priced spend of the dimension''s values in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';
CREATE VIEW ai_cost.spend_share AS
SELECT "window", dimension, value, calls, successes, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_spend_share;
COMMENT ON VIEW ai_cost.spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature (column dimension) over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.spend_share.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.spend_share.dimension IS 'What value is: provider, model, operation, tenant, user or feature. The rows of one dimension and window add up to all calls of the window.';
COMMENT ON COLUMN ai_cost.spend_share.value IS 'The provider, model, operation, tenant, user or feature; NULL: calls without one.';
COMMENT ON COLUMN ai_cost.spend_share.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.spend_share.successes IS 'Calls with status success in the window.';
COMMENT ON COLUMN ai_cost.spend_share.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_share.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.spend_share.share_of_cost IS 'cost_micros as a fraction of the priced spend of the dimension''s values in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH users AS MATERIALIZED (
  SELECT label, tenant_id, user_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_users WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM users GROUP BY label
), week AS MATERIALIZED (
  SELECT since FROM ai_cost_internal.windows WHERE label = '7d'
), conversations AS MATERIALIZED (
  SELECT c.conversation_id AS id, sum(c.calls) AS calls, sum(c.cost_micros) AS cost_micros,
         sum(c.unpriced_calls) AS unpriced_calls,
         coalesce(sum(c.calls) FILTER (WHERE c.hour >= w.since), 0) AS week_calls,
         coalesce(sum(c.cost_micros) FILTER (WHERE c.hour >= w.since), 0) AS week_cost_micros,
         coalesce(sum(c.unpriced_calls) FILTER (WHERE c.hour >= w.since), 0) AS week_unpriced_calls
    FROM ai_cost.conversations_hourly_live c
   CROSS JOIN week w
   WHERE c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY c.conversation_id
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM users
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM users
   WHERE user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT '30d', 'conversation', top.id, top.calls, top.cost_micros, top.unpriced_calls
    FROM (SELECT c.id, c.calls, c.cost_micros, c.unpriced_calls
            FROM conversations c
           WHERE c.calls <> 0
           ORDER BY c.cost_micros DESC, c.calls DESC, c.id
           LIMIT 100) AS top
  UNION ALL
  SELECT '7d', 'conversation', top.id, top.week_calls, top.week_cost_micros, top.week_unpriced_calls
    FROM (SELECT c.id, c.week_calls, c.week_cost_micros, c.week_unpriced_calls
            FROM conversations c
           WHERE c.week_calls <> 0
           ORDER BY c.week_cost_micros DESC, c.week_calls DESC, c.id
           LIMIT 100) AS top
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.label, s.kind ORDER BY s.cost_micros DESC, s.calls DESC, s.id) AS rank
    FROM spend s
   WHERE s.calls <> 0
)
SELECT r.label AS "window", r.kind, r.rank, r.id, r.calls::bigint AS calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN r.cost_micros::bigint END AS cost_micros,
       r.unpriced_calls::bigint AS unpriced_calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN round(r.cost_micros / nullif(t.cost_micros, 0), 6) END AS share_of_cost
  FROM ranked r JOIN totals t USING (label)
 WHERE r.rank <= 100;
CREATE UNIQUE INDEX mv_top_spenders_key_idx ON ai_cost.mv_top_spenders ("window", kind, rank);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_top_spenders IS 'Top 100 tenants, users and conversations by spend over the last 7d and 30d, with their share of all spend in the window; rebuilt by ai_cost.refresh(). Read ai_cost.top_spenders.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';
CREATE VIEW ai_cost.top_spenders AS
SELECT "window", kind, rank, id, calls, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_top_spenders;
COMMENT ON VIEW ai_cost.top_spenders IS 'Top 100 tenants, users and conversations (column kind) by spend over the last 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

CREATE MATERIALIZED VIEW ai_cost.mv_spend_trends AS
WITH marks AS (
  SELECT now() AS at,
         date_trunc('hour', now(), 'UTC') - interval '167 hours' AS week_start,
         date_trunc('month', now() AT TIME ZONE 'UTC') AS month_utc
), bounds AS (
  SELECT at, week_start, week_start - interval '168 hours' AS previous_week_start,
         month_utc AT TIME ZONE 'UTC' AS month_start,
         (month_utc - interval '1 month') AT TIME ZONE 'UTC' AS previous_month_start,
         (month_utc + interval '1 month') AT TIME ZONE 'UTC' AS month_end
    FROM marks
), cutoffs AS MATERIALIZED (
  -- The instant as far into last month as now is into this one. Computed
  -- once (MATERIALIZED): inlined, every bound would be computed again from
  -- now() for each slice and sum it filters, most of a rebuild.
  SELECT *, previous_month_start + make_interval(secs => extract(epoch FROM at - month_start)) AS previous_month_same_point
    FROM bounds
), summed AS (
  SELECT d.dimension, d.value,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_unpriced_calls,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_micros,
         extract(epoch FROM max(c.month_end) - max(c.month_start)) / greatest(extract(epoch FROM max(c.at) - max(c.month_start)), 1) AS month_scale
    FROM cutoffs c
   CROSS JOIN LATERAL ai_cost_internal.dimension_slices(
           least(c.previous_week_start, c.previous_month_start),
           ARRAY[c.week_start, c.previous_week_start, c.month_start, c.previous_month_start, c.previous_month_same_point],
           ARRAY['provider', 'model', 'tenant', 'feature']) AS r
   CROSS JOIN LATERAL (SELECT r.dimension, r.value UNION ALL SELECT 'total', NULL WHERE r.dimension = 'provider') AS d
   GROUP BY d.dimension, d.value
), known AS (
  -- A figure with calls behind it and none priced is unknown, not 0.
  SELECT dimension, value, last_7d_unpriced_calls, previous_7d_unpriced_calls, month_to_date_unpriced_calls,
         last_month_unpriced_calls, month_scale,
         CASE WHEN last_7d_calls = 0 OR last_7d_calls <> last_7d_unpriced_calls THEN last_7d_micros END AS last_7d_micros,
         CASE WHEN previous_7d_calls = 0 OR previous_7d_calls <> previous_7d_unpriced_calls THEN previous_7d_micros END AS previous_7d_micros,
         CASE WHEN month_to_date_calls = 0 OR month_to_date_calls <> month_to_date_unpriced_calls THEN month_to_date_micros END AS month_to_date_micros,
         CASE WHEN last_month_calls = 0 OR last_month_calls <> last_month_unpriced_calls THEN last_month_micros END AS last_month_micros,
         CASE WHEN last_month_to_date_calls = 0 OR last_month_to_date_calls <> last_month_to_date_unpriced_calls
              THEN last_month_to_date_micros END AS last_month_to_date_micros
    FROM summed
   WHERE dimension = 'total' OR last_7d_calls <> 0 OR previous_7d_calls <> 0
      OR month_to_date_calls <> 0 OR last_month_calls <> 0
)
SELECT dimension, value, last_7d_micros, previous_7d_micros,
       round((last_7d_micros - previous_7d_micros)::numeric / nullif(previous_7d_micros, 0), 6) AS change_7d,
       month_to_date_micros, last_month_micros, last_month_to_date_micros,
       round(month_to_date_micros * month_scale::numeric)::bigint AS projected_month_micros,
       last_7d_unpriced_calls, previous_7d_unpriced_calls, month_to_date_unpriced_calls, last_month_unpriced_calls
  FROM known;
CREATE UNIQUE INDEX mv_spend_trends_key_idx ON ai_cost.mv_spend_trends (dimension, value) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_trends IS 'Spend trends for the total and per provider, model, tenant and feature: last 7 days vs the 7 before (change_7d = relative change), UTC month to date vs last month (whole, and to the same point), and month to date projected linearly to month end. Rebuilt by ai_cost.refresh(). Read ai_cost.spend_trends.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.dimension IS 'total (one row for all calls), provider, model, tenant or feature.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.value IS 'The provider, model, tenant or feature; NULL for the total and for calls without one.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_7d_micros IS 'Spend in the last 168 UTC hours up to and including the hour of the last ai_cost.refresh(), in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.previous_7d_micros IS 'Spend in the 168 UTC hours before those, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see previous_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.change_7d IS 'Relative change, (last_7d_micros - previous_7d_micros) / previous_7d_micros, 6 decimals (0.1 = +10%); NULL when previous_7d_micros is 0 or either is NULL.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.month_to_date_micros IS 'Spend from the start of the current UTC calendar month to the last ai_cost.refresh(), in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see month_to_date_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_micros IS 'Spend in the whole previous UTC calendar month, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_month_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_to_date_micros IS 'Spend in the previous UTC calendar month up to the same point (as far into it as the last refresh is into this month), to compare with month_to_date_micros; in micro-dollars (1 = $0.000001). NULL when that part had calls and none of them is priced; 0 = free, or no calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.projected_month_micros IS 'month_to_date_micros extrapolated linearly to the end of the UTC month, in micro-dollars (1 = $0.000001); NULL when month_to_date_micros is NULL.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_7d_unpriced_calls IS 'Calls in the last 7 days (as last_7d_micros) without a price: their cost is unknown and not in last_7d_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.previous_7d_unpriced_calls IS 'Calls in the 7 days before (as previous_7d_micros) without a price: their cost is not in previous_7d_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.month_to_date_unpriced_calls IS 'Calls this UTC month without a price: their cost is not in month_to_date_micros or projected_month_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_unpriced_calls IS 'Calls in the previous UTC month without a price: their cost is not in last_month_micros.';
CREATE VIEW ai_cost.spend_trends AS
SELECT dimension, value, last_7d_micros, previous_7d_micros, change_7d, month_to_date_micros, last_month_micros,
       last_month_to_date_micros, projected_month_micros, last_7d_unpriced_calls, previous_7d_unpriced_calls,
       month_to_date_unpriced_calls, last_month_unpriced_calls
  FROM ai_cost.mv_spend_trends;
COMMENT ON VIEW ai_cost.spend_trends IS 'Spend trends (7 days vs the 7 before, month to date vs last month, projection to month end) for the total and per provider, model, tenant and feature. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.spend_trends.dimension IS 'total (one row for all calls), provider, model, tenant or feature.';
COMMENT ON COLUMN ai_cost.spend_trends.value IS 'The provider, model, tenant or feature; NULL for the total and for calls without one.';
COMMENT ON COLUMN ai_cost.spend_trends.last_7d_micros IS 'Spend in the last 168 UTC hours up to and including the hour of the last ai_cost.refresh(), in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.previous_7d_micros IS 'Spend in the 168 UTC hours before those, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see previous_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.change_7d IS 'Relative change, (last_7d_micros - previous_7d_micros) / previous_7d_micros, 6 decimals (0.1 = +10%); NULL when previous_7d_micros is 0 or either is NULL.';
COMMENT ON COLUMN ai_cost.spend_trends.month_to_date_micros IS 'Spend from the start of the current UTC calendar month to the last ai_cost.refresh(), in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see month_to_date_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_micros IS 'Spend in the whole previous UTC calendar month, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_month_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_to_date_micros IS 'Spend in the previous UTC calendar month up to the same point (as far into it as the last refresh is into this month), to compare with month_to_date_micros; in micro-dollars (1 = $0.000001). NULL when that part had calls and none of them is priced; 0 = free, or no calls.';
COMMENT ON COLUMN ai_cost.spend_trends.projected_month_micros IS 'month_to_date_micros extrapolated linearly to the end of the UTC month, in micro-dollars (1 = $0.000001); NULL when month_to_date_micros is NULL.';
COMMENT ON COLUMN ai_cost.spend_trends.last_7d_unpriced_calls IS 'Calls in the last 7 days (as last_7d_micros) without a price: their cost is unknown and not in last_7d_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.previous_7d_unpriced_calls IS 'Calls in the 7 days before (as previous_7d_micros) without a price: their cost is not in previous_7d_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.month_to_date_unpriced_calls IS 'Calls this UTC month without a price: their cost is not in month_to_date_micros or projected_month_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_unpriced_calls IS 'Calls in the previous UTC month without a price: their cost is not in last_month_micros.';

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

-- Down Migration

SET LOCAL check_function_bodies = off;

-- The refresh lock: a refresh folding meanwhile would count new calls in
-- the hourly rollup and miss them in the model ids filled from it.
SELECT pg_advisory_xact_lock(x'6169636f73745f72'::bigint);

CREATE OR REPLACE FUNCTION ai_cost_internal.dimension_values(
  provider text, model text, operation text, service_tier text, tenant_id text, user_id text, feature text,
  OUT dimension text, OUT value text
) RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES ('provider', provider), ('model', provider OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) model), ('operation', operation),
         ('service_tier', service_tier), ('tenant', tenant_id), ('user', user_id), ('feature', feature)
$$;
COMMENT ON FUNCTION ai_cost_internal.dimension_values(text, text, text, text, text, text, text) IS 'Internal: the (dimension, value) pairs of a call for ai_cost.spend_daily_by_dimension.';

CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
                                              OUT applied bigint, OUT set_aside bigint, OUT arrived_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  emptied_hourly tid[];
  emptied_daily tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end) u WHERE only_changes IS NULL
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), delta AS (
    -- The hourly groups, each histogram built from the buckets of its changes.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           sum(sign)::bigint AS calls,
           coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
           coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
           coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
           coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens,
           coalesce(sum(sign * cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(sum(sign * cache_write_tokens), 0)::bigint AS cache_write_tokens,
           coalesce(sum(sign * reasoning_tokens), 0)::bigint AS reasoning_tokens,
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint AS total_ms_calls,
           coalesce(sum(sign * total_ms), 0)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)) AS total_ms_hist,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL)) AS ttft_ms_hist,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens),
           sum(billed_micros), sum(unbilled_calls)
      FROM delta
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason
    ON CONFLICT (day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = d.calls + excluded.calls,
      unpriced_calls = d.unpriced_calls + excluded.unpriced_calls,
      cost_micros = d.cost_micros + excluded.cost_micros,
      input_tokens = d.input_tokens + excluded.input_tokens,
      output_tokens = d.output_tokens + excluded.output_tokens,
      cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = d.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens,
      billed_micros = d.billed_micros + excluded.billed_micros,
      unbilled_calls = d.unbilled_calls + excluded.unbilled_calls
    RETURNING d.ctid, d.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, sum(sign),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0), coalesce(sum(sign * total_ms), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL))
      FROM folded
     GROUP BY 1, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    -- One pass over the hourly groups into a group per day and value of each
    -- dimension (GROUPING SETS), the pairs ai_cost_internal.dimension_values names.
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'),
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN 'provider' WHEN 31 THEN 'model' WHEN 111 THEN 'operation' WHEN 119 THEN 'service_tier'
                WHEN 123 THEN 'tenant' WHEN 125 THEN 'user' ELSE 'feature' END,
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN provider WHEN 31 THEN provider || '/' || model WHEN 111 THEN operation
                WHEN 119 THEN service_tier WHEN 123 THEN tenant_id WHEN 125 THEN user_id ELSE feature END,
           sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta
     GROUP BY date_trunc('day', hour, 'UTC'),
              GROUPING SETS ((provider), (provider, model), (operation), (service_tier), (tenant_id), (user_id), (feature))
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM folded
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed) - (SELECT count(*) FROM aside),
         (SELECT count(*) FROM aside),
         (SELECT array_agg(a.call_id) FROM arrived a),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
         emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_daily IS NOT NULL THEN
    DELETE FROM ai_cost_internal.calls_daily WHERE ctid = ANY (emptied_daily) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls read; run by ai_cost_internal.refresh_rollups().';

COMMENT ON TABLE ai_cost_internal.dimensions_daily IS 'Internal: daily (UTC) calls, spend and tokens per dimension and value (one row per provider, model, operation, service tier, tenant, user and feature a day), maintained by ai_cost.refresh(); what ai_cost.spend_daily_by_dimension reads.';

DELETE FROM ai_cost_internal.dimensions_daily WHERE dimension = 'model_id';

CREATE OR REPLACE VIEW ai_cost.spend_daily_by_dimension AS
SELECT day, dimension, value, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM ai_cost_internal.dimensions_daily_live;

DROP VIEW ai_cost.spend_share, ai_cost.top_spenders, ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends;
DROP VIEW ai_cost_internal.window_dimensions;
DROP FUNCTION ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]);

CREATE TABLE ai_cost_internal.calls_daily (
  day timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  operation text NOT NULL,
  status text NOT NULL,
  service_tier text NOT NULL,
  tenant_id text,
  feature text,
  cached boolean NOT NULL,
  unpriced_reason text,
  calls bigint NOT NULL,
  unpriced_calls bigint NOT NULL,
  cost_micros bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  reasoning_tokens bigint NOT NULL,
  billed_micros bigint NOT NULL,
  unbilled_calls bigint NOT NULL
) WITH (fillfactor = 70);

CREATE UNIQUE INDEX calls_daily_key_idx ON ai_cost_internal.calls_daily
  (day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason)
  NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost_internal.calls_daily IS 'Internal: daily (UTC) rollup of ai_cost.calls by every dimension but the user (day is the start of the UTC day): calls, cost, tokens and charges, maintained with calls_hourly by ai_cost.refresh(); what the windowed materialized views and budgets read.';
CREATE INDEX calls_daily_tenant_idx ON ai_cost_internal.calls_daily (tenant_id, day);
CREATE INDEX calls_daily_feature_idx ON ai_cost_internal.calls_daily (feature, day);
INSERT INTO ai_cost_internal.calls_daily
SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature, cached,
       unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
       sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), sum(billed_micros), sum(unbilled_calls)
  FROM ai_cost.calls_hourly
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;

CREATE VIEW ai_cost_internal.calls_daily_live AS
SELECT day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason,
       calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens, billed_micros, unbilled_calls
  FROM ai_cost_internal.calls_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), provider, model, operation, status, service_tier, tenant_id,
       feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign * billed_micros), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_daily_live IS 'Internal: the daily calls rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE OR REPLACE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  TRUNCATE ai_cost_internal.call_changes, ai_cost_internal.set_aside_changes, ai_cost_internal.unfolded_ids,
           ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.calls_daily, ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  IF ai_cost_internal.calls_are_distributed() THEN
    TRUNCATE ai_cost_internal.shard_call_changes;
  END IF;
  UPDATE ai_cost_internal.fold_state SET folded_through = ai_cost_internal.last_drawn_call_id();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.truncate_rollups() IS 'Trigger: empties the rollups and pending changes when ai_cost.calls is truncated.';

CREATE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off SET jit = off AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost_internal.split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.provider, d.model, d.operation, d.status, d.service_tier, d.tenant_id, d.feature, d.cached,
           d.unpriced_reason, d.calls, d.unpriced_calls, d.cost_micros
      FROM ai_cost_internal.calls_daily_live d
     WHERE d.day >= first AND d.day <> ALL (split);
  FOREACH day IN ARRAY split LOOP
    RETURN QUERY
      SELECT h.hour, h.provider, h.model, h.operation, h.status, h.service_tier, h.tenant_id, h.feature, h.cached,
             h.unpriced_reason, h.calls, h.unpriced_calls, h.cost_micros
        FROM ai_cost.calls_hourly_live h
       WHERE h.hour >= greatest(day, first) AND h.hour < day + interval '24 hours';
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_slices(timestamptz, timestamptz[]) IS 'Internal: rollup rows from the hour of since on, daily except hourly in the UTC days that since or a cut falls inside; start is the day or hour.';

CREATE VIEW ai_cost_internal.window_calls AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.calls_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_calls IS 'Internal: rollup rows (all dimensions but the user) of the 24h, 7d and 30d windows, labelled; a row belongs to every window it starts in.';

CREATE MATERIALIZED VIEW ai_cost.mv_spend_share AS
WITH grouped AS (
  SELECT r.label AS "window",
         CASE WHEN GROUPING(r.provider) = 0 THEN 'provider' WHEN GROUPING(r.model) = 0 THEN 'model'
              WHEN GROUPING(r.operation) = 0 THEN 'operation' WHEN GROUPING(r.tenant_id) = 0 THEN 'tenant'
              ELSE 'feature' END AS dimension,
         CASE WHEN GROUPING(r.provider) = 0 THEN r.provider WHEN GROUPING(r.model) = 0 THEN r.model
              WHEN GROUPING(r.operation) = 0 THEN r.operation WHEN GROUPING(r.tenant_id) = 0 THEN r.tenant_id
              ELSE r.feature END AS value,
         sum(r.calls)::bigint AS calls, coalesce(sum(r.calls) FILTER (WHERE r.status = 'success'), 0)::bigint AS successes,
         sum(r.cost_micros)::bigint AS cost_micros, sum(r.unpriced_calls)::bigint AS unpriced_calls
    FROM ai_cost_internal.window_calls r
   GROUP BY GROUPING SETS ((r.label, r.provider), (r.label, r.model), (r.label, r.operation),
                           (r.label, r.tenant_id), (r.label, r.feature))
  HAVING sum(r.calls) <> 0
  UNION ALL
  SELECT u.label, 'user', u.user_id, sum(u.calls)::bigint, sum(u.successes)::bigint, sum(u.cost_micros)::bigint,
         sum(u.unpriced_calls)::bigint
    FROM ai_cost_internal.window_users u
   GROUP BY u.label, u.user_id
  HAVING sum(u.calls) <> 0
)
SELECT "window", dimension, value, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros, unpriced_calls,
       CASE WHEN calls <> unpriced_calls
            THEN round(cost_micros::numeric / nullif(sum(cost_micros) OVER (PARTITION BY "window", dimension), 0), 6)
       END AS share_of_cost
  FROM grouped;
CREATE UNIQUE INDEX mv_spend_share_key_idx ON ai_cost.mv_spend_share ("window", dimension, value) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.spend_share.';
COMMENT ON COLUMN ai_cost.mv_spend_share.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_spend_share.dimension IS 'What value is: provider, model, operation, tenant, user or feature. The rows of one dimension and window add up to all calls of the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.value IS 'The provider, model, operation, tenant, user or feature; NULL: calls without one.';
COMMENT ON COLUMN ai_cost.mv_spend_share.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.successes IS 'Calls with status success in the window.';
COMMENT ON COLUMN ai_cost.mv_spend_share.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_share.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_share.share_of_cost IS 'cost_micros as a fraction of the priced spend of the dimension''s values in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';
CREATE VIEW ai_cost.spend_share AS
SELECT "window", dimension, value, calls, successes, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_spend_share;
COMMENT ON VIEW ai_cost.spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature (column dimension) over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.spend_share.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.spend_share.dimension IS 'What value is: provider, model, operation, tenant, user or feature. The rows of one dimension and window add up to all calls of the window.';
COMMENT ON COLUMN ai_cost.spend_share.value IS 'The provider, model, operation, tenant, user or feature; NULL: calls without one.';
COMMENT ON COLUMN ai_cost.spend_share.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.spend_share.successes IS 'Calls with status success in the window.';
COMMENT ON COLUMN ai_cost.spend_share.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_share.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.spend_share.share_of_cost IS 'cost_micros as a fraction of the priced spend of the dimension''s values in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH users AS MATERIALIZED (
  SELECT label, tenant_id, user_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_users WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM users GROUP BY label
), conversations AS MATERIALIZED (
  SELECT w.label, c.conversation_id AS id, sum(c.calls) AS calls, sum(c.cost_micros) AS cost_micros,
         sum(c.unpriced_calls) AS unpriced_calls
    FROM ai_cost_internal.windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
   WHERE w.label IN ('7d', '30d') AND c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, c.conversation_id
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM users
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM users
   WHERE user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT l.label, 'conversation', top.id, top.calls, top.cost_micros, top.unpriced_calls
    FROM (VALUES ('7d'), ('30d')) AS l(label)
   CROSS JOIN LATERAL (SELECT c.id, c.calls, c.cost_micros, c.unpriced_calls
                         FROM conversations c
                        WHERE c.label = l.label AND c.calls <> 0
                        ORDER BY c.cost_micros DESC, c.calls DESC, c.id
                        LIMIT 100) AS top
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.label, s.kind ORDER BY s.cost_micros DESC, s.calls DESC, s.id) AS rank
    FROM spend s
   WHERE s.calls <> 0
)
SELECT r.label AS "window", r.kind, r.rank, r.id, r.calls::bigint AS calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN r.cost_micros::bigint END AS cost_micros,
       r.unpriced_calls::bigint AS unpriced_calls,
       CASE WHEN r.calls <> r.unpriced_calls THEN round(r.cost_micros / nullif(t.cost_micros, 0), 6) END AS share_of_cost
  FROM ranked r JOIN totals t USING (label)
 WHERE r.rank <= 100;
CREATE UNIQUE INDEX mv_top_spenders_key_idx ON ai_cost.mv_top_spenders ("window", kind, rank);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_top_spenders IS 'Top 100 tenants, users and conversations by spend over the last 7d and 30d, with their share of all spend in the window; rebuilt by ai_cost.refresh(). Read ai_cost.top_spenders.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.mv_top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';
CREATE VIEW ai_cost.top_spenders AS
SELECT "window", kind, rank, id, calls, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_top_spenders;
COMMENT ON VIEW ai_cost.top_spenders IS 'Top 100 tenants, users and conversations (column kind) by spend over the last 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.top_spenders.window IS '7d or 30d: the last 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.top_spenders.kind IS 'What id is: tenant, user or conversation.';
COMMENT ON COLUMN ai_cost.top_spenders.rank IS '1 for the highest spend of its kind in the window, up to 100; ties by calls, then id.';
COMMENT ON COLUMN ai_cost.top_spenders.id IS 'The tenant_id, user_id or conversation_id.';
COMMENT ON COLUMN ai_cost.top_spenders.calls IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.top_spenders.cost_micros IS 'Cost of every attempt in the window, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.top_spenders.unpriced_calls IS 'Calls in the window without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.top_spenders.share_of_cost IS 'cost_micros as a fraction of all priced spend in the window (0.25 = 25%), 6 decimals; NULL when cost_micros is NULL or the window''s spend is 0.';

CREATE MATERIALIZED VIEW ai_cost.mv_spend_trends AS
WITH marks AS (
  SELECT now() AS at,
         date_trunc('hour', now(), 'UTC') - interval '167 hours' AS week_start,
         date_trunc('month', now() AT TIME ZONE 'UTC') AS month_utc
), bounds AS (
  SELECT at, week_start, week_start - interval '168 hours' AS previous_week_start,
         month_utc AT TIME ZONE 'UTC' AS month_start,
         (month_utc - interval '1 month') AT TIME ZONE 'UTC' AS previous_month_start,
         (month_utc + interval '1 month') AT TIME ZONE 'UTC' AS month_end
    FROM marks
), cutoffs AS (
  -- The instant as far into last month as now is into this one.
  SELECT *, previous_month_start + make_interval(secs => extract(epoch FROM at - month_start)) AS previous_month_same_point
    FROM bounds
), summed AS (
  SELECT CASE WHEN GROUPING(r.provider) = 0 THEN 'provider' WHEN GROUPING(r.model) = 0 THEN 'model'
              WHEN GROUPING(r.tenant_id) = 0 THEN 'tenant' WHEN GROUPING(r.feature) = 0 THEN 'feature'
              ELSE 'total' END AS dimension,
         CASE WHEN GROUPING(r.provider) = 0 THEN r.provider WHEN GROUPING(r.model) = 0 THEN r.model
              WHEN GROUPING(r.tenant_id) = 0 THEN r.tenant_id WHEN GROUPING(r.feature) = 0 THEN r.feature END AS value,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_unpriced_calls,
         coalesce(sum(r.calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_calls,
         coalesce(sum(r.unpriced_calls) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_unpriced_calls,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.week_start), 0)::bigint AS last_7d_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_week_start AND r.start < c.week_start), 0)::bigint AS previous_7d_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.month_start), 0)::bigint AS month_to_date_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.month_start), 0)::bigint AS last_month_micros,
         coalesce(sum(r.cost_micros) FILTER (WHERE r.start >= c.previous_month_start AND r.start < c.previous_month_same_point), 0)::bigint AS last_month_to_date_micros,
         extract(epoch FROM max(c.month_end) - max(c.month_start)) / greatest(extract(epoch FROM max(c.at) - max(c.month_start)), 1) AS month_scale
    FROM cutoffs c
   CROSS JOIN LATERAL ai_cost_internal.calls_slices(
           least(c.previous_week_start, c.previous_month_start),
           ARRAY[c.week_start, c.previous_week_start, c.month_start, c.previous_month_start, c.previous_month_same_point]) AS r
   GROUP BY GROUPING SETS ((), (r.provider), (r.model), (r.tenant_id), (r.feature))
  HAVING count(*) > 0
), known AS (
  -- A figure with calls behind it and none priced is unknown, not 0.
  SELECT dimension, value, last_7d_unpriced_calls, previous_7d_unpriced_calls, month_to_date_unpriced_calls,
         last_month_unpriced_calls, month_scale,
         CASE WHEN last_7d_calls = 0 OR last_7d_calls <> last_7d_unpriced_calls THEN last_7d_micros END AS last_7d_micros,
         CASE WHEN previous_7d_calls = 0 OR previous_7d_calls <> previous_7d_unpriced_calls THEN previous_7d_micros END AS previous_7d_micros,
         CASE WHEN month_to_date_calls = 0 OR month_to_date_calls <> month_to_date_unpriced_calls THEN month_to_date_micros END AS month_to_date_micros,
         CASE WHEN last_month_calls = 0 OR last_month_calls <> last_month_unpriced_calls THEN last_month_micros END AS last_month_micros,
         CASE WHEN last_month_to_date_calls = 0 OR last_month_to_date_calls <> last_month_to_date_unpriced_calls
              THEN last_month_to_date_micros END AS last_month_to_date_micros
    FROM summed
   WHERE dimension = 'total' OR last_7d_calls <> 0 OR previous_7d_calls <> 0
      OR month_to_date_calls <> 0 OR last_month_calls <> 0
)
SELECT dimension, value, last_7d_micros, previous_7d_micros,
       round((last_7d_micros - previous_7d_micros)::numeric / nullif(previous_7d_micros, 0), 6) AS change_7d,
       month_to_date_micros, last_month_micros, last_month_to_date_micros,
       round(month_to_date_micros * month_scale::numeric)::bigint AS projected_month_micros,
       last_7d_unpriced_calls, previous_7d_unpriced_calls, month_to_date_unpriced_calls, last_month_unpriced_calls
  FROM known;
CREATE UNIQUE INDEX mv_spend_trends_key_idx ON ai_cost.mv_spend_trends (dimension, value) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_trends IS 'Spend trends for the total and per provider, model, tenant and feature: last 7 days vs the 7 before (change_7d = relative change), UTC month to date vs last month (whole, and to the same point), and month to date projected linearly to month end. Rebuilt by ai_cost.refresh(). Read ai_cost.spend_trends.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.dimension IS 'total (one row for all calls), provider, model, tenant or feature.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.value IS 'The provider, model, tenant or feature; NULL for the total and for calls without one.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_7d_micros IS 'Spend in the last 168 UTC hours up to and including the hour of the last ai_cost.refresh(), in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.previous_7d_micros IS 'Spend in the 168 UTC hours before those, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see previous_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.change_7d IS 'Relative change, (last_7d_micros - previous_7d_micros) / previous_7d_micros, 6 decimals (0.1 = +10%); NULL when previous_7d_micros is 0 or either is NULL.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.month_to_date_micros IS 'Spend from the start of the current UTC calendar month to the last ai_cost.refresh(), in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see month_to_date_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_micros IS 'Spend in the whole previous UTC calendar month, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_month_unpriced_calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_to_date_micros IS 'Spend in the previous UTC calendar month up to the same point (as far into it as the last refresh is into this month), to compare with month_to_date_micros; in micro-dollars (1 = $0.000001). NULL when that part had calls and none of them is priced; 0 = free, or no calls.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.projected_month_micros IS 'month_to_date_micros extrapolated linearly to the end of the UTC month, in micro-dollars (1 = $0.000001); NULL when month_to_date_micros is NULL.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_7d_unpriced_calls IS 'Calls in the last 7 days (as last_7d_micros) without a price: their cost is unknown and not in last_7d_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.previous_7d_unpriced_calls IS 'Calls in the 7 days before (as previous_7d_micros) without a price: their cost is not in previous_7d_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.month_to_date_unpriced_calls IS 'Calls this UTC month without a price: their cost is not in month_to_date_micros or projected_month_micros.';
COMMENT ON COLUMN ai_cost.mv_spend_trends.last_month_unpriced_calls IS 'Calls in the previous UTC month without a price: their cost is not in last_month_micros.';
CREATE VIEW ai_cost.spend_trends AS
SELECT dimension, value, last_7d_micros, previous_7d_micros, change_7d, month_to_date_micros, last_month_micros,
       last_month_to_date_micros, projected_month_micros, last_7d_unpriced_calls, previous_7d_unpriced_calls,
       month_to_date_unpriced_calls, last_month_unpriced_calls
  FROM ai_cost.mv_spend_trends;
COMMENT ON VIEW ai_cost.spend_trends IS 'Spend trends (7 days vs the 7 before, month to date vs last month, projection to month end) for the total and per provider, model, tenant and feature. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.spend_trends.dimension IS 'total (one row for all calls), provider, model, tenant or feature.';
COMMENT ON COLUMN ai_cost.spend_trends.value IS 'The provider, model, tenant or feature; NULL for the total and for calls without one.';
COMMENT ON COLUMN ai_cost.spend_trends.last_7d_micros IS 'Spend in the last 168 UTC hours up to and including the hour of the last ai_cost.refresh(), in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.previous_7d_micros IS 'Spend in the 168 UTC hours before those, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see previous_7d_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.change_7d IS 'Relative change, (last_7d_micros - previous_7d_micros) / previous_7d_micros, 6 decimals (0.1 = +10%); NULL when previous_7d_micros is 0 or either is NULL.';
COMMENT ON COLUMN ai_cost.spend_trends.month_to_date_micros IS 'Spend from the start of the current UTC calendar month to the last ai_cost.refresh(), in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see month_to_date_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_micros IS 'Spend in the whole previous UTC calendar month, in micro-dollars (1 = $0.000001). NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see last_month_unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_to_date_micros IS 'Spend in the previous UTC calendar month up to the same point (as far into it as the last refresh is into this month), to compare with month_to_date_micros; in micro-dollars (1 = $0.000001). NULL when that part had calls and none of them is priced; 0 = free, or no calls.';
COMMENT ON COLUMN ai_cost.spend_trends.projected_month_micros IS 'month_to_date_micros extrapolated linearly to the end of the UTC month, in micro-dollars (1 = $0.000001); NULL when month_to_date_micros is NULL.';
COMMENT ON COLUMN ai_cost.spend_trends.last_7d_unpriced_calls IS 'Calls in the last 7 days (as last_7d_micros) without a price: their cost is unknown and not in last_7d_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.previous_7d_unpriced_calls IS 'Calls in the 7 days before (as previous_7d_micros) without a price: their cost is not in previous_7d_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.month_to_date_unpriced_calls IS 'Calls this UTC month without a price: their cost is not in month_to_date_micros or projected_month_micros.';
COMMENT ON COLUMN ai_cost.spend_trends.last_month_unpriced_calls IS 'Calls in the previous UTC month without a price: their cost is not in last_month_micros.';

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
      ai_cost_internal.calls_slices(timestamptz, timestamptz[]),
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
