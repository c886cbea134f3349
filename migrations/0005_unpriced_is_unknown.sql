-- Up Migration
--
-- Unpriced is not free (sql/ holds each definition; this step brings the
-- schema there): every figure a BI view reports is the sum over the priced
-- calls behind it with the unpriced calls counted beside it, and NULL when
-- there are calls and none of them is priced. activity_hourly and
-- spend_trends gain the unpriced counts they lacked, budget_status says
-- 'unknown' when nothing in the period is priced, and reprice_preview counts
-- the unpriced calls before and after. A call without a price in force says
-- so without naming its instant, so one model's unpriced calls share a
-- rollup row. Every column a BI login can read has a comment.
--
-- The internal rollups gain the counts the views need; they are filled from
-- ai_cost.calls_hourly, which holds the same folded changes.

SET LOCAL check_function_bodies = off;

ALTER TABLE ai_cost_internal.activity_hourly ADD COLUMN unpriced_calls bigint NOT NULL DEFAULT 0;
UPDATE ai_cost_internal.activity_hourly a
   SET unpriced_calls = h.unpriced_calls
  FROM (SELECT hour, status, cached, sum(unpriced_calls) AS unpriced_calls
          FROM ai_cost.calls_hourly GROUP BY hour, status, cached) AS h
 WHERE a.hour = h.hour AND a.status = h.status AND a.cached = h.cached AND h.unpriced_calls <> 0;
ALTER TABLE ai_cost_internal.activity_hourly ALTER COLUMN unpriced_calls DROP DEFAULT;

ALTER TABLE ai_cost_internal.dimensions_daily ADD COLUMN unpriced_successes bigint NOT NULL DEFAULT 0;
UPDATE ai_cost_internal.dimensions_daily x
   SET unpriced_successes = s.unpriced_successes
  FROM (SELECT date_trunc('day', h.hour, 'UTC') AS day, v.dimension, v.value, sum(h.unpriced_calls) AS unpriced_successes
          FROM ai_cost.calls_hourly h
         CROSS JOIN LATERAL ai_cost_internal.dimension_values(h.provider, h.model, h.operation, h.service_tier,
                                                              h.tenant_id, h.user_id, h.feature) AS v
         WHERE h.status = 'success'
         GROUP BY 1, v.dimension, v.value) AS s
 WHERE x.day = s.day AND x.dimension = s.dimension AND x.value IS NOT DISTINCT FROM s.value AND s.unpriced_successes <> 0;
ALTER TABLE ai_cost_internal.dimensions_daily ALTER COLUMN unpriced_successes DROP DEFAULT;

-- The windowed materialized views change their columns: built again below.
DROP VIEW ai_cost.spend_share, ai_cost.top_spenders, ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends;

COMMENT ON COLUMN ai_cost.tenant_discounts.id IS 'Discount id; ai_cost.calls.discount_id names the row applied to a call.';

COMMENT ON COLUMN ai_cost.tenant_discounts.tenant_id IS 'The tenant whose calls get the discount.';

COMMENT ON COLUMN ai_cost.tenant_discounts.valid_from IS 'First instant the discount applies (inclusive), compared with ai_cost.calls.created_at.';

COMMENT ON COLUMN ai_cost.tenant_discounts.valid_to IS 'Instant the discount stops applying (exclusive); NULL while in force.';

COMMENT ON COLUMN ai_cost.tenant_discounts.note IS 'Free text, e.g. the contract it comes from.';

COMMENT ON COLUMN ai_cost.tenant_discounts.created_at IS 'When this row was inserted.';

COMMENT ON COLUMN ai_cost.model_aliases.provider IS 'Provider id the alias applies to.';

COMMENT ON COLUMN ai_cost.model_aliases.note IS 'Free text, e.g. why the alias exists.';

COMMENT ON COLUMN ai_cost.model_patterns.id IS 'Pattern id.';

COMMENT ON COLUMN ai_cost.model_patterns.provider IS 'Provider id whose model ids the pattern rewrites.';

COMMENT ON COLUMN ai_cost.model_patterns.note IS 'Free text, e.g. what the pattern is for.';

-- Why no price applies to a call: the most specific of unknown provider, no
-- price for the model, none for its service tier, none in force at that time.
-- The reason names no instant (the call's created_at says when), so the calls
-- of one model share it, and so one row of each rollup, not one per call.
CREATE OR REPLACE FUNCTION ai_cost_internal.no_price_reason(provider text, model text, service_tier text, at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  lookup_model text := coalesce(ai_cost_internal.pattern_model(provider, model), model);
BEGIN
  IF NOT EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = provider)
     AND NOT EXISTS (SELECT FROM ai_cost.prices p WHERE p.provider = provider) THEN
    RETURN 'unknown provider ' || provider;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = provider AND l.model = lookup_model) THEN
    RETURN 'no price for model ' || provider || '/' || model;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l
                  WHERE l.provider = provider AND l.model = lookup_model AND l.service_tier = service_tier) THEN
    RETURN 'no ' || service_tier || '-tier price for model ' || provider || '/' || model;
  END IF;
  RETURN 'no price for model ' || provider || '/' || model || ' in force at the time of the call';
END
$$;

COMMENT ON COLUMN ai_cost.reprice_runs.id IS 'Run id; ai_cost.reprice_audit.run_id names it.';

COMMENT ON COLUMN ai_cost.reprice_runs.started_at IS 'When the run was started.';

COMMENT ON COLUMN ai_cost.reprice_runs.updated_at IS 'When the run last processed a batch.';

COMMENT ON COLUMN ai_cost.reprice_audit.id IS 'Audit row id.';

COMMENT ON COLUMN ai_cost.reprice_audit.old_cost_micros IS 'The call''s cost_micros before, in micro-dollars (1 = $0.000001); NULL: it was unpriced.';

COMMENT ON COLUMN ai_cost.reprice_audit.new_cost_micros IS 'The call''s cost_micros after, in micro-dollars (1 = $0.000001); NULL: it is unpriced.';

COMMENT ON COLUMN ai_cost.reprice_audit.old_price_id IS 'The ai_cost.prices row that priced the call before (NULL: none).';

COMMENT ON COLUMN ai_cost.reprice_audit.new_price_id IS 'The ai_cost.prices row that prices it after (NULL: none).';

COMMENT ON COLUMN ai_cost.reprice_audit.old_unpriced_reason IS 'Why the call had no cost before; NULL when it was priced.';

COMMENT ON COLUMN ai_cost.reprice_audit.new_unpriced_reason IS 'Why the call has no cost after; NULL when it is priced.';

COMMENT ON COLUMN ai_cost.reprice_audit.changed_at IS 'When the change was made.';

