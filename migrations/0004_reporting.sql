-- Up Migration
--
-- Reporting: incremental rollups of ai_cost.calls, the objects BI tools read,
-- budgets, a read-only role, and pg_cron jobs when pg_cron is installed.
--
-- How the rollups stay exact and cheap (see docs/reporting.md):
--   1. Statement-level AFTER triggers with transition tables copy every
--      inserted row (+1), deleted row (-1) and updated row (-1 old, +1 new)
--      into ai_cost._private_call_changes. One INSERT ... SELECT per
--      statement: a bulk insert pays one set-based copy, not a call per row.
--   2. ai_cost.refresh() consumes that table with DELETE ... RETURNING and
--      adds the netted changes to the rollups in the same transaction. A
--      change row becomes visible exactly when the call's transaction commits,
--      so a writer that drew a lower id and commits late is simply picked up
--      by the next refresh: no watermark can skip it, nothing counts twice,
--      and late rows (created_at in the past), repricing UPDATEs and DELETEs
--      reach the right hour. The work is proportional to the changes.
--   3. Readers add the changes not yet consumed (ai_cost.calls_hourly_live),
--      so the plain views are exact at any moment; refresh bounds that work
--      and rebuilds the windowed materialized views.

------------------------------------------------------------------------------
-- Latency histograms
------------------------------------------------------------------------------

-- Latencies go into fixed log-scale buckets, four per doubling: bucket 0 is
-- under 1 ms, bucket b >= 1 holds [2^((b-1)/4), 2^(b/4)) ms, and bucket 88
-- everything from 2^(87/4) ms (about 58 minutes) on. Fixed buckets make
-- histograms mergeable by adding counts, so p50/p95/p99 of any slice come
-- from the rollups without reading raw rows, within 9% of the exact value.
CREATE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms < 1 THEN 0
              ELSE least(88, 1 + floor(4 * ln(ms::float8) / ln(2::float8) + 1e-9)::integer) END
$$;
COMMENT ON FUNCTION ai_cost.latency_bucket(integer) IS 'Histogram bucket of a latency in ms: 0 below 1 ms, then four buckets per doubling up to bucket 88 (about 58 minutes and more).';

