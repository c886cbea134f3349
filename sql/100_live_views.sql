-- Live views: the rollups plus the changes no refresh has consumed yet, and
-- the daily and hourly BI views on them. Every view here is exact at any
-- moment, whenever the last refresh ran.

-- The hourly rollup plus the changes no refresh has consumed yet, so every
-- view on it is exact at any moment. One snapshot sees a refresh either
-- entirely or not at all, so a change is counted once: in the rollup or here.
-- Several rows may share a key: always aggregate.
CREATE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost.calls_hourly_live IS 'ai_cost.calls_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate (sum; ai_cost.histogram_merge for histograms).';

-- The conversation rollup plus the changes not consumed yet (see
-- ai_cost.calls_hourly_live). Several rows may share a key: aggregate.
CREATE VIEW ai_cost.conversations_hourly_live AS
SELECT hour, conversation_id, tenant_id, user_id, calls, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost.conversations_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
       sum(sign)::bigint, coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint, coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost_internal.call_changes
 WHERE conversation_id IS NOT NULL
 GROUP BY 1, conversation_id, tenant_id, user_id;
COMMENT ON VIEW ai_cost.conversations_hourly_live IS 'ai_cost.conversations_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate.';

-- Any window of calls in the rollup shape, exact to the instant: whole hours
-- come from the live rollup, the partial hours at either edge from the raw
-- table (at most two hours of rows, found by calls_created_at_idx), but for
-- the calls the refresh set aside, which no rollup holds either.
CREATE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  WITH bounds AS (
    SELECT date_trunc('hour', since, 'UTC') + CASE WHEN date_trunc('hour', since, 'UTC') = since
                                                  THEN interval '0' ELSE interval '1 hour' END AS first_hour,
           date_trunc('hour', until, 'UTC') AS end_hour
  )
  SELECT l.*
    FROM ai_cost.calls_hourly_live l, bounds b
   WHERE l.hour >= b.first_hour AND l.hour < b.end_hour
  UNION ALL
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    FROM ai_cost.calls c, bounds b
   WHERE c.created_at >= since AND c.created_at < until
     AND (c.created_at < b.first_hour OR c.created_at >= greatest(b.end_hour, b.first_hour))
     AND NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;
COMMENT ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz) IS 'Rollup rows (the shape of ai_cost.calls_hourly) for calls with since <= created_at < until, exact to the instant and current. Several rows can share a key: aggregate them.';

-- Daily spend by every dimension, for BI tools to slice. All attempts count
-- toward cost, since providers bill failed calls for the tokens they used;
-- success_cost_micros is the part spent on calls that worked.
CREATE VIEW ai_cost.spend_daily AS
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

-- The daily rollups plus the changes no refresh has consumed yet (see
-- ai_cost.calls_hourly_live): exact at any moment. Several rows may share a
-- key: always aggregate.
CREATE VIEW ai_cost_internal.calls_daily_live AS
SELECT day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason,
       calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens
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
       coalesce(sum(sign * reasoning_tokens), 0)::bigint
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_daily_live IS 'Internal: the daily calls rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.users_daily_live AS
SELECT day, tenant_id, user_id, calls, successes, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost_internal.users_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), tenant_id, user_id,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost_internal.call_changes
 GROUP BY 1, tenant_id, user_id;
COMMENT ON VIEW ai_cost_internal.users_daily_live IS 'Internal: the daily per-user rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.models_hourly_live AS
SELECT hour, provider, model, status, cached, calls, total_ms_calls, total_ms_sum, total_ms_hist,
       ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost_internal.models_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.call_changes
 GROUP BY 1, provider, model, status, cached;
COMMENT ON VIEW ai_cost_internal.models_hourly_live IS 'Internal: the per-model hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost_internal.call_changes
 GROUP BY 1, feature, status;
COMMENT ON VIEW ai_cost_internal.features_hourly_live IS 'Internal: the per-feature hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

-- Each reads its rollup plus the
-- changes since the last refresh.
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

-- Hours are summed first, so first_hour and last_hour are hours that still
-- hold unpriced calls once pending changes (a repriced or moved call) count.
CREATE VIEW ai_cost.unpriced_models AS
SELECT provider, model, service_tier, unpriced_reason, sum(calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       min(hour) AS first_hour, max(hour) AS last_hour
  FROM (SELECT hour, provider, model, service_tier, unpriced_reason, sum(calls) AS calls,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens
          FROM (SELECT hour, provider, model, service_tier, unpriced_reason, calls, input_tokens, output_tokens
                  FROM ai_cost_internal.unpriced_hourly
                UNION ALL
                SELECT date_trunc('hour', created_at, 'UTC'), provider, model, service_tier, unpriced_reason, sign,
                       coalesce(sign * input_tokens, 0), coalesce(sign * output_tokens, 0)
                  FROM ai_cost_internal.call_changes
                 WHERE unpriced_reason IS NOT NULL) AS u
         GROUP BY hour, provider, model, service_tier, unpriced_reason
        HAVING sum(calls) <> 0) AS h
 GROUP BY provider, model, service_tier, unpriced_reason;
COMMENT ON VIEW ai_cost.unpriced_models IS 'Models (and the reason) with calls that have no cost: add a price to ai_cost.prices and reprice them. first_hour/last_hour bound when they happened.';

-- Spend per UTC day for one dimension at a time: what a dashboard's "by
-- model" or "top tenants" chart needs, from about as many rows a day as the
-- dimension has values.
CREATE VIEW ai_cost.spend_daily_by_dimension AS
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
CREATE VIEW ai_cost.spend_by_day AS
SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes, sum(errors)::bigint AS errors,
       sum(cancelled)::bigint AS cancelled, sum(cost_micros)::bigint AS cost_micros,
       sum(success_cost_micros)::bigint AS success_cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost.spend_daily_by_dimension
 WHERE dimension = 'provider'
 GROUP BY day;
COMMENT ON VIEW ai_cost.spend_by_day IS 'Total spend per UTC day: every attempt in cost_micros, successes alone in success_cost_micros; always current.';