DROP FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean);
-- What a reprice would change, per model, without writing anything.
CREATE FUNCTION ai_cost.reprice_preview(
  from_time timestamptz, to_time timestamptz,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint, old_unpriced_calls bigint, new_unpriced_calls bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.provider, c.model, count(*),
         count(*) FILTER (WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id),
         sum(c.cost_micros), sum(n.cost_micros),
         coalesce(sum(n.cost_micros - c.cost_micros), 0),
         count(*) FILTER (WHERE c.cost_micros IS NULL AND n.cost_micros IS NOT NULL),
         count(*) FILTER (WHERE c.cost_micros IS NOT NULL AND n.cost_micros IS NULL),
         count(*) FILTER (WHERE c.cost_micros IS NULL), count(*) FILTER (WHERE n.cost_micros IS NULL)
    FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
   WHERE c.created_at >= reprice_preview.from_time AND c.created_at < reprice_preview.to_time
     AND (reprice_preview.provider IS NULL OR c.provider = reprice_preview.provider)
     AND (reprice_preview.model IS NULL OR c.model = reprice_preview.model)
     AND (NOT reprice_preview.only_unpriced OR c.cost_micros IS NULL)
   GROUP BY c.provider, c.model
   ORDER BY c.provider, c.model
$$;

COMMENT ON FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean) IS 'Dry run of a reprice: per provider/model, calls examined and changed; old and new cost, each the sum over the calls priced then (NULL when none is), with the unpriced calls counted beside them; delta over the calls priced both before and after; calls newly priced and newly unpriced. Writes nothing.';

COMMENT ON COLUMN ai_cost.calls_hourly.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';

COMMENT ON COLUMN ai_cost.conversations_hourly.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';

-- One statement folds the netted changes (all that are committed, or the
-- ones at the given addresses) into every rollup from one hourly grouping of
-- them, and sets aside what must not be folded (see set_aside_changes).
-- Groups that reach zero calls are found from the upserts' own RETURNING and
-- deleted. Planned for its arguments every time, so that a list of addresses
-- is read by a TID scan and no list by a plain one.
CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], OUT applied bigint, OUT set_aside bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
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
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Every part sees the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*,
              CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                   THEN ai_cost_internal.ceiling_breach(c) END AS refusal
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), cells AS (
    -- One row per hourly group and pair of latency buckets: plain sums, no
    -- arrays built per change.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           ai_cost.latency_bucket(total_ms) AS total_bucket,
           ai_cost.latency_bucket(CASE WHEN streamed THEN ttft_ms END) AS ttft_bucket,
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
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
              unpriced_reason, total_bucket, ttft_bucket
  ), delta AS (
    -- The hourly groups, with their histograms built from the (few) buckets their changes touched.
    SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason,
           sum(calls)::bigint AS calls, sum(unpriced_calls)::bigint AS unpriced_calls,
           sum(cost_micros)::bigint AS cost_micros, sum(input_tokens)::bigint AS input_tokens,
           sum(output_tokens)::bigint AS output_tokens, sum(cache_read_tokens)::bigint AS cache_read_tokens,
           sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(total_ms_calls)::bigint AS total_ms_calls, sum(total_ms_sum)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)) AS total_ms_hist,
           sum(ttft_ms_calls)::bigint AS ttft_ms_calls, sum(ttft_ms_sum)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0)) AS ttft_ms_hist
      FROM cells
     GROUP BY hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
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
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
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
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens
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
    SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)),
           sum(ttft_ms_calls), sum(ttft_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0))
      FROM cells
     GROUP BY hour, provider, model, status, cached
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
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'), v.dimension, v.value, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta CROSS JOIN LATERAL ai_cost_internal.dimension_values(provider, model, operation, service_tier, tenant_id, user_id, feature) AS v
     GROUP BY 1, v.dimension, v.value
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
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
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

COMMENT ON COLUMN ai_cost.calls_hourly_live.hour IS 'Start of the UTC hour of the calls.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.provider IS 'Provider id, e.g. openai, anthropic, google.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';

COMMENT ON COLUMN ai_cost.calls_hourly_live.status IS 'Outcome: success, error or cancelled.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS 'Provider service tier: standard, batch, flex or priority.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.tenant_id IS 'Tenant the calls were made for (NULL: none given).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.user_id IS 'End user the calls were made for (NULL: none given).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.feature IS 'Product feature that made the calls (NULL: none given).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.cached IS 'True for answers served from the application''s own cache (no provider call, cost 0).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_reason IS 'Why these calls have no cost (e.g. no price for the model); NULL for priced calls.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.calls IS 'Number of call attempts. A row of changes since the last refresh can be negative (a deleted or repriced call): sum the rows.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.output_tokens IS 'Sum of output tokens (reasoning included).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_read_tokens IS 'Sum of input tokens read from the provider''s prompt cache.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_write_tokens IS 'Sum of input tokens written to the provider''s prompt cache.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.reasoning_tokens IS 'Sum of output tokens spent on reasoning.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_calls IS 'Calls with a total latency (total_ms).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_sum IS 'Sum of total latency in ms; divided by total_ms_calls, the average.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_hist IS 'Histogram of total latency in ms (log-scale buckets, see ai_cost.latency_bucket): merge with ai_cost.histogram_merge, read percentiles with ai_cost.histogram_percentile.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_calls IS 'Streamed calls with a time to first token (ttft_ms).';

COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_sum IS 'Sum of time to first token in ms of streamed calls; divided by ttft_ms_calls, the average.';

COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_hist IS 'Histogram of time to first token in ms of streamed calls (NULL: none): merge with ai_cost.histogram_merge.';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.hour IS 'Start of the UTC hour of the calls.';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.conversation_id IS 'Conversation or session id.';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.tenant_id IS 'Tenant of the calls (NULL: none given).';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.user_id IS 'End user of the calls (NULL: none given).';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.calls IS 'Number of call attempts. A row of changes since the last refresh can be negative (a deleted or repriced call): sum the rows.';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros.';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.conversations_hourly_live.output_tokens IS 'Sum of output tokens (reasoning included).';

-- Daily spend by every dimension, for BI tools to slice. All attempts count
-- toward cost, since providers bill failed calls for the tokens they used;
-- success_cost_micros is the part spent on calls that worked. A cost with
-- calls behind it and not one of them priced is unknown: NULL, never 0.
CREATE OR REPLACE VIEW ai_cost.spend_daily AS
SELECT day, provider, model, operation, service_tier, tenant_id, user_id, feature, calls, successes, errors,
       cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens
  FROM (SELECT (hour AT TIME ZONE 'UTC')::date AS day, provider, model, operation, service_tier,
               tenant_id, user_id, feature,
               sum(calls)::bigint AS calls,
               coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
               coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
               coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
               sum(cost_micros)::bigint AS cost_micros,
               coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0)::bigint AS success_cost_micros,
               sum(unpriced_calls)::bigint AS unpriced_calls,
               coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)::bigint AS unpriced_successes,
               sum(input_tokens)::bigint AS input_tokens,
               sum(output_tokens)::bigint AS output_tokens,
               sum(cache_read_tokens)::bigint AS cache_read_tokens,
               sum(cache_write_tokens)::bigint AS cache_write_tokens,
               sum(reasoning_tokens)::bigint AS reasoning_tokens
          FROM ai_cost.calls_hourly_live
         GROUP BY 1, provider, model, operation, service_tier, tenant_id, user_id, feature
        HAVING sum(calls) <> 0) AS d;