-- The value reported for a bucket: its geometric midpoint (at most 9% from
-- any latency in it), the lower bound for the open-ended last bucket.
CREATE FUNCTION ai_cost.latency_bucket_value(bucket integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN bucket <= 0 THEN 0
              WHEN bucket >= 88 THEN round(power(2::float8, 87 / 4.0))::integer
              ELSE round(power(2::float8, (bucket - 0.5) / 4.0))::integer END
$$;
COMMENT ON FUNCTION ai_cost.latency_bucket_value(integer) IS 'Representative latency in ms of a histogram bucket (its geometric midpoint).';

-- Drops trailing zero buckets; NULL when nothing is left.
CREATE FUNCTION ai_cost._private_histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN last IS NULL THEN NULL ELSE h[1:last] END
    FROM (SELECT max(i) AS last FROM unnest(h) WITH ORDINALITY AS t(n, i) WHERE n <> 0) AS s
$$;
-- Adds two histograms element by element. Histograms are bigint arrays
-- indexed by bucket + 1 with trailing zero buckets trimmed; NULL is empty.
-- Counts may be negative in a change set (removed rows), so an all-zero sum
-- becomes NULL again.
CREATE FUNCTION ai_cost._private_histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a IS NULL THEN b
    WHEN b IS NULL THEN a
    ELSE ai_cost._private_histogram_trim(ARRAY(
      SELECT coalesce(x, 0) + coalesce(y, 0) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY i))
  END
$$;

COMMENT ON FUNCTION ai_cost._private_histogram_add(bigint[], bigint[]) IS 'Adds two latency histograms bucket by bucket.';
COMMENT ON FUNCTION ai_cost._private_histogram_trim(bigint[]) IS 'Drops trailing empty buckets of a latency histogram.';

-- Step of ai_cost.histogram_merge: adds a histogram into a full-width
-- state in place (plpgsql assigns array elements without copying the array,
-- several times faster than building a new array per row).
CREATE FUNCTION ai_cost._private_histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF histogram IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := array_fill(0::bigint, ARRAY[89]);
  END IF;
  FOR slot IN 1 .. least(89, cardinality(histogram)) LOOP
    state[slot] := state[slot] + histogram[slot];
  END LOOP;
  RETURN state;
END
$$;
COMMENT ON FUNCTION ai_cost._private_histogram_accumulate(bigint[], bigint[]) IS 'Aggregate step: adds a latency histogram into the running sum.';

-- Aggregate: the sum of histograms, e.g. the latency histogram of a model over
-- a month from its hourly rollup rows.
CREATE AGGREGATE ai_cost.histogram_merge(bigint[]) (
  SFUNC = ai_cost._private_histogram_accumulate,
  STYPE = bigint[],
  FINALFUNC = ai_cost._private_histogram_trim,
  COMBINEFUNC = ai_cost._private_histogram_add,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE ai_cost.histogram_merge(bigint[]) IS 'Adds latency histograms (e.g. total_ms_hist of ai_cost.calls_hourly rows); read percentiles with ai_cost.histogram_percentile.';

-- Step of the histogram builder: counts one latency with a weight (+1 for a
-- row added, -1 for a row removed). The state has all 89 buckets, assigned
-- in place, and is trimmed once at the end.
CREATE FUNCTION ai_cost._private_histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  slot integer;
BEGIN
  IF ms IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := array_fill(0::bigint, ARRAY[89]);
  END IF;
  slot := ai_cost.latency_bucket(ms) + 1;
  state[slot] := state[slot] + weight;
  RETURN state;
END
$$;
COMMENT ON FUNCTION ai_cost._private_histogram_step(bigint[], integer, integer) IS 'Aggregate step: counts one latency into a histogram with a weight of +1 or -1.';

CREATE AGGREGATE ai_cost._private_histogram(integer, integer) (
  SFUNC = ai_cost._private_histogram_step,
  STYPE = bigint[],
  FINALFUNC = ai_cost._private_histogram_trim,
  COMBINEFUNC = ai_cost._private_histogram_add,
  PARALLEL = SAFE
);
COMMENT ON AGGREGATE ai_cost._private_histogram(integer, integer) IS 'Builds a latency histogram from (ms, weight) pairs.';

-- The p-th quantile (0 < p <= 1) of a histogram, in ms: the value of the
-- bucket holding the ceil(p * n)-th smallest latency, the same rank that
-- percentile_disc picks, so it lands in the bucket of the exact answer.
CREATE FUNCTION ai_cost.histogram_percentile(histogram bigint[], fraction float8) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ai_cost.latency_bucket_value((i - 1)::integer)
    FROM (SELECT i, sum(n) OVER (ORDER BY i) AS running, sum(n) OVER () AS total
            FROM unnest(histogram) WITH ORDINALITY AS t(n, i)) AS s
   WHERE total > 0 AND running >= greatest(1, ceil(fraction * total))
   ORDER BY i
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost.histogram_percentile(bigint[], float8) IS 'Quantile (e.g. 0.95) of a latency histogram in ms, within 9% of the exact percentile_disc; NULL for an empty histogram.';

------------------------------------------------------------------------------
-- Change capture
------------------------------------------------------------------------------

CREATE TABLE ai_cost._private_call_changes (
  sign smallint NOT NULL,
  created_at timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  operation text NOT NULL,
  status text NOT NULL,
  service_tier text NOT NULL,
  tenant_id text,
  user_id text,
  feature text,
  conversation_id text,
  cached boolean NOT NULL,
  streamed boolean NOT NULL,
  unpriced_reason text,
  cost_micros bigint,
  input_tokens bigint,
  output_tokens bigint,
  cache_read_tokens bigint,
  cache_write_tokens bigint,
  reasoning_tokens bigint,
  ttft_ms integer,
  total_ms integer
) WITH (
  -- Emptied by every refresh: vacuum it soon after, so the next refresh does
  -- not scan the dead rows of the previous batch.
  autovacuum_vacuum_scale_factor = 0,
  autovacuum_vacuum_threshold = 1000
);
COMMENT ON TABLE ai_cost._private_call_changes IS 'Internal: calls added (+1) and removed (-1) since the last ai_cost.refresh(), written by triggers on ai_cost.calls.';

-- Copies the rows a statement changed into the change table. SECURITY
-- DEFINER: whoever may write ai_cost.calls must not need (or get) rights on
-- the internal table. Updates copy every row as removed-then-added; rows
-- whose reported columns did not change net out to nothing in the refresh.
CREATE FUNCTION ai_cost._private_capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO ai_cost._private_call_changes
    SELECT -1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms
      FROM old_calls;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO ai_cost._private_call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost._private_capture_call_changes() IS 'Trigger: records the calls a statement inserted, updated or deleted for the next ai_cost.refresh().';

-- A trigger with transition tables handles one event, hence three.
CREATE TRIGGER tg_calls__capture_inserts
  AFTER INSERT ON ai_cost.calls REFERENCING NEW TABLE AS new_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost._private_capture_call_changes();
CREATE TRIGGER tg_calls__capture_updates
  AFTER UPDATE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost._private_capture_call_changes();
CREATE TRIGGER tg_calls__capture_deletes
  AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost._private_capture_call_changes();

------------------------------------------------------------------------------
-- Rollups
------------------------------------------------------------------------------

CREATE TABLE ai_cost.calls_hourly (
  hour timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  operation text NOT NULL,
  status text NOT NULL,
  service_tier text NOT NULL,
  tenant_id text,
  user_id text,
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
  total_ms_calls bigint NOT NULL,
  total_ms_sum bigint NOT NULL,
  total_ms_hist bigint[],
  ttft_ms_calls bigint NOT NULL,
  ttft_ms_sum bigint NOT NULL,
  ttft_ms_hist bigint[]
);
CREATE UNIQUE INDEX calls_hourly_key_idx ON ai_cost.calls_hourly
  (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
  NULLS NOT DISTINCT;
-- Groups whose calls were all deleted reach 0 and are removed right after.
CREATE INDEX calls_hourly_emptied_idx ON ai_cost.calls_hourly (hour) WHERE calls = 0;

COMMENT ON TABLE ai_cost.calls_hourly IS 'Hourly rollup of ai_cost.calls (UTC hours) by every reporting dimension, maintained incrementally by ai_cost.refresh(). Exact as of the last refresh; ai_cost.calls_hourly_live adds what came since.';
COMMENT ON COLUMN ai_cost.calls_hourly.hour IS 'Start of the UTC hour of created_at.';
COMMENT ON COLUMN ai_cost.calls_hourly.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.calls_hourly.model IS 'Model id.';
COMMENT ON COLUMN ai_cost.calls_hourly.operation IS 'Kind of call (chat, embedding, ...).';
COMMENT ON COLUMN ai_cost.calls_hourly.status IS 'success, error or cancelled.';
COMMENT ON COLUMN ai_cost.calls_hourly.service_tier IS 'standard, batch, flex or priority.';
COMMENT ON COLUMN ai_cost.calls_hourly.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.feature IS 'Product feature that made the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.cached IS 'True for answers served from the application''s own cache.';
COMMENT ON COLUMN ai_cost.calls_hourly.unpriced_reason IS 'Why these calls are unpriced; NULL for priced calls.';
COMMENT ON COLUMN ai_cost.calls_hourly.calls IS 'Number of call attempts.';
COMMENT ON COLUMN ai_cost.calls_hourly.unpriced_calls IS 'Calls with cost_micros NULL: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.calls_hourly.cost_micros IS 'Sum of cost_micros of the priced calls, in micro-dollars.';
COMMENT ON COLUMN ai_cost.calls_hourly.input_tokens IS 'Sum of input_tokens (cache reads and writes included).';
COMMENT ON COLUMN ai_cost.calls_hourly.output_tokens IS 'Sum of output_tokens (reasoning included).';
COMMENT ON COLUMN ai_cost.calls_hourly.cache_read_tokens IS 'Sum of cache_read_tokens.';
COMMENT ON COLUMN ai_cost.calls_hourly.cache_write_tokens IS 'Sum of cache_write_tokens.';
COMMENT ON COLUMN ai_cost.calls_hourly.reasoning_tokens IS 'Sum of reasoning_tokens.';
COMMENT ON COLUMN ai_cost.calls_hourly.total_ms_calls IS 'Calls with a total_ms.';
COMMENT ON COLUMN ai_cost.calls_hourly.total_ms_sum IS 'Sum of total_ms, for averages.';
COMMENT ON COLUMN ai_cost.calls_hourly.total_ms_hist IS 'Histogram of total_ms (see ai_cost.latency_bucket); merge with ai_cost.histogram_merge, read with ai_cost.histogram_percentile.';
COMMENT ON COLUMN ai_cost.calls_hourly.ttft_ms_calls IS 'Streamed calls with a ttft_ms.';
COMMENT ON COLUMN ai_cost.calls_hourly.ttft_ms_sum IS 'Sum of ttft_ms of streamed calls.';
COMMENT ON COLUMN ai_cost.calls_hourly.ttft_ms_hist IS 'Histogram of ttft_ms of streamed calls.';

CREATE TABLE ai_cost.conversations_hourly (
  hour timestamptz NOT NULL,
  conversation_id text NOT NULL,
  tenant_id text,
  user_id text,
  calls bigint NOT NULL,
  unpriced_calls bigint NOT NULL,
  cost_micros bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL
);
CREATE UNIQUE INDEX conversations_hourly_key_idx ON ai_cost.conversations_hourly
  (hour, conversation_id, tenant_id, user_id) NULLS NOT DISTINCT;
CREATE INDEX conversations_hourly_emptied_idx ON ai_cost.conversations_hourly (hour) WHERE calls = 0;
COMMENT ON TABLE ai_cost.conversations_hourly IS 'Hourly (UTC) rollup of the calls that carry a conversation_id, maintained incrementally by ai_cost.refresh(). A conversation is too fine a key for ai_cost.calls_hourly, and rarely spans many hours.';
COMMENT ON COLUMN ai_cost.conversations_hourly.hour IS 'Start of the UTC hour of created_at.';
COMMENT ON COLUMN ai_cost.conversations_hourly.conversation_id IS 'Conversation or session id.';
COMMENT ON COLUMN ai_cost.conversations_hourly.tenant_id IS 'Tenant of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly.user_id IS 'End user of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly.calls IS 'Number of call attempts.';
COMMENT ON COLUMN ai_cost.conversations_hourly.unpriced_calls IS 'Calls with no cost (unknown, not in cost_micros).';
COMMENT ON COLUMN ai_cost.conversations_hourly.cost_micros IS 'Sum of cost_micros of the priced calls, in micro-dollars.';
COMMENT ON COLUMN ai_cost.conversations_hourly.input_tokens IS 'Sum of input_tokens.';
COMMENT ON COLUMN ai_cost.conversations_hourly.output_tokens IS 'Sum of output_tokens.';

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
       ai_cost._private_histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost._private_histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost._private_call_changes
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
  FROM ai_cost._private_call_changes
 WHERE conversation_id IS NOT NULL
 GROUP BY 1, conversation_id, tenant_id, user_id;
COMMENT ON VIEW ai_cost.conversations_hourly_live IS 'ai_cost.conversations_hourly plus the changes since the last refresh: exact now. Several rows can share a key, so always aggregate.';

-- Any window of calls in the rollup shape, exact to the instant: whole hours
-- come from the live rollup, the partial hours at either edge from the raw
-- table (at most two hours of rows, found by calls_created_at_idx).
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
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost._private_histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost._private_histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    FROM ai_cost.calls c, bounds b
   WHERE c.created_at >= since AND c.created_at < until
     AND (c.created_at < b.first_hour OR c.created_at >= greatest(b.end_hour, b.first_hour))
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;
COMMENT ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz) IS 'Rollup rows (the shape of ai_cost.calls_hourly) for calls with since <= created_at < until, exact to the instant and current. Several rows can share a key: aggregate them.';

------------------------------------------------------------------------------
-- Plain views (always current)
------------------------------------------------------------------------------

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

-- One row per UTC day: the "daily spend" report every team writes first.
CREATE VIEW ai_cost.spend_by_day AS
SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes,
       sum(errors)::bigint AS errors, sum(cancelled)::bigint AS cancelled,
       sum(cost_micros)::bigint AS cost_micros, sum(success_cost_micros)::bigint AS success_cost_micros,
       sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost.spend_daily
 GROUP BY day;
COMMENT ON VIEW ai_cost.spend_by_day IS 'Total spend per UTC day: every attempt in cost_micros, successes alone in success_cost_micros; always current.';

-- Activity per hour: load, failures and spend over the day.
CREATE VIEW ai_cost.activity_hourly AS
SELECT hour, sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
       coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
       coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
       coalesce(sum(calls) FILTER (WHERE cached), 0)::bigint AS app_cache_hits,
       sum(cost_micros)::bigint AS cost_micros,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost.calls_hourly_live
 GROUP BY hour
HAVING sum(calls) <> 0;
COMMENT ON VIEW ai_cost.activity_hourly IS 'Calls, failures, app-cache hits, tokens and spend per UTC hour; always current.';

-- Models and reasons that left calls without a cost: each is spend the
-- totals cannot show until a price is added and the calls are repriced.
CREATE VIEW ai_cost.unpriced_models AS
SELECT provider, model, service_tier, unpriced_reason, sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens,
       min(hour) AS first_hour, max(hour) AS last_hour
  FROM ai_cost.calls_hourly_live
 WHERE unpriced_calls <> 0
 GROUP BY provider, model, service_tier, unpriced_reason
HAVING sum(unpriced_calls) <> 0;
COMMENT ON VIEW ai_cost.unpriced_models IS 'Models (and the reason) with calls that have no cost: add a price to ai_cost.prices and reprice them. first_hour/last_hour bound when they happened.';

------------------------------------------------------------------------------
-- Materialized views: windowed BI shapes, rebuilt by ai_cost.refresh()
------------------------------------------------------------------------------

-- The report windows, each the last N UTC hours up to and including the
-- current one. Windows keep each rebuild proportional to recent rollup rows,
-- not to all history.
CREATE VIEW ai_cost._private_windows AS
SELECT label, date_trunc('hour', now(), 'UTC') - (hours - 1) * interval '1 hour' AS since
  FROM (VALUES ('24h', 24), ('7d', 168), ('30d', 720)) AS w(label, hours);
COMMENT ON VIEW ai_cost._private_windows IS 'Internal: the 24h, 7d and 30d report windows as their first UTC hour.';

CREATE MATERIALIZED VIEW ai_cost.mv_spend_share AS
WITH dims AS (
  SELECT w.label AS "window", d.dimension, d.value, r.calls, r.status, r.cost_micros, r.unpriced_calls
    FROM ai_cost._private_windows w
    JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
   CROSS JOIN LATERAL (VALUES ('provider', r.provider), ('model', r.model), ('operation', r.operation),
                              ('tenant', r.tenant_id), ('user', r.user_id), ('feature', r.feature)) AS d(dimension, value)
), grouped AS (
  SELECT "window", dimension, value, sum(calls)::bigint AS calls,
         coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
         sum(cost_micros)::bigint AS cost_micros, sum(unpriced_calls)::bigint AS unpriced_calls
    FROM dims
   GROUP BY "window", dimension, value
  HAVING sum(calls) <> 0
)
SELECT "window", dimension, value, calls, successes, cost_micros, unpriced_calls,
       round(cost_micros::numeric / nullif(sum(cost_micros) OVER (PARTITION BY "window", dimension), 0), 6) AS share_of_cost
  FROM grouped;
CREATE UNIQUE INDEX mv_spend_share_key_idx ON ai_cost.mv_spend_share ("window", dimension, value) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_spend_share IS 'Spend and share of total per provider, model, operation, tenant, user and feature over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.spend_share.';

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_model AS
SELECT w.label AS "window", r.provider, r.model, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost._private_windows w
  JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
 GROUP BY w.label, r.provider, r.model
HAVING sum(r.calls) > 0;
CREATE UNIQUE INDEX mv_error_rate_by_model_key_idx ON ai_cost.mv_error_rate_by_model ("window", provider, model);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_model IS 'Attempts, errors, cancellations and error rate (errors / attempts) per model over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_model.';

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature AS
SELECT w.label AS "window", r.feature, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost._private_windows w
  JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
 GROUP BY w.label, r.feature
HAVING sum(r.calls) > 0;
CREATE UNIQUE INDEX mv_error_rate_by_feature_key_idx ON ai_cost.mv_error_rate_by_feature ("window", feature) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature (NULL: calls without one) over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_feature.';

-- Latency of calls that reached a provider and worked: successes only, app
-- cache hits excluded (they would make a model look fast). Time to first
-- token only exists for streamed calls.
CREATE MATERIALIZED VIEW ai_cost.mv_latency_by_model AS
WITH merged AS (
  SELECT w.label AS "window", r.provider, r.model,
         sum(r.total_ms_calls)::bigint AS calls, sum(r.total_ms_sum)::bigint AS total_ms_sum,
         ai_cost.histogram_merge(r.total_ms_hist) AS total_hist,
         sum(r.ttft_ms_calls)::bigint AS streamed_calls, sum(r.ttft_ms_sum)::bigint AS ttft_ms_sum,
         ai_cost.histogram_merge(r.ttft_ms_hist) AS ttft_hist
    FROM ai_cost._private_windows w
    JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
   WHERE r.status = 'success' AND NOT r.cached
   GROUP BY w.label, r.provider, r.model
  HAVING sum(r.total_ms_calls) + sum(r.ttft_ms_calls) > 0
)
SELECT "window", provider, model, calls,
       round(total_ms_sum::numeric / nullif(calls, 0)) AS avg_ms,
       ai_cost.histogram_percentile(total_hist, 0.50) AS p50_ms,
       ai_cost.histogram_percentile(total_hist, 0.95) AS p95_ms,
       ai_cost.histogram_percentile(total_hist, 0.99) AS p99_ms,
       streamed_calls,
       round(ttft_ms_sum::numeric / nullif(streamed_calls, 0)) AS ttft_avg_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.50) AS ttft_p50_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.95) AS ttft_p95_ms,
       ai_cost.histogram_percentile(ttft_hist, 0.99) AS ttft_p99_ms
  FROM merged;
