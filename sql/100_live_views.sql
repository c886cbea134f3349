-- Live views: the rollups plus the changes no refresh has consumed yet, and
-- the daily and hourly BI views on them. Every view here is exact at any
-- moment, whenever the last refresh ran.

-- The changes no refresh has consumed yet, in the shape of
-- ai_cost.calls_hourly: what ai_cost.calls_hourly_live adds to the rollup.
-- A view of its own so that ai_cost.calls_between() can read the rollup and
-- these apart, each filtered by hour: a Citus coordinator does not filter
-- the branches of a view's UNION ALL by an outer condition, and would copy
-- the whole rollup.
CREATE VIEW ai_cost_internal.calls_hourly_pending AS
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
       ai_cost_internal.histogram(total_ms, sign) AS total_ms_hist,
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed) AS ttft_ms_hist,
       coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
       coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_hourly_pending IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly; ai_cost.calls_hourly_live adds them to it.';

-- The rows of ai_cost_internal.calls_hourly_pending in [first_hour,
-- end_hour), for ai_cost.calls_between(). SECURITY DEFINER: it reads the
-- changes for roles without rights on them, as ai_cost.calls_hourly_live
-- does, and a BI login listing ai_cost_internal finds nothing to read.
CREATE FUNCTION ai_cost_internal.calls_hourly_pending_between(first_hour timestamptz, end_hour timestamptz)
RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT p.* FROM ai_cost_internal.calls_hourly_pending p WHERE p.hour >= first_hour AND p.hour < end_hour;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz) IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly, for the hours from first_hour to end_hour (ai_cost.calls_between()).';

-- The hourly rollup plus the changes no refresh has consumed yet, so every
-- view on it is exact at any moment. One snapshot sees a refresh either
-- entirely or not at all, so a change is counted once: in the rollup or here.
-- Several rows may share a key: always aggregate.
CREATE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist, billed_micros, unbilled_calls
  FROM ai_cost.calls_hourly
UNION ALL
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist, billed_micros, unbilled_calls
  FROM ai_cost_internal.calls_hourly_pending;
COMMENT ON VIEW ai_cost.calls_hourly_live IS 'ai_cost.calls_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate (sum; ai_cost.histogram_merge for histograms).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.hour IS 'Start of the UTC hour of the calls.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.provider IS 'Provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';
COMMENT ON COLUMN ai_cost.calls_hourly_live.status IS 'Outcome: success, error or cancelled.';
COMMENT ON COLUMN ai_cost.calls_hourly_live.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
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
COMMENT ON COLUMN ai_cost.calls_hourly_live.billed_micros IS 'What the billed calls were charged to their tenants (ai_cost.markups), in micro-dollars, never part of cost_micros; calls not billed add nothing (see unbilled_calls).';
COMMENT ON COLUMN ai_cost.calls_hourly_live.unbilled_calls IS 'Calls not billed: no markup covers them, or their cost is unknown.';

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
  FROM ai_cost_internal.pending_changes
 WHERE conversation_id IS NOT NULL
 GROUP BY 1, conversation_id, tenant_id, user_id;
COMMENT ON VIEW ai_cost.conversations_hourly_live IS 'ai_cost.conversations_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.hour IS 'Start of the UTC hour of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.conversation_id IS 'Conversation or session id.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.tenant_id IS 'Tenant of the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.user_id IS 'End user of the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.calls IS 'Number of call attempts. A row of changes since the last refresh can be negative (a deleted or repriced call): sum the rows.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.conversations_hourly_live.output_tokens IS 'Sum of output tokens (reasoning included).';