COMMENT ON VIEW ai_cost.spend_daily IS 'Spend per UTC day by provider, model, operation, service tier, tenant, user and feature; always current. cost_micros counts every attempt (failed calls are billed too), success_cost_micros only successes; both are the sum over priced calls, NULL when every call behind them is unpriced, and unpriced_calls counts the calls whose cost is unknown.';

COMMENT ON COLUMN ai_cost.spend_daily.day IS 'UTC calendar day of the calls.';

COMMENT ON COLUMN ai_cost.spend_daily.provider IS 'Provider id, e.g. openai, anthropic, google.';

COMMENT ON COLUMN ai_cost.spend_daily.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.spend_daily.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';

COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS 'Provider service tier: standard, batch, flex or priority.';

COMMENT ON COLUMN ai_cost.spend_daily.tenant_id IS 'Tenant the calls were made for (NULL: none given).';

COMMENT ON COLUMN ai_cost.spend_daily.user_id IS 'End user the calls were made for (NULL: none given).';

COMMENT ON COLUMN ai_cost.spend_daily.feature IS 'Product feature that made the calls (NULL: none given).';

COMMENT ON COLUMN ai_cost.spend_daily.calls IS 'Call attempts: successes + errors + cancelled.';

COMMENT ON COLUMN ai_cost.spend_daily.successes IS 'Calls with status success.';

COMMENT ON COLUMN ai_cost.spend_daily.errors IS 'Calls with status error (billed for the tokens they used).';

COMMENT ON COLUMN ai_cost.spend_daily.cancelled IS 'Calls with status cancelled.';

COMMENT ON COLUMN ai_cost.spend_daily.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_daily.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_daily.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';

COMMENT ON COLUMN ai_cost.spend_daily.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.spend_daily.output_tokens IS 'Sum of output tokens (reasoning included).';

COMMENT ON COLUMN ai_cost.spend_daily.cache_read_tokens IS 'Sum of input tokens read from the provider''s prompt cache.';

COMMENT ON COLUMN ai_cost.spend_daily.cache_write_tokens IS 'Sum of input tokens written to the provider''s prompt cache.';

COMMENT ON COLUMN ai_cost.spend_daily.reasoning_tokens IS 'Sum of output tokens spent on reasoning.';

-- Each reads its rollup plus the changes since the last refresh.
CREATE OR REPLACE VIEW ai_cost.activity_hourly AS
SELECT hour, calls, successes, errors, cancelled, app_cache_hits,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       input_tokens, output_tokens, unpriced_calls
  FROM (SELECT hour, sum(calls)::bigint AS calls,
               coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
               coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
               coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
               coalesce(sum(calls) FILTER (WHERE cached), 0)::bigint AS app_cache_hits,
               sum(cost_micros)::bigint AS cost_micros,
               sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
               sum(unpriced_calls)::bigint AS unpriced_calls
          FROM (SELECT hour, status, cached, calls, cost_micros, input_tokens, output_tokens, unpriced_calls
                  FROM ai_cost_internal.activity_hourly
                UNION ALL
                SELECT date_trunc('hour', created_at, 'UTC'), status, cached, sign, coalesce(sign * cost_micros, 0),
                       coalesce(sign * input_tokens, 0), coalesce(sign * output_tokens, 0),
                       CASE WHEN cost_micros IS NULL THEN sign ELSE 0 END
                  FROM ai_cost_internal.call_changes) AS a
         GROUP BY hour
        HAVING sum(calls) <> 0) AS h;

COMMENT ON VIEW ai_cost.activity_hourly IS 'Calls, failures, app-cache hits, tokens and spend per UTC hour; always current. cost_micros is the sum over priced calls, NULL when every call of the hour is unpriced; unpriced_calls counts the calls whose cost is unknown.';

COMMENT ON COLUMN ai_cost.activity_hourly.hour IS 'Start of the UTC hour of the calls.';

COMMENT ON COLUMN ai_cost.activity_hourly.calls IS 'Call attempts: successes + errors + cancelled.';

COMMENT ON COLUMN ai_cost.activity_hourly.successes IS 'Calls with status success.';

COMMENT ON COLUMN ai_cost.activity_hourly.errors IS 'Calls with status error (billed for the tokens they used).';

COMMENT ON COLUMN ai_cost.activity_hourly.cancelled IS 'Calls with status cancelled.';

COMMENT ON COLUMN ai_cost.activity_hourly.app_cache_hits IS 'Calls answered from the application''s own cache (no provider call, cost 0); counted in calls too.';

COMMENT ON COLUMN ai_cost.activity_hourly.cost_micros IS 'Cost of every attempt in the hour, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.activity_hourly.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.activity_hourly.output_tokens IS 'Sum of output tokens (reasoning included).';

COMMENT ON COLUMN ai_cost.activity_hourly.unpriced_calls IS 'Calls in the hour without a price: their cost is unknown and not in cost_micros.';

COMMENT ON COLUMN ai_cost.unpriced_models.provider IS 'Provider id of the unpriced calls.';

COMMENT ON COLUMN ai_cost.unpriced_models.model IS 'Model id the calls reported: add a price for it to ai_cost.prices (or an alias), then reprice.';

COMMENT ON COLUMN ai_cost.unpriced_models.service_tier IS 'Service tier of the calls (each tier needs its own price).';

COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_reason IS 'Why the calls have no cost, e.g. no price for the model, or no price for a token kind they used.';

COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_calls IS 'Number of calls of this model, tier and reason without a cost.';

COMMENT ON COLUMN ai_cost.unpriced_models.input_tokens IS 'Sum of their input tokens: what a price would bill.';

COMMENT ON COLUMN ai_cost.unpriced_models.output_tokens IS 'Sum of their output tokens: what a price would bill.';

COMMENT ON COLUMN ai_cost.unpriced_models.first_hour IS 'Start of the first UTC hour that holds such calls.';

COMMENT ON COLUMN ai_cost.unpriced_models.last_hour IS 'Start of the last UTC hour that holds such calls.';

-- The daily dimension rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live), summed: one row per day, dimension and value.
CREATE VIEW ai_cost_internal.dimensions_daily_live AS
SELECT (day AT TIME ZONE 'UTC')::date AS day, dimension, value,
       sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
       sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
       sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(unpriced_successes)::bigint AS unpriced_successes,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM (SELECT day, dimension, value, calls, successes, errors, cancelled, cost_micros, success_cost_micros,
               unpriced_calls, unpriced_successes, input_tokens, output_tokens
          FROM ai_cost_internal.dimensions_daily
        UNION ALL
        SELECT date_trunc('day', c.created_at, 'UTC'), v.dimension, v.value, c.sign,
               CASE WHEN c.status = 'success' THEN c.sign ELSE 0 END, CASE WHEN c.status = 'error' THEN c.sign ELSE 0 END,
               CASE WHEN c.status = 'cancelled' THEN c.sign ELSE 0 END, coalesce(c.sign * c.cost_micros, 0),
               CASE WHEN c.status = 'success' THEN coalesce(c.sign * c.cost_micros, 0) ELSE 0 END,
               CASE WHEN c.cost_micros IS NULL THEN c.sign ELSE 0 END,
               CASE WHEN c.cost_micros IS NULL AND c.status = 'success' THEN c.sign ELSE 0 END,
               coalesce(c.sign * c.input_tokens, 0), coalesce(c.sign * c.output_tokens, 0)
          FROM ai_cost_internal.call_changes c
         CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                              c.tenant_id, c.user_id, c.feature) AS v) AS d
 GROUP BY day, dimension, value