CREATE UNIQUE INDEX mv_latency_by_model_key_idx ON ai_cost.mv_latency_by_model ("window", provider, model);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_latency_by_model IS 'Latency per model over the last 24h, 7d and 30d: successful calls that reached the provider (app-cache hits excluded); percentiles from log-scale histograms, within 9%; time to first token for streamed calls only. Rebuilt by ai_cost.refresh(). Read ai_cost.latency_by_model.';

-- Top 100 tenants, users and conversations by spend over the last 7 and 30
-- days, with their share of all spend in the window.
CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH windows AS (
  SELECT label, since FROM ai_cost._private_windows WHERE label IN ('7d', '30d')
), totals AS (
  SELECT w.label, sum(r.cost_micros) AS cost_micros
    FROM windows w JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
   GROUP BY w.label
), spend AS (
  SELECT w.label, d.kind, d.id, sum(r.calls) AS calls, sum(r.cost_micros) AS cost_micros,
         sum(r.unpriced_calls) AS unpriced_calls
    FROM windows w
    JOIN ai_cost.calls_hourly_live r ON r.hour >= w.since
   CROSS JOIN LATERAL (VALUES ('tenant', r.tenant_id), ('user', r.user_id)) AS d(kind, id)
   WHERE d.id IS NOT NULL
   GROUP BY w.label, d.kind, d.id
  UNION ALL
  SELECT w.label, 'conversation', c.conversation_id, sum(c.calls), sum(c.cost_micros), sum(c.unpriced_calls)
    FROM windows w
    JOIN ai_cost.conversations_hourly_live c ON c.hour >= w.since
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

-- Trends per dimension value (and the total): the last 7 days against the 7
-- before, and month to date against last month, with a straight-line
-- projection to the end of the month. Months are UTC calendar months; the
-- arithmetic happens on UTC timestamps, so the session time zone cannot shift
-- a month boundary.
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
), sliced AS (
  SELECT d.dimension, d.value, r.hour, r.cost_micros, c.*
    FROM cutoffs c
    JOIN ai_cost.calls_hourly_live r ON r.hour >= least(c.previous_week_start, c.previous_month_start)
   CROSS JOIN LATERAL (VALUES ('total', NULL::text), ('provider', r.provider), ('model', r.model),
                              ('tenant', r.tenant_id), ('feature', r.feature)) AS d(dimension, value)
), summed AS (
  SELECT dimension, value,
         coalesce(sum(cost_micros) FILTER (WHERE hour >= week_start), 0)::bigint AS last_7d_micros,
         coalesce(sum(cost_micros) FILTER (WHERE hour >= previous_week_start AND hour < week_start), 0)::bigint AS previous_7d_micros,
         coalesce(sum(cost_micros) FILTER (WHERE hour >= month_start), 0)::bigint AS month_to_date_micros,
         coalesce(sum(cost_micros) FILTER (WHERE hour >= previous_month_start AND hour < month_start), 0)::bigint AS last_month_micros,
         coalesce(sum(cost_micros) FILTER (WHERE hour >= previous_month_start AND hour < previous_month_same_point), 0)::bigint AS last_month_to_date_micros,
         extract(epoch FROM max(month_end) - max(month_start)) / greatest(extract(epoch FROM max(at) - max(month_start)), 1) AS month_scale
    FROM sliced
   GROUP BY dimension, value
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
CREATE VIEW ai_cost.error_rate_by_model AS
SELECT "window", provider, model, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_model;
COMMENT ON VIEW ai_cost.error_rate_by_model IS 'Attempts, errors, cancellations and error rate per model over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
CREATE VIEW ai_cost.error_rate_by_feature AS
SELECT "window", feature, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_feature;
COMMENT ON VIEW ai_cost.error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
CREATE VIEW ai_cost.latency_by_model AS
SELECT "window", provider, model, calls, avg_ms, p50_ms, p95_ms, p99_ms, streamed_calls, ttft_avg_ms,
       ttft_p50_ms, ttft_p95_ms, ttft_p99_ms
  FROM ai_cost.mv_latency_by_model;
COMMENT ON VIEW ai_cost.latency_by_model IS 'Latency p50/p95/p99 of successful provider calls per model (app-cache hits excluded), and time to first token of streamed calls, over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
CREATE VIEW ai_cost.top_spenders AS
SELECT "window", kind, rank, id, calls, cost_micros, unpriced_calls, share_of_cost FROM ai_cost.mv_top_spenders;
COMMENT ON VIEW ai_cost.top_spenders IS 'Top 100 tenants, users and conversations (column kind) by spend over the last 7d and 30d. As of the last ai_cost.refresh().';
CREATE VIEW ai_cost.spend_trends AS
SELECT dimension, value, last_7d_micros, previous_7d_micros, change_7d, month_to_date_micros, last_month_micros,
       last_month_to_date_micros, projected_month_micros
  FROM ai_cost.mv_spend_trends;
COMMENT ON VIEW ai_cost.spend_trends IS 'Spend trends (7 days vs the 7 before, month to date vs last month, projection to month end) for the total and per provider, model, tenant and feature. As of the last ai_cost.refresh().';

------------------------------------------------------------------------------
-- Budgets
------------------------------------------------------------------------------

CREATE TABLE ai_cost.budgets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE,
  scope text NOT NULL DEFAULT 'global',
  scope_value text,
  period text NOT NULL,
  limit_micros bigint NOT NULL,
  alert_at_percent integer[] NOT NULL DEFAULT '{80,100}',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT "budget name must not be empty" CHECK (name <> ''),
  CONSTRAINT "budget scope must be global, tenant, user or feature"
    CHECK (scope IN ('global', 'tenant', 'user', 'feature')),
  CONSTRAINT "global budgets have no scope_value, the others need one"
    CHECK ((scope = 'global') = (scope_value IS NULL)),
  CONSTRAINT "budget period must be day, week or month" CHECK (period IN ('day', 'week', 'month')),
  CONSTRAINT "budget limit_micros must be positive" CHECK (limit_micros > 0),
  CONSTRAINT "alert_at_percent must list whole percentages from 1 to 1000"
    CHECK (cardinality(alert_at_percent) > 0 AND array_position(alert_at_percent, NULL) IS NULL
           AND 1 <= ALL (alert_at_percent) AND 1000 >= ALL (alert_at_percent))
);
COMMENT ON TABLE ai_cost.budgets IS 'Spending limits per UTC day, week (from Monday) or month, globally or for one tenant, user or feature. ai_cost.budget_status compares them with spend; ai_cost.refresh() sends NOTIFY ai_cost_budget once per threshold and period.';
COMMENT ON COLUMN ai_cost.budgets.id IS 'Budget id.';
COMMENT ON COLUMN ai_cost.budgets.name IS 'A name people recognise, e.g. "acme monthly".';
COMMENT ON COLUMN ai_cost.budgets.scope IS 'What the budget covers: global (all calls), tenant, user or feature.';
COMMENT ON COLUMN ai_cost.budgets.scope_value IS 'The tenant_id, user_id or feature the budget covers; NULL for global.';
COMMENT ON COLUMN ai_cost.budgets.period IS 'day, week or month (UTC; weeks start on Monday).';
COMMENT ON COLUMN ai_cost.budgets.limit_micros IS 'Limit per period in micro-dollars (1 = $0.000001).';
COMMENT ON COLUMN ai_cost.budgets.alert_at_percent IS 'Percentages of the limit that raise an alert when spend reaches them, e.g. {50,80,100}.';
COMMENT ON COLUMN ai_cost.budgets.created_at IS 'When the budget was created.';