-- Any window of calls in the rollup shape, exact to the instant: whole hours
-- come from the rollup and the changes no refresh has consumed yet (as in
-- ai_cost.calls_hourly_live), the partial hours at either edge from the raw
-- table (at most two hours of rows, two ranges of calls_created_at_idx), but
-- for the calls the refresh set aside, which no rollup holds either. The
-- bounds reach each part as values (PL/pgSQL constants), so each reads its
-- index for the window alone, on a Citus coordinator too. PL/pgSQL,
-- not SQL, for Citus too: it cannot plan a parameterized query of a SQL
-- function that reads a distributed table. A day holds tens of thousands of
-- rollup rows with many users, which the planner prices high enough to
-- compile with JIT: compiling costs more than it saves on this many rows
-- (36 ms of 240 over 24 hours with 10M calls of history), hence jit = off.
CREATE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_hour CONSTANT timestamptz := date_trunc('hour', since, 'UTC')
    + CASE WHEN date_trunc('hour', since, 'UTC') = since THEN interval '0' ELSE interval '1 hour' END;
  end_hour CONSTANT timestamptz := date_trunc('hour', until, 'UTC');
BEGIN
  -- Three statements of one function, which is STABLE: they read one
  -- snapshot, so a refresh is seen entirely or not at all, as in
  -- ai_cost.calls_hourly_live.
  RETURN QUERY
  SELECT h.* FROM ai_cost.calls_hourly h WHERE h.hour >= first_hour AND h.hour < end_hour;
  RETURN QUERY
  SELECT p.* FROM ai_cost_internal.calls_hourly_pending_between(first_hour, end_hour) p;
  RETURN QUERY
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed),
         coalesce(sum(c.billed_micros), 0)::bigint, count(*) FILTER (WHERE c.billed_micros IS NULL)
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, '') AS tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms, billed_micros
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, first_hour)
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms, billed_micros
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, end_hour, first_hour)
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason;
END
$$;
COMMENT ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz) IS 'Rollup rows (the shape of ai_cost.calls_hourly) for calls with since <= created_at < until, exact to the instant and current. Several rows can share a key: aggregate them.';

-- Daily spend by every dimension, for BI tools to slice. All attempts count
-- toward cost, since providers bill failed calls for the tokens they used;
-- success_cost_micros is the part spent on calls that worked. A cost with
-- calls behind it and not one of them priced is unknown: NULL, never 0.
CREATE VIEW ai_cost.spend_daily AS
SELECT day, provider, model, operation, service_tier, tenant_id, user_id, feature, calls, successes, errors,
       cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
       CASE WHEN calls <> unbilled_calls THEN billed_micros END AS billed_micros, unbilled_calls
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
               sum(reasoning_tokens)::bigint AS reasoning_tokens,
               sum(billed_micros)::bigint AS billed_micros,
               sum(unbilled_calls)::bigint AS unbilled_calls
          FROM ai_cost.calls_hourly_live
         GROUP BY 1, provider, model, operation, service_tier, tenant_id, user_id, feature
        HAVING sum(calls) <> 0) AS d;
COMMENT ON VIEW ai_cost.spend_daily IS 'Spend per UTC day by provider, model, operation, service tier, tenant, user and feature; always current. cost_micros counts every attempt (failed calls are billed too), success_cost_micros only successes; both are the sum over priced calls, NULL when every call behind them is unpriced, and unpriced_calls counts the calls whose cost is unknown.';
COMMENT ON COLUMN ai_cost.spend_daily.day IS 'UTC calendar day of the calls.';
COMMENT ON COLUMN ai_cost.spend_daily.provider IS 'Provider id, e.g. openai, anthropic, google.';
COMMENT ON COLUMN ai_cost.spend_daily.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.spend_daily.operation IS 'Kind of call: chat, completion, embedding, image, audio_transcription, ...';
COMMENT ON COLUMN ai_cost.spend_daily.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
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
COMMENT ON COLUMN ai_cost.spend_daily.billed_micros IS 'What the calls were charged to their tenants (ai_cost.markups), in micro-dollars, beside their cost and never part of it: the sum over the billed calls. NULL when none of the calls is billed; see unbilled_calls.';
COMMENT ON COLUMN ai_cost.spend_daily.unbilled_calls IS 'Calls not billed: no markup covers them, or their cost is unknown.';