HAVING sum(calls) <> 0;

COMMENT ON VIEW ai_cost_internal.dimensions_daily_live IS 'Internal: the daily dimension rollup plus the changes since the last refresh, one row per UTC day, dimension and value; costs are sums over priced calls.';

-- Spend per UTC day for one dimension at a time: what a dashboard's "by
-- model" or "top tenants" chart needs, from about as many rows a day as the
-- dimension has values.
CREATE OR REPLACE VIEW ai_cost.spend_daily_by_dimension AS
SELECT day, dimension, value, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM ai_cost_internal.dimensions_daily_live;

COMMENT ON VIEW ai_cost.spend_daily_by_dimension IS 'Spend per UTC day for one dimension at a time: dimension is provider, model (as provider/model), operation, service_tier, tenant, user or feature, value its value (NULL: calls without one). Filter on dimension; always current. cost_micros counts every attempt, success_cost_micros only successes; both are sums over priced calls, NULL when every call behind them is unpriced, and unpriced_calls counts the calls whose cost is unknown.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.day IS 'UTC calendar day of the calls.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.dimension IS 'What value is: provider, model, operation, service_tier, tenant, user or feature. Filter on one: the rows of one dimension add up to the whole day.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.value IS 'The provider, model (as provider/model), operation, service tier, tenant, user or feature; NULL: calls without one.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.calls IS 'Call attempts: successes + errors + cancelled.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.successes IS 'Calls with status success.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.errors IS 'Calls with status error (billed for the tokens they used).';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cancelled IS 'Calls with status cancelled.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.output_tokens IS 'Sum of output tokens (reasoning included).';

-- Whole days: every call has exactly one provider, so the provider rows of
-- a day add up to the day (a few rows a day, against every group of the
-- daily calls rollup before).
CREATE OR REPLACE VIEW ai_cost.spend_by_day AS
SELECT day, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
               sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
               sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
               sum(unpriced_successes)::bigint AS unpriced_successes,
               sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
          FROM ai_cost_internal.dimensions_daily_live
         WHERE dimension = 'provider'
         GROUP BY day) AS d;

COMMENT ON VIEW ai_cost.spend_by_day IS 'Total spend per UTC day: every attempt in cost_micros, successes alone in success_cost_micros; both sums over priced calls, NULL when every call behind them is unpriced; unpriced_calls counts the calls whose cost is unknown. Always current.';

COMMENT ON COLUMN ai_cost.spend_by_day.day IS 'UTC calendar day.';

COMMENT ON COLUMN ai_cost.spend_by_day.calls IS 'Call attempts: successes + errors + cancelled.';

COMMENT ON COLUMN ai_cost.spend_by_day.successes IS 'Calls with status success.';

COMMENT ON COLUMN ai_cost.spend_by_day.errors IS 'Calls with status error (billed for the tokens they used).';

COMMENT ON COLUMN ai_cost.spend_by_day.cancelled IS 'Calls with status cancelled.';

COMMENT ON COLUMN ai_cost.spend_by_day.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_by_day.success_cost_micros IS 'Cost of the successful calls alone, in micro-dollars (1 = $0.000001). NULL when there were successes and none of them is priced (cost unknown); 0 = free, or no successes; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.spend_by_day.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';

COMMENT ON COLUMN ai_cost.spend_by_day.input_tokens IS 'Sum of input tokens (cache reads and writes included).';

COMMENT ON COLUMN ai_cost.spend_by_day.output_tokens IS 'Sum of output tokens (reasoning included).';

-- One pass over the window rows per dimension set (GROUPING SETS), not one
-- copy of each row per dimension.
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

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.provider IS 'Provider id.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.attempts IS 'Call attempts in the window.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.errors IS 'Calls with status error in the window.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.attempts IS 'Call attempts in the window.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.errors IS 'Calls with status error in the window.';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';

COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.provider IS 'Provider id.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.calls IS 'Successful calls with a total latency in the window that reached the provider (app-cache hits excluded).';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.avg_ms IS 'Average total latency of those calls in ms, rounded; NULL: none.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.p50_ms IS 'Median total latency in ms, from log-scale histograms: within 9% of the exact value.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.p95_ms IS '95th percentile of total latency in ms (within 9%).';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.p99_ms IS '99th percentile of total latency in ms (within 9%).';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.streamed_calls IS 'Successful streamed calls with a time to first token in the window.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_avg_ms IS 'Average time to first token of streamed calls in ms, rounded; NULL: none streamed.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p50_ms IS 'Median time to first token of streamed calls in ms (within 9%); NULL: none streamed.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p95_ms IS '95th percentile of time to first token in ms (within 9%); NULL: none streamed.';

COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p99_ms IS '99th percentile of time to first token in ms (within 9%); NULL: none streamed.';