CREATE TABLE ai_cost.budget_alerts (
  budget_id bigint NOT NULL REFERENCES ai_cost.budgets (id) ON DELETE CASCADE,
  period_start timestamptz NOT NULL,
  percent integer NOT NULL,
  spent_micros bigint NOT NULL,
  limit_micros bigint NOT NULL,
  alerted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (budget_id, period_start, percent)
);
COMMENT ON TABLE ai_cost.budget_alerts IS 'Each budget threshold crossed, once per period: written by ai_cost.refresh(), which sends the same as NOTIFY ai_cost_budget.';
COMMENT ON COLUMN ai_cost.budget_alerts.budget_id IS 'The ai_cost.budgets row.';
COMMENT ON COLUMN ai_cost.budget_alerts.period_start IS 'Start of the budget period the threshold was crossed in.';
COMMENT ON COLUMN ai_cost.budget_alerts.percent IS 'The threshold crossed, in percent of the limit.';
COMMENT ON COLUMN ai_cost.budget_alerts.spent_micros IS 'Spend in the period when the crossing was noticed.';
COMMENT ON COLUMN ai_cost.budget_alerts.limit_micros IS 'The limit at that time.';
COMMENT ON COLUMN ai_cost.budget_alerts.alerted_at IS 'When the refresh noticed the crossing.';