-- The daily per-user rollup plus the changes no refresh has consumed yet
-- (see ai_cost.calls_hourly_live): exact at any moment. Several rows may
-- share a key: always aggregate.
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
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, tenant_id, user_id;
COMMENT ON VIEW ai_cost_internal.users_daily_live IS 'Internal: the daily per-user rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

-- Spend per UTC day, tenant and user, from the daily per-user rollup: the
-- drill-down from a tenant to its users (or to one user) over weeks or
-- months reads a row per user and day, where spend_daily has a row per
-- combination of every dimension and the user (about one per call with many
-- users). A filter on tenant_id or user_id reaches the rollup's indexes.
-- The pending changes are added to the rollup rows of their key as
-- ai_cost_internal.dimensions_daily_live does (OFFSET 0 as there, for
-- Citus), so a month of every user's rows is read once, not grouped again.
CREATE VIEW ai_cost.spend_daily_by_user AS
WITH pending AS (
  SELECT date_trunc('day', created_at, 'UTC') AS day, tenant_id, user_id,
         sum(sign)::bigint AS calls,
         coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
         coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes
   GROUP BY 1, tenant_id, user_id
)
SELECT day, tenant_id, user_id, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.tenant_id, r.user_id,
               r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
               r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
               r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
               r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
               r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
          FROM ai_cost_internal.users_daily r
          LEFT JOIN pending p
            ON p.day = r.day AND coalesce(p.tenant_id, '') = coalesce(r.tenant_id, '')
           AND (p.tenant_id IS NULL) = (r.tenant_id IS NULL)
           AND coalesce(p.user_id, '') = coalesce(r.user_id, '') AND (p.user_id IS NULL) = (r.user_id IS NULL)
        UNION ALL
        SELECT (p.day AT TIME ZONE 'UTC')::date, p.tenant_id, p.user_id, p.calls, p.successes, p.cost_micros,
               p.unpriced_calls, p.input_tokens, p.output_tokens
          FROM pending p
         WHERE NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                            WHERE r.day = p.day AND r.user_id = p.user_id AND r.tenant_id = p.tenant_id)
           AND (p.tenant_id IS NOT NULL AND p.user_id IS NOT NULL
                OR NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                                WHERE r.day = p.day AND r.user_id IS NOT DISTINCT FROM p.user_id
                                  AND r.tenant_id IS NOT DISTINCT FROM p.tenant_id OFFSET 0))) AS u
 WHERE calls <> 0;
COMMENT ON VIEW ai_cost.spend_daily_by_user IS 'Spend per UTC day by tenant and user; always current. What a drill-down from a tenant to its users, or to one user, should read over weeks or months: a row per user and day. cost_micros counts every attempt (failed calls are billed too) and is the sum over priced calls, NULL when every call behind it is unpriced; unpriced_calls counts the calls whose cost is unknown. For a user''s spend by model or feature, filter ai_cost.spend_daily to the user and a few days.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.day IS 'UTC calendar day of the calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.calls IS 'Call attempts: successes, errors and cancelled calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.successes IS 'Calls with status success.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.cost_micros IS 'Cost of every attempt (failed calls are billed too) in micro-dollars (1 = $0.000001): the sum over the priced calls. NULL when there were calls and none of them is priced (cost unknown); 0 = free, or no calls; see unpriced_calls.';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.unpriced_calls IS 'Calls without a price: their cost is unknown and not in cost_micros (ai_cost.unpriced_models lists them by model).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.input_tokens IS 'Sum of input tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.spend_daily_by_user.output_tokens IS 'Sum of output tokens (reasoning included).';

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
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, status, cached;
COMMENT ON VIEW ai_cost_internal.models_hourly_live IS 'Internal: the per-model hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost_internal.features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost_internal.features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, feature, status;
COMMENT ON VIEW ai_cost_internal.features_hourly_live IS 'Internal: the per-feature hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

-- Each reads its rollup plus the changes since the last refresh.
CREATE VIEW ai_cost.activity_hourly AS
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
                  FROM ai_cost_internal.pending_changes) AS a
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
                  FROM ai_cost_internal.pending_changes
                 WHERE unpriced_reason IS NOT NULL) AS u
         GROUP BY hour, provider, model, service_tier, unpriced_reason
        HAVING sum(calls) <> 0) AS h
 GROUP BY provider, model, service_tier, unpriced_reason;