-- Tenants and the total from the daily calls rollup, users from their own,
-- conversations from the conversation rollup (a conversation rarely spans
-- more than an hour or two, so its hourly rows are already few).
CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH calls AS MATERIALIZED (
  SELECT label, tenant_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_calls WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM calls GROUP BY label
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM calls
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM ai_cost_internal.window_users
   WHERE label IN ('7d', '30d') AND user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT w.label, 'conversation', c.conversation_id, sum(c.calls), sum(c.cost_micros), sum(c.unpriced_calls)
    FROM ai_cost_internal.windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
   WHERE w.label IN ('7d', '30d') AND c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, c.conversation_id
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

-- Trends per dimension value (and the total): every bound is a
-- cut of the slices, so each stays exact to the hour; one pass per
-- dimension set (GROUPING SETS).
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

-- Plain views over the materialized views: BI tools that list tables from
-- information_schema (which omits materialized views) see these.
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

COMMENT ON COLUMN ai_cost.error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.error_rate_by_model.provider IS 'Provider id.';

COMMENT ON COLUMN ai_cost.error_rate_by_model.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.error_rate_by_model.attempts IS 'Call attempts in the window.';

COMMENT ON COLUMN ai_cost.error_rate_by_model.errors IS 'Calls with status error in the window.';

COMMENT ON COLUMN ai_cost.error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';

COMMENT ON COLUMN ai_cost.error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.attempts IS 'Call attempts in the window.';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.errors IS 'Calls with status error in the window.';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';

COMMENT ON COLUMN ai_cost.error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

COMMENT ON COLUMN ai_cost.latency_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';

COMMENT ON COLUMN ai_cost.latency_by_model.provider IS 'Provider id.';

COMMENT ON COLUMN ai_cost.latency_by_model.model IS 'Model id as the provider reports it.';

COMMENT ON COLUMN ai_cost.latency_by_model.calls IS 'Successful calls with a total latency in the window that reached the provider (app-cache hits excluded).';

COMMENT ON COLUMN ai_cost.latency_by_model.avg_ms IS 'Average total latency of those calls in ms, rounded; NULL: none.';

COMMENT ON COLUMN ai_cost.latency_by_model.p50_ms IS 'Median total latency in ms, from log-scale histograms: within 9% of the exact value.';

COMMENT ON COLUMN ai_cost.latency_by_model.p95_ms IS '95th percentile of total latency in ms (within 9%).';

COMMENT ON COLUMN ai_cost.latency_by_model.p99_ms IS '99th percentile of total latency in ms (within 9%).';

COMMENT ON COLUMN ai_cost.latency_by_model.streamed_calls IS 'Successful streamed calls with a time to first token in the window.';

COMMENT ON COLUMN ai_cost.latency_by_model.ttft_avg_ms IS 'Average time to first token of streamed calls in ms, rounded; NULL: none streamed.';

COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p50_ms IS 'Median time to first token of streamed calls in ms (within 9%); NULL: none streamed.';

COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p95_ms IS '95th percentile of time to first token in ms (within 9%); NULL: none streamed.';

COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p99_ms IS '99th percentile of time to first token in ms (within 9%); NULL: none streamed.';

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

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status.
CREATE OR REPLACE VIEW ai_cost.budget_status AS
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, p.period_start, p.period_end,
       b.limit_micros, k.spent_micros, s.unpriced_calls,
       b.limit_micros - k.spent_micros AS remaining_micros,
       round(100 * k.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(k.spent_micros * extract(epoch FROM p.period_end - p.period_start)
             / greatest(extract(epoch FROM now() - p.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN k.spent_micros IS NULL THEN 'unknown'
            WHEN k.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * k.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM ai_cost.budgets b
 CROSS JOIN LATERAL (
   SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
          (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
 ) AS p
 CROSS JOIN LATERAL (
   SELECT coalesce(sum(r.calls), 0)::bigint AS calls, coalesce(sum(r.cost_micros), 0)::bigint AS spent_micros,
          coalesce(sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
     FROM (SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'global' AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'tenant' AND d.tenant_id = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.calls, d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'feature' AND d.feature = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT u.calls, u.cost_micros, u.unpriced_calls FROM ai_cost_internal.users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value AND u.day >= p.period_start AND u.day < p.period_end) AS r
 ) AS s
 -- Spend with calls behind it and none of them priced is unknown, not 0.
 CROSS JOIN LATERAL (
   SELECT CASE WHEN s.calls = 0 OR s.calls <> s.unpriced_calls THEN s.spent_micros END AS spent_micros
 ) AS k;

COMMENT ON VIEW ai_cost.budget_status IS 'Each budget in its current UTC period: spend, remaining, percent used, linear projection to period end, highest threshold crossed and status (ok, warning, exceeded, or unknown when nothing in the period is priced). Always current. spent_micros is the sum over priced calls, with unpriced_calls counting the calls whose cost is unknown; when every call of the period is unpriced, spend is unknown: spent_micros and the figures from it are NULL and status is unknown.';

COMMENT ON COLUMN ai_cost.budget_status.budget_id IS 'The ai_cost.budgets row.';

COMMENT ON COLUMN ai_cost.budget_status.name IS 'Name of the budget.';

COMMENT ON COLUMN ai_cost.budget_status.scope IS 'What the budget covers: global (all calls), tenant, user or feature.';

COMMENT ON COLUMN ai_cost.budget_status.scope_value IS 'The tenant_id, user_id or feature covered; NULL for global.';

COMMENT ON COLUMN ai_cost.budget_status.period IS 'day, week (from Monday) or month, in UTC.';

COMMENT ON COLUMN ai_cost.budget_status.period_start IS 'Start of the current period (UTC midnight of the day, of the Monday, or of the 1st of the month).';

COMMENT ON COLUMN ai_cost.budget_status.period_end IS 'End of the current period (exclusive): the start of the next one.';

COMMENT ON COLUMN ai_cost.budget_status.limit_micros IS 'Limit per period, in micro-dollars (1 = $0.000001).';

COMMENT ON COLUMN ai_cost.budget_status.spent_micros IS 'Spend in the current period so far, in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';

COMMENT ON COLUMN ai_cost.budget_status.unpriced_calls IS 'Calls in the current period without a price: their cost is unknown and not in spent_micros.';

COMMENT ON COLUMN ai_cost.budget_status.remaining_micros IS 'limit_micros - spent_micros, in micro-dollars (1 = $0.000001); negative once exceeded; NULL when spent_micros is NULL.';

COMMENT ON COLUMN ai_cost.budget_status.used_percent IS 'spent_micros as a percentage of limit_micros, 2 decimals (can pass 100); NULL when spent_micros is NULL.';

COMMENT ON COLUMN ai_cost.budget_status.projected_micros IS 'spent_micros extrapolated linearly from the time elapsed to the end of the period, in micro-dollars (1 = $0.000001); NULL when spent_micros is NULL.';

COMMENT ON COLUMN ai_cost.budget_status.crossed_percent IS 'The highest alert threshold (of the budget''s alert_at_percent) that spend has reached; NULL: none.';

COMMENT ON COLUMN ai_cost.budget_status.status IS 'exceeded (spend >= limit), warning (an alert threshold reached), ok, or unknown (calls in the period, none of them priced).';

COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';

COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';

COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';

COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'Call changes (inserts, updates, deletes) the last refresh of the rollups folded in.';

COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'Call changes waiting for the next refresh (the live views already count them).';

COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';

COMMENT ON COLUMN ai_cost.call_partitions.partition IS 'The partition table, e.g. ai_cost.calls_2025_01 (not readable by BI logins: read ai_cost.calls).';

COMMENT ON COLUMN ai_cost.call_partitions.range_start IS 'First instant of the UTC month the partition holds (inclusive); NULL for the default partition.';

COMMENT ON COLUMN ai_cost.call_partitions.range_end IS 'First instant of the next UTC month (exclusive); NULL for the default partition.';

COMMENT ON COLUMN ai_cost.call_partitions.is_default IS 'True for the default partition, which holds calls outside every month range.';

COMMENT ON COLUMN ai_cost.call_partitions.estimated_rows IS 'Rows, as estimated by the planner statistics (0 before the first ANALYZE).';

COMMENT ON COLUMN ai_cost.call_partitions.total_bytes IS 'Size on disk in bytes, indexes and TOAST included.';

COMMENT ON COLUMN ai_cost.call_partitions.retention IS 'kept, past retention (older than ai_cost.partition_settings.retain_months: dropped or detached by ai_cost.maintain_partitions()), or default.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

DROP VIEW ai_cost.spend_share, ai_cost.top_spenders, ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends;

-- Why no price applies to a call: the most specific of unknown provider, no
-- price for the model, none for its service tier, none in force at that time.
CREATE OR REPLACE FUNCTION ai_cost_internal.no_price_reason(provider text, model text, service_tier text, at timestamptz)
RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  lookup_model text := coalesce(ai_cost_internal.pattern_model(provider, model), model);
BEGIN
  IF NOT EXISTS (SELECT FROM ai_cost.providers p WHERE p.id = provider)
     AND NOT EXISTS (SELECT FROM ai_cost.prices p WHERE p.provider = provider) THEN
    RETURN 'unknown provider ' || provider;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = provider AND l.model = lookup_model) THEN
    RETURN 'no price for model ' || provider || '/' || model;
  END IF;
  IF NOT EXISTS (SELECT FROM ai_cost_internal.price_lookup l
                  WHERE l.provider = provider AND l.model = lookup_model AND l.service_tier = service_tier) THEN
    RETURN 'no ' || service_tier || '-tier price for model ' || provider || '/' || model;
  END IF;
  RETURN 'no price for model ' || provider || '/' || model || ' in force at ' || at;
END
$$;

DROP FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean);
-- What a reprice would change, per model, without writing anything.
CREATE FUNCTION ai_cost.reprice_preview(
  from_time timestamptz, to_time timestamptz,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.provider, c.model, count(*),
         count(*) FILTER (WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id),
         sum(c.cost_micros), sum(n.cost_micros),
         coalesce(sum(n.cost_micros - c.cost_micros), 0),
         count(*) FILTER (WHERE c.cost_micros IS NULL AND n.cost_micros IS NOT NULL),
         count(*) FILTER (WHERE c.cost_micros IS NOT NULL AND n.cost_micros IS NULL)
    FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
   WHERE c.created_at >= reprice_preview.from_time AND c.created_at < reprice_preview.to_time
     AND (reprice_preview.provider IS NULL OR c.provider = reprice_preview.provider)
     AND (reprice_preview.model IS NULL OR c.model = reprice_preview.model)
     AND (NOT reprice_preview.only_unpriced OR c.cost_micros IS NULL)
   GROUP BY c.provider, c.model
   ORDER BY c.provider, c.model
$$;

COMMENT ON FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean) IS 'Dry run of a reprice: per provider/model, calls examined and changed, old and new cost, delta, calls newly priced and newly unpriced. Writes nothing.';

COMMENT ON COLUMN ai_cost.calls_hourly.cost_micros IS 'Sum of cost_micros of the priced calls, in micro-dollars.';

COMMENT ON COLUMN ai_cost.conversations_hourly.cost_micros IS 'Sum of cost_micros of the priced calls, in micro-dollars.';

-- One statement folds the netted changes (all that are committed, or the
-- ones at the given addresses) into every rollup from one hourly grouping of
-- them, and sets aside what must not be folded (see set_aside_changes).
-- Groups that reach zero calls are found from the upserts' own RETURNING and
-- deleted. Planned for its arguments every time, so that a list of addresses
-- is read by a TID scan and no list by a plain one.
CREATE OR REPLACE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], OUT applied bigint, OUT set_aside bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan AS $$
DECLARE
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
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Every part sees the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*,
              CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                            AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                   THEN ai_cost_internal.ceiling_breach(c) END AS refusal
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), cells AS (
    -- One row per hourly group and pair of latency buckets: plain sums, no
    -- arrays built per change.
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           ai_cost.latency_bucket(total_ms) AS total_bucket,
           ai_cost.latency_bucket(CASE WHEN streamed THEN ttft_ms END) AS ttft_bucket,
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
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
              unpriced_reason, total_bucket, ttft_bucket
  ), delta AS (
    -- The hourly groups, with their histograms built from the (few) buckets their changes touched.
    SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason,
           sum(calls)::bigint AS calls, sum(unpriced_calls)::bigint AS unpriced_calls,
           sum(cost_micros)::bigint AS cost_micros, sum(input_tokens)::bigint AS input_tokens,
           sum(output_tokens)::bigint AS output_tokens, sum(cache_read_tokens)::bigint AS cache_read_tokens,
           sum(cache_write_tokens)::bigint AS cache_write_tokens, sum(reasoning_tokens)::bigint AS reasoning_tokens,
           sum(total_ms_calls)::bigint AS total_ms_calls, sum(total_ms_sum)::bigint AS total_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)) AS total_ms_hist,
           sum(ttft_ms_calls)::bigint AS ttft_ms_calls, sum(ttft_ms_sum)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0)) AS ttft_ms_hist
      FROM cells
     GROUP BY hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
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
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost_internal.calls_daily AS d
    SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
           cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
           sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
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
      reasoning_tokens = d.reasoning_tokens + excluded.reasoning_tokens
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
    SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)),
           sum(ttft_ms_calls), sum(ttft_ms_sum),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0))
      FROM cells
     GROUP BY hour, provider, model, status, cached
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
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens
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
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'), v.dimension, v.value, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens)
      FROM delta CROSS JOIN LATERAL ai_cost_internal.dimension_values(provider, model, operation, service_tier, tenant_id, user_id, feature) AS v
     GROUP BY 1, v.dimension, v.value
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
      output_tokens = x.output_tokens + excluded.output_tokens
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
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features,
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