-- Spend of every budget in its current period, always current. Periods are
-- truncated on UTC timestamps, so the session time zone cannot move them.
CREATE VIEW ai_cost.budget_status AS
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
     FROM ai_cost.calls_hourly_live r
    WHERE r.hour >= p.period_start AND r.hour < p.period_end
      AND CASE b.scope WHEN 'tenant' THEN r.tenant_id = b.scope_value
                       WHEN 'user' THEN r.user_id = b.scope_value
                       WHEN 'feature' THEN r.feature = b.scope_value
                       ELSE true END
 ) AS s;
COMMENT ON VIEW ai_cost.budget_status IS 'Each budget in its current UTC period: spend, remaining, percent used, linear projection to period end, highest threshold crossed and status (ok, warning, exceeded). Always current; unpriced calls are counted, their cost unknown.';

------------------------------------------------------------------------------
-- Refresh
------------------------------------------------------------------------------

CREATE TABLE ai_cost._private_refresh_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  refreshed_at timestamptz,
  views_refreshed_at timestamptz,
  duration_ms numeric,
  changes_applied bigint
);
INSERT INTO ai_cost._private_refresh_state DEFAULT VALUES;
COMMENT ON TABLE ai_cost._private_refresh_state IS 'Internal: when ai_cost.refresh() last completed and what it did.';