COMMENT ON VIEW ai_cost.unpriced_models IS 'Models (and the reason) with calls that have no cost: add a price to ai_cost.prices and reprice them. first_hour/last_hour bound when they happened.';
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
-- ai_cost.calls_hourly_live): one row per day, dimension and value. The
-- pending changes, aggregated once, are added to the rollup rows of their
-- key, and keys only they have are appended: the rollup rows of a window
-- are read once and never grouped again. The keys compare NULL values as
-- equal in a form a hash join takes. OFFSET 0 in the NOT EXISTS inside an
-- OR keeps PostgreSQL from planning it twice, hashed and row by row, and
-- leaving out the plan it does not use: in a statement that also reads the
-- distributed calls, Citus 13.2.2's planner reads that left-out plan and
-- crashes the coordinator (a segmentation fault). Row by row is the plan it
-- takes anyway, for the few pending keys with a NULL value.
CREATE VIEW ai_cost_internal.dimensions_daily_live AS
WITH pending AS (
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, v.dimension, v.value,
         sum(c.sign)::bigint AS calls,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'success'), 0)::bigint AS successes,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'error'), 0)::bigint AS errors,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'cancelled'), 0)::bigint AS cancelled,
         coalesce(sum(c.sign * c.cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(c.sign * c.cost_micros) FILTER (WHERE c.status = 'success'), 0)::bigint AS success_cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL AND c.status = 'success'), 0)::bigint AS unpriced_successes,
         coalesce(sum(c.sign * c.input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(c.sign * c.output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                        c.tenant_id, c.user_id, c.feature) AS v
   GROUP BY 1, v.dimension, v.value
)
SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.dimension, r.value,
       r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
       r.errors + coalesce(p.errors, 0) AS errors, r.cancelled + coalesce(p.cancelled, 0) AS cancelled,
       r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
       r.success_cost_micros + coalesce(p.success_cost_micros, 0) AS success_cost_micros,
       r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
       r.unpriced_successes + coalesce(p.unpriced_successes, 0) AS unpriced_successes,
       r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
       r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
  FROM ai_cost_internal.dimensions_daily r
  LEFT JOIN pending p
    ON p.day = r.day AND p.dimension = r.dimension AND coalesce(p.value, '') = coalesce(r.value, '')
   AND (p.value IS NULL) = (r.value IS NULL)
 WHERE r.calls + coalesce(p.calls, 0) <> 0
UNION ALL
SELECT (p.day AT TIME ZONE 'UTC')::date, p.dimension, p.value, p.calls, p.successes, p.errors, p.cancelled,
       p.cost_micros, p.success_cost_micros, p.unpriced_calls, p.unpriced_successes, p.input_tokens, p.output_tokens
  FROM pending p
 WHERE p.calls <> 0
   AND NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                    WHERE r.day = p.day AND r.dimension = p.dimension AND r.value = p.value)
   AND (p.value IS NOT NULL
        OR NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                        WHERE r.day = p.day AND r.dimension = p.dimension AND r.value IS NULL OFFSET 0));
COMMENT ON VIEW ai_cost_internal.dimensions_daily_live IS 'Internal: the daily dimension rollup plus the changes since the last refresh, one row per UTC day, dimension and value; costs are sums over priced calls.';

-- Spend per UTC day for one dimension at a time: what a dashboard's "by
-- model" or "top tenants" chart needs, from about as many rows a day as the
-- dimension has values.
CREATE VIEW ai_cost.spend_daily_by_dimension AS
SELECT day, dimension, value, calls, successes, errors, cancelled,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       CASE WHEN successes = 0 OR successes <> unpriced_successes THEN success_cost_micros END AS success_cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM ai_cost_internal.dimensions_daily_live
 WHERE dimension <> 'model_id';
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
-- a day add up to the day, a few rows a day.
CREATE VIEW ai_cost.spend_by_day AS
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