-- Daily spend by every dimension, for BI tools to slice. All attempts count
-- toward cost, since providers bill failed calls for the tokens they used;
-- success_cost_micros is the part spent on calls that worked.
CREATE OR REPLACE VIEW ai_cost.spend_daily AS
SELECT (hour AT TIME ZONE 'UTC')::date AS day, provider, model, operation, service_tier,
       tenant_id, user_id, feature,
       sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
       coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
       coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
       sum(cost_micros)::bigint AS cost_micros,
       coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0)::bigint AS success_cost_micros,
       sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens,
       sum(output_tokens)::bigint AS output_tokens,
       sum(cache_read_tokens)::bigint AS cache_read_tokens,
       sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens
  FROM ai_cost.calls_hourly_live
 GROUP BY 1, provider, model, operation, service_tier, tenant_id, user_id, feature
HAVING sum(calls) <> 0;

COMMENT ON VIEW ai_cost.spend_daily IS 'Spend per UTC day by provider, model, operation, service tier, tenant, user and feature; always current. cost_micros counts every attempt (failed calls are billed too), success_cost_micros only successes; unpriced calls are counted, not costed.';

-- Each reads its rollup plus the
-- changes since the last refresh.
DROP VIEW ai_cost.activity_hourly;
CREATE VIEW ai_cost.activity_hourly AS
SELECT hour, sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
       coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
       coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
       coalesce(sum(calls) FILTER (WHERE cached), 0)::bigint AS app_cache_hits,
       sum(cost_micros)::bigint AS cost_micros,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM (SELECT hour, status, cached, calls, cost_micros, input_tokens, output_tokens
          FROM ai_cost_internal.activity_hourly
        UNION ALL
        SELECT date_trunc('hour', created_at, 'UTC'), status, cached, sign, coalesce(sign * cost_micros, 0),
               coalesce(sign * input_tokens, 0), coalesce(sign * output_tokens, 0)
          FROM ai_cost_internal.call_changes) AS a
 GROUP BY hour
HAVING sum(calls) <> 0;

COMMENT ON VIEW ai_cost.activity_hourly IS 'Calls, failures, app-cache hits, tokens and spend per UTC hour; always current.';