-- Consumes the captured changes into the rollups and raises budget alerts
-- (work proportional to the changes since the last run), then rebuilds the
-- windowed materialized views (work proportional to the rollup rows of the
-- last 30 days, never to all history) unless views is false. One transaction.
-- Each part has its own advisory lock, taken with a try-lock: a run that finds
-- a part in progress elsewhere skips that part at once instead of queueing, so
-- overlapping runs are harmless, and a frequent rollups-only job never makes a
-- slower views job skip.
CREATE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.alerts INTO applied, alerts FROM ai_cost._private_refresh_rollups() AS r;
  ELSE
    RAISE NOTICE 'ai_cost.refresh(): the rollups are being refreshed by another session: skipped';
  END IF;
  IF views THEN
    IF pg_try_advisory_xact_lock(x'6169636f73745f76'::bigint) THEN
      views_done := true;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_share;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_error_rate_by_feature;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_latency_by_model;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_top_spenders;
      REFRESH MATERIALIZED VIEW CONCURRENTLY ai_cost.mv_spend_trends;
    ELSE
      RAISE NOTICE 'ai_cost.refresh(): the materialized views are being rebuilt by another session: skipped';
    END IF;
  END IF;
  IF rollups_done OR views_done THEN
    UPDATE ai_cost._private_refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;