-- Spend per UTC day for one dimension at a time: what a dashboard's "by
-- model" or "top tenants" chart needs, from about as many rows a day as the
-- dimension has values.
CREATE OR REPLACE VIEW ai_cost.spend_daily_by_dimension AS
SELECT (day AT TIME ZONE 'UTC')::date AS day, dimension, value,
       sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
       sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
       sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM (SELECT day, dimension, value, calls, successes, errors, cancelled, cost_micros, success_cost_micros,
               unpriced_calls, input_tokens, output_tokens
          FROM ai_cost_internal.dimensions_daily
        UNION ALL
        SELECT date_trunc('day', c.created_at, 'UTC'), v.dimension, v.value, c.sign,
               CASE WHEN c.status = 'success' THEN c.sign ELSE 0 END, CASE WHEN c.status = 'error' THEN c.sign ELSE 0 END,
               CASE WHEN c.status = 'cancelled' THEN c.sign ELSE 0 END, coalesce(c.sign * c.cost_micros, 0),
               CASE WHEN c.status = 'success' THEN coalesce(c.sign * c.cost_micros, 0) ELSE 0 END,
               CASE WHEN c.cost_micros IS NULL THEN c.sign ELSE 0 END,
               coalesce(c.sign * c.input_tokens, 0), coalesce(c.sign * c.output_tokens, 0)
          FROM ai_cost_internal.call_changes c
         CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                              c.tenant_id, c.user_id, c.feature) AS v) AS d
 GROUP BY day, dimension, value
HAVING sum(calls) <> 0;

COMMENT ON VIEW ai_cost.spend_daily_by_dimension IS 'Spend per UTC day for one dimension at a time: dimension is provider, model (as provider/model), operation, service_tier, tenant, user or feature, value its value (NULL: calls without one). Filter on dimension; always current. cost_micros counts every attempt, success_cost_micros only successes; unpriced calls are counted, not costed.';

-- Whole days: every call has exactly one provider, so the provider rows of
-- a day add up to the day (a few rows a day, against every group of the
-- daily calls rollup before).
CREATE OR REPLACE VIEW ai_cost.spend_by_day AS
SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
       sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
       sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost.spend_daily_by_dimension
 WHERE dimension = 'provider'
 GROUP BY day;

COMMENT ON VIEW ai_cost.spend_by_day IS 'Total spend per UTC day: every attempt in cost_micros, successes alone in success_cost_micros; always current.';

DROP VIEW ai_cost_internal.dimensions_daily_live;

-- One pass over the window rows per dimension set (GROUPING SETS), not one
-- copy of each row per dimension.
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
SELECT "window", dimension, value, calls, successes, cost_micros, unpriced_calls,
       round(cost_micros::numeric / nullif(sum(cost_micros) OVER (PARTITION BY "window", dimension), 0), 6) AS share_of_cost
  FROM grouped;

CREATE UNIQUE INDEX mv_spend_share_key_idx ON ai_cost.mv_spend_share ("window", dimension, value) NULLS NOT DISTINCT;

COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.spend_share.';

-- Tenants and the total from the daily calls rollup, users from their own,
-- conversations from the conversation rollup (a conversation rarely spans
-- more than an hour or two, so its hourly rows are already few).
CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH calls AS MATERIALIZED (
  SELECT label, tenant_id, calls, cost_micros, unpriced_calls
    FROM ai_cost_internal.window_calls WHERE label IN ('7d', '30d')
), totals AS (
  SELECT label, sum(cost_micros) AS cost_micros FROM calls GROUP BY label
), spend AS (
  SELECT label, 'tenant' AS kind, tenant_id AS id, sum(calls) AS calls, sum(cost_micros) AS cost_micros,
         sum(unpriced_calls) AS unpriced_calls
    FROM calls
   WHERE tenant_id IS NOT NULL
   GROUP BY label, tenant_id
  UNION ALL
  SELECT label, 'user', user_id, sum(calls), sum(cost_micros), sum(unpriced_calls)
    FROM ai_cost_internal.window_users
   WHERE label IN ('7d', '30d') AND user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT w.label, 'conversation', c.conversation_id, sum(c.calls), sum(c.cost_micros), sum(c.unpriced_calls)
    FROM ai_cost_internal.windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
   WHERE w.label IN ('7d', '30d') AND c.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
   GROUP BY w.label, c.conversation_id
), ranked AS (
  SELECT s.*, row_number() OVER (PARTITION BY s.label, s.kind ORDER BY s.cost_micros DESC, s.calls DESC, s.id) AS rank
    FROM spend s
   WHERE s.calls <> 0
)
SELECT r.label AS "window", r.kind, r.rank, r.id, r.calls::bigint AS calls, r.cost_micros::bigint AS cost_micros,
       r.unpriced_calls::bigint AS unpriced_calls,
       round(r.cost_micros / nullif(t.cost_micros, 0), 6) AS share_of_cost
  FROM ranked r JOIN totals t USING (label)
 WHERE r.rank <= 100;

CREATE UNIQUE INDEX mv_top_spenders_key_idx ON ai_cost.mv_top_spenders ("window", kind, rank);

COMMENT ON MATERIALIZED VIEW ai_cost.mv_top_spenders IS 'Top 100 tenants, users and conversations by spend over the last 7d and 30d, with their share of all spend in the window; rebuilt by ai_cost.refresh(). Read ai_cost.top_spenders.';

-- Trends per dimension value (and the total): every bound is a
-- cut of the slices, so each stays exact to the hour; one pass per
-- dimension set (GROUPING SETS).
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
)
SELECT dimension, value, last_7d_micros, previous_7d_micros,
       round((last_7d_micros - previous_7d_micros)::numeric / nullif(previous_7d_micros, 0), 6) AS change_7d,
       month_to_date_micros, last_month_micros, last_month_to_date_micros,
       round(month_to_date_micros * month_scale::numeric)::bigint AS projected_month_micros
  FROM summed
 WHERE dimension = 'total' OR last_7d_micros <> 0 OR previous_7d_micros <> 0
    OR month_to_date_micros <> 0 OR last_month_micros <> 0;

CREATE UNIQUE INDEX mv_spend_trends_key_idx ON ai_cost.mv_spend_trends (dimension, value) NULLS NOT DISTINCT;

COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_trends IS 'Spend trends for the total and per provider, model, tenant and feature: last 7 days vs the 7 before (change_7d = relative change), UTC month to date vs last month (whole, and to the same point), and month to date projected linearly to month end. Rebuilt by ai_cost.refresh(). Read ai_cost.spend_trends.';

-- Plain views over the materialized views: BI tools that list tables from
-- information_schema (which omits materialized views) see these.
CREATE VIEW ai_cost.spend_share AS
SELECT "window", dimension, value, calls, successes, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_spend_share;

COMMENT ON VIEW ai_cost.spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature (column dimension) over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';

CREATE VIEW ai_cost.top_spenders AS
SELECT "window", kind, rank, id, calls, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_top_spenders;

COMMENT ON VIEW ai_cost.top_spenders IS 'Top 100 tenants, users and conversations (column kind) by spend over the last 7d and 30d. As of the last ai_cost.refresh().';