COMMENT ON FUNCTION ai_cost.refresh(boolean) IS 'Brings the rollups and budget alerts up to date (cost proportional to the calls changed since the last run) and, unless views => false, rebuilds the windowed materialized views: SELECT * FROM ai_cost.refresh(). Safe to overlap: a part already running elsewhere is skipped. pg_cron runs it when installed.';
-- Refreshing writes: only the owner (and roles granted it) should run it.
REVOKE EXECUTE ON FUNCTION ai_cost.refresh(boolean) FROM PUBLIC;

-- The rollup part of ai_cost.refresh(), called under its lock.
CREATE FUNCTION ai_cost._private_refresh_rollups(OUT applied bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Both inserts see the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost._private_call_changes RETURNING *
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, cached, unpriced_reason,
           sum(sign),
           coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0),
           coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0),
           coalesce(sum(sign * cache_read_tokens), 0),
           coalesce(sum(sign * cache_write_tokens), 0),
           coalesce(sum(sign * reasoning_tokens), 0),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0),
           coalesce(sum(sign * total_ms), 0),
           ai_cost._private_histogram(total_ms, sign),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost._private_histogram(ttft_ms, sign) FILTER (WHERE streamed)
      FROM consumed
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
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
      total_ms_hist = ai_cost._private_histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost._private_histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM consumed
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
  )
  SELECT count(*) INTO applied FROM consumed;

  -- Groups whose calls were all deleted or moved away (found by the partial indexes).
  DELETE FROM ai_cost.calls_hourly WHERE calls = 0;
  DELETE FROM ai_cost.conversations_hourly WHERE calls = 0;

  -- Each threshold crossed is recorded once per period and announced; the
  -- notification is delivered when this transaction commits.
  WITH crossed AS (
    SELECT s.budget_id, s.period_start, t.percent, s.spent_micros, s.limit_micros
      FROM ai_cost.budget_status s
      JOIN ai_cost.budgets b ON b.id = s.budget_id
     CROSS JOIN LATERAL unnest(b.alert_at_percent) AS t(percent)
     WHERE 100 * s.spent_micros::numeric >= t.percent * s.limit_micros::numeric
  ), recorded AS (
    INSERT INTO ai_cost.budget_alerts (budget_id, period_start, percent, spent_micros, limit_micros)
    SELECT budget_id, period_start, percent, spent_micros, limit_micros FROM crossed
    ON CONFLICT DO NOTHING
    RETURNING *
  )
  SELECT count(pg_notify('ai_cost_budget', json_build_object(
           'budget_id', r.budget_id, 'name', b.name, 'scope', b.scope, 'scope_value', b.scope_value,
           'period', b.period, 'period_start', r.period_start, 'percent', r.percent,
           'spent_micros', r.spent_micros::text, 'limit_micros', r.limit_micros::text)::text))
    INTO alerts
    FROM recorded r JOIN ai_cost.budgets b ON b.id = r.budget_id;

END
$$;
COMMENT ON FUNCTION ai_cost._private_refresh_rollups() IS 'Internal: folds the captured call changes into the rollups and records and announces budget thresholds crossed; run by ai_cost.refresh() under its lock.';

-- How fresh the materialized views are and how much waits for the next refresh.
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost._private_call_changes) AS pending_changes
  FROM ai_cost._private_refresh_state s;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, and how many changes wait for the next run.';

-- TRUNCATE fires no row or DELETE triggers: empty the rollups with the calls.
CREATE FUNCTION ai_cost._private_truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost._private_call_changes, ai_cost.calls_hourly, ai_cost.conversations_hourly;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost._private_truncate_rollups() IS 'Trigger: empties the rollups and pending changes when ai_cost.calls is truncated.';
CREATE TRIGGER tg_calls__truncate_rollups
  AFTER TRUNCATE ON ai_cost.calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost._private_truncate_rollups();

-- Calls recorded before this migration enter the rollups like any other
-- change: they are exact at once through the live views, and the first
-- refresh folds them in.
INSERT INTO ai_cost._private_call_changes
SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
       feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
       output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms
  FROM ai_cost.calls;

------------------------------------------------------------------------------
-- Read-only role for BI tools
------------------------------------------------------------------------------

-- ai_cost_reader may read the reporting objects and nothing else (not the raw
-- calls, not the internals). Grant it to a login role: GRANT ai_cost_reader TO
-- metabase. Roles are cluster-wide: it is created once, tolerating another
-- installer creating it at the same moment, and only by a user allowed to
-- create roles; without that right the install goes on and says so.
-- (Writer and admin roles and row-level security can join it later.)
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
      RAISE NOTICE 'role ai_cost_reader not created: % may not create roles. Ask an administrator to run CREATE ROLE ai_cost_reader NOLOGIN, then run the install again or grant as in docs/reporting.md', current_user;
      RETURN;
    END IF;
    BEGIN
      CREATE ROLE ai_cost_reader NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- another installer created it a moment ago
    END;
  END IF;
  GRANT USAGE ON SCHEMA ai_cost TO ai_cost_reader;
  GRANT SELECT ON ai_cost.calls_hourly, ai_cost.calls_hourly_live, ai_cost.conversations_hourly,
                  ai_cost.conversations_hourly_live, ai_cost.spend_daily, ai_cost.spend_by_day,
                  ai_cost.activity_hourly, ai_cost.unpriced_models, ai_cost.spend_share,
                  ai_cost.error_rate_by_model, ai_cost.error_rate_by_feature, ai_cost.latency_by_model,
                  ai_cost.top_spenders, ai_cost.spend_trends, ai_cost.mv_spend_share,
                  ai_cost.mv_error_rate_by_model, ai_cost.mv_error_rate_by_feature,
                  ai_cost.mv_latency_by_model, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends,
                  ai_cost.budgets, ai_cost.budget_alerts, ai_cost.budget_status, ai_cost.refresh_status,
                  ai_cost.prices
     TO ai_cost_reader;
  GRANT EXECUTE ON FUNCTION ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
                            ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                            ai_cost.histogram_merge(bigint[])
     TO ai_cost_reader;