CREATE VIEW ai_cost.spend_trends AS
SELECT dimension, value, last_7d_micros, previous_7d_micros, change_7d, month_to_date_micros, last_month_micros,
       last_month_to_date_micros, projected_month_micros
  FROM ai_cost.mv_spend_trends;

COMMENT ON VIEW ai_cost.spend_trends IS 'Spend trends (7 days vs the 7 before, month to date vs last month, projection to month end) for the total and per provider, model, tenant and feature. As of the last ai_cost.refresh().';

-- Each budget in its current period: spent, remaining, percent used,
-- projection to period end, highest threshold crossed, status.
CREATE OR REPLACE VIEW ai_cost.budget_status AS
SELECT b.id AS budget_id, b.name, b.scope, b.scope_value, b.period, p.period_start, p.period_end,
       b.limit_micros, s.spent_micros, s.unpriced_calls,
       b.limit_micros - s.spent_micros AS remaining_micros,
       round(100 * s.spent_micros::numeric / b.limit_micros, 2) AS used_percent,
       round(s.spent_micros * extract(epoch FROM p.period_end - p.period_start)
             / greatest(extract(epoch FROM now() - p.period_start), 1))::bigint AS projected_micros,
       (SELECT max(t.percent) FROM unnest(b.alert_at_percent) AS t(percent)
         WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) AS crossed_percent,
       CASE WHEN s.spent_micros >= b.limit_micros THEN 'exceeded'
            WHEN EXISTS (SELECT FROM unnest(b.alert_at_percent) AS t(percent)
                          WHERE 100 * s.spent_micros::numeric >= t.percent * b.limit_micros::numeric) THEN 'warning'
            ELSE 'ok' END AS status
  FROM ai_cost.budgets b
 CROSS JOIN LATERAL (
   SELECT date_trunc(b.period, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS period_start,
          (date_trunc(b.period, now() AT TIME ZONE 'UTC') + ('1 ' || b.period)::interval) AT TIME ZONE 'UTC' AS period_end
 ) AS p
 CROSS JOIN LATERAL (
   SELECT coalesce(sum(r.cost_micros), 0)::bigint AS spent_micros, coalesce(sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
     FROM (SELECT d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'global' AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'tenant' AND d.tenant_id = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT d.cost_micros, d.unpriced_calls FROM ai_cost_internal.calls_daily_live d
            WHERE b.scope = 'feature' AND d.feature = b.scope_value AND d.day >= p.period_start AND d.day < p.period_end
           UNION ALL
           SELECT u.cost_micros, u.unpriced_calls FROM ai_cost_internal.users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value AND u.day >= p.period_start AND u.day < p.period_end) AS r
 ) AS s;

COMMENT ON VIEW ai_cost.budget_status IS 'Each budget in its current UTC period: spend, remaining, percent used, linear projection to period end, highest threshold crossed and status (ok, warning, exceeded). Always current; unpriced calls are counted, their cost unknown.';

COMMENT ON COLUMN ai_cost.tenant_discounts.id IS NULL;
COMMENT ON COLUMN ai_cost.tenant_discounts.tenant_id IS NULL;
COMMENT ON COLUMN ai_cost.tenant_discounts.valid_from IS NULL;
COMMENT ON COLUMN ai_cost.tenant_discounts.valid_to IS NULL;
COMMENT ON COLUMN ai_cost.tenant_discounts.note IS NULL;
COMMENT ON COLUMN ai_cost.tenant_discounts.created_at IS NULL;
COMMENT ON COLUMN ai_cost.model_aliases.provider IS NULL;
COMMENT ON COLUMN ai_cost.model_aliases.note IS NULL;
COMMENT ON COLUMN ai_cost.model_patterns.id IS NULL;
COMMENT ON COLUMN ai_cost.model_patterns.provider IS NULL;
COMMENT ON COLUMN ai_cost.model_patterns.note IS NULL;
COMMENT ON COLUMN ai_cost.reprice_runs.id IS NULL;
COMMENT ON COLUMN ai_cost.reprice_runs.started_at IS NULL;
COMMENT ON COLUMN ai_cost.reprice_runs.updated_at IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.id IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.old_cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.new_cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.old_price_id IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.new_price_id IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.old_unpriced_reason IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.new_unpriced_reason IS NULL;
COMMENT ON COLUMN ai_cost.reprice_audit.changed_at IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.hour IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.provider IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.model IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.operation IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.status IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.tenant_id IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.user_id IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.feature IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.cached IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_reason IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.calls IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_read_tokens IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.cache_write_tokens IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.reasoning_tokens IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_calls IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_sum IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.total_ms_hist IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_calls IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_sum IS NULL;
COMMENT ON COLUMN ai_cost.calls_hourly_live.ttft_ms_hist IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.hour IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.conversation_id IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.tenant_id IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.user_id IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.calls IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.conversations_hourly_live.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.day IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.provider IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.model IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.operation IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.tenant_id IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.user_id IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.feature IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.successes IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.errors IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.success_cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.cache_read_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.cache_write_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily.reasoning_tokens IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.provider IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.model IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.service_tier IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_reason IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.first_hour IS NULL;
COMMENT ON COLUMN ai_cost.unpriced_models.last_hour IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.day IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.dimension IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.value IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.successes IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.errors IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.success_cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_daily_by_dimension.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.day IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.successes IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.errors IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.success_cost_micros IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.input_tokens IS NULL;
COMMENT ON COLUMN ai_cost.spend_by_day.output_tokens IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.window IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.provider IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.model IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.attempts IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.errors IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.error_rate IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.window IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.feature IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.attempts IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.errors IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.error_rate IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.window IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.provider IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.model IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.calls IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.avg_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p50_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p95_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.p99_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.streamed_calls IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_avg_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p50_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p95_ms IS NULL;
COMMENT ON COLUMN ai_cost.mv_latency_by_model.ttft_p99_ms IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.window IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.provider IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.model IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.attempts IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.errors IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_model.error_rate IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.window IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.feature IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.attempts IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.errors IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.cancelled IS NULL;
COMMENT ON COLUMN ai_cost.error_rate_by_feature.error_rate IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.window IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.provider IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.model IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.calls IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.avg_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.p50_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.p95_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.p99_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.streamed_calls IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_avg_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p50_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p95_ms IS NULL;
COMMENT ON COLUMN ai_cost.latency_by_model.ttft_p99_ms IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.budget_id IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.name IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.scope IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.scope_value IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.period IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.period_start IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.period_end IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.limit_micros IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.spent_micros IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.unpriced_calls IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.remaining_micros IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.used_percent IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.projected_micros IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.crossed_percent IS NULL;
COMMENT ON COLUMN ai_cost.budget_status.status IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS NULL;
COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.partition IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.range_start IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.range_end IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.is_default IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.estimated_rows IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.total_bytes IS NULL;
COMMENT ON COLUMN ai_cost.call_partitions.retention IS NULL;

ALTER TABLE ai_cost_internal.activity_hourly DROP COLUMN unpriced_calls;
ALTER TABLE ai_cost_internal.dimensions_daily DROP COLUMN unpriced_successes;

SELECT ai_cost_internal.grant_roles();