END
$$;

------------------------------------------------------------------------------
-- pg_cron
------------------------------------------------------------------------------

-- With pg_cron installed in this database: fold new calls into the rollups
-- every minute (pg_cron 1.4 schedules in minutes), rebuild the windowed
-- materialized views every 5 minutes (their cost follows the 30-day window,
-- not the new rows), and trim the run history of these jobs daily, which
-- pg_cron otherwise keeps forever. Without it, nothing schedules the refresh:
-- run SELECT ai_cost.refresh() or `ai-cost refresh` from any scheduler.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    RAISE NOTICE 'pg_cron is not installed in this database: nothing schedules ai_cost.refresh() (see `ai-cost doctor`)';
  ELSIF NOT has_schema_privilege('cron', 'USAGE') THEN
    RAISE NOTICE 'pg_cron is installed but % may not use schema cron: nothing schedules ai_cost.refresh()', current_user;
  ELSE
    PERFORM cron.schedule('ai_cost_refresh', '* * * * *', 'SELECT ai_cost.refresh(views => false)');
    PERFORM cron.schedule('ai_cost_refresh_views', '*/5 * * * *', 'SELECT ai_cost.refresh()');
    PERFORM cron.schedule('ai_cost_trim_job_history', '17 3 * * *',
      $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' AND jobid IN (SELECT jobid FROM cron.job WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history') AND database = current_database())$cmd$);
  END IF;
END
$$;

-- Down Migration

DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron')
     AND has_schema_privilege('cron', 'USAGE') THEN
    PERFORM cron.unschedule(jobid)
       FROM cron.job
      WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history')
        AND database = current_database() AND username = current_user;
  END IF;
END
$$;

-- The role stays: other databases of the cluster may still use it. This
-- database's grants go with the objects; the schema grant is revoked here.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    REVOKE ALL ON SCHEMA ai_cost FROM ai_cost_reader;
    REVOKE ALL ON ai_cost.prices FROM ai_cost_reader;
  END IF;
END
$$;

DROP TRIGGER IF EXISTS tg_calls__truncate_rollups ON ai_cost.calls;
DROP FUNCTION IF EXISTS ai_cost._private_truncate_rollups();
DROP VIEW IF EXISTS ai_cost.refresh_status;
DROP FUNCTION IF EXISTS ai_cost.refresh(boolean);
DROP FUNCTION IF EXISTS ai_cost._private_refresh_rollups();
DROP TABLE IF EXISTS ai_cost._private_refresh_state;
DROP VIEW IF EXISTS ai_cost.budget_status;
DROP TABLE IF EXISTS ai_cost.budget_alerts;
DROP TABLE IF EXISTS ai_cost.budgets;
DROP VIEW IF EXISTS ai_cost.spend_trends;
DROP VIEW IF EXISTS ai_cost.top_spenders;
DROP VIEW IF EXISTS ai_cost.latency_by_model;
DROP VIEW IF EXISTS ai_cost.error_rate_by_feature;
DROP VIEW IF EXISTS ai_cost.error_rate_by_model;
DROP VIEW IF EXISTS ai_cost.spend_share;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_spend_trends;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_top_spenders;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_latency_by_model;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_error_rate_by_feature;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_error_rate_by_model;
DROP MATERIALIZED VIEW IF EXISTS ai_cost.mv_spend_share;
DROP VIEW IF EXISTS ai_cost._private_windows;
DROP VIEW IF EXISTS ai_cost.unpriced_models;
DROP VIEW IF EXISTS ai_cost.activity_hourly;
DROP VIEW IF EXISTS ai_cost.spend_by_day;
DROP VIEW IF EXISTS ai_cost.spend_daily;
DROP FUNCTION IF EXISTS ai_cost.calls_between(timestamptz, timestamptz);
DROP VIEW IF EXISTS ai_cost.conversations_hourly_live;
DROP VIEW IF EXISTS ai_cost.calls_hourly_live;
DROP TABLE IF EXISTS ai_cost.conversations_hourly;
DROP TABLE IF EXISTS ai_cost.calls_hourly;
DROP TRIGGER IF EXISTS tg_calls__capture_deletes ON ai_cost.calls;
DROP TRIGGER IF EXISTS tg_calls__capture_updates ON ai_cost.calls;
DROP TRIGGER IF EXISTS tg_calls__capture_inserts ON ai_cost.calls;
DROP FUNCTION IF EXISTS ai_cost._private_capture_call_changes();
DROP TABLE IF EXISTS ai_cost._private_call_changes;
DROP FUNCTION IF EXISTS ai_cost.histogram_percentile(bigint[], float8);
DROP AGGREGATE IF EXISTS ai_cost._private_histogram(integer, integer);
DROP FUNCTION IF EXISTS ai_cost._private_histogram_step(bigint[], integer, integer);
DROP AGGREGATE IF EXISTS ai_cost.histogram_merge(bigint[]);
DROP FUNCTION IF EXISTS ai_cost._private_histogram_accumulate(bigint[], bigint[]);
DROP FUNCTION IF EXISTS ai_cost._private_histogram_add(bigint[], bigint[]);
DROP FUNCTION IF EXISTS ai_cost._private_histogram_trim(bigint[]);
DROP FUNCTION IF EXISTS ai_cost.latency_bucket_value(integer);
DROP FUNCTION IF EXISTS ai_cost.latency_bucket(integer);
