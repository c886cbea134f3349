-- Up Migration
--
-- Faster rollups, and materialized views whose rebuild follows the size of
-- the rollups instead of the raw calls.
--
-- Measured on PostgreSQL 15 (10k new calls, `npm run bench refresh` and
-- EXPLAIN ANALYZE of the refresh statement), 0004's refresh spent about
-- 100-250 us per change, nearly all of it in helper functions called once per
-- row or per group:
--   * every helper pinned search_path (SET search_path = ...), and
--     PostgreSQL before 17 saves and restores the search path on every such
--     call (about 5 us), and never inlines a SQL function that has a SET
--     clause: latency_bucket() alone cost 3.6 us a row instead of 0.03 us;
--   * the histogram finaliser (trim) and the merge on conflict (add) were SQL
--     functions built on unnest ... WITH ORDINALITY, 20-30 us a call;
--   * the partial indexes WHERE calls = 0, there to find emptied groups,
--     make every update of `calls` a non-HOT update that writes new entries
--     into the wide unique index too.
-- So the hot helpers below are PL/pgSQL loops over arrays assigned in place,
-- latency_bucket() is an inlinable expression, emptied groups are found from
-- the upserts' own RETURNING, and one refresh statement feeds every rollup
-- from one hourly grouping of the changes.
--
-- The helpers no longer pin search_path. Like 0005's cost trigger they are
-- SECURITY INVOKER and IMMUTABLE, call only pg_catalog functions by their
-- qualified names, and use built-in operators on exactly matching built-in
-- types. Called from ai_cost.refresh() and the views, they run under that
-- function's pinned path; called from a user's own query, a hostile path
-- could only affect that user's own result.
--
-- The windowed materialized views read 0004's hourly rollup, which is keyed
-- by user too: with many users it has about one row per call, so their
-- rebuild cost followed the raw calls of the last 30 days (37 s at 1M rows,
-- against 2.3 s for a naive full REFRESH). They now read narrower rollups:
-- calls and spend by day without the user, spend per user and day, and per
-- hour calls and latency histograms per model and status and calls per
-- feature and status (tens of rows an hour). Windows stay exact to the hour:
-- hourly rows are read only in the few UTC days a window starts in.
-- budget_status and spend_by_day read the daily rollups too: a monthly
-- budget sums at most 31 daily rows per group.

------------------------------------------------------------------------------
-- Faster histogram helpers
------------------------------------------------------------------------------

-- Without STRICT and SET the planner inlines this into the calling query, so
-- bucketing a row costs an expression, not a function call.
CREATE OR REPLACE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms IS NULL THEN NULL
              WHEN ms < 1 THEN 0
              ELSE least(88, 1 + pg_catalog.floor(4 * pg_catalog.ln(ms::float8) / pg_catalog.ln(2::float8) + 1e-9)::integer) END
$$;

-- Drops trailing zero buckets; NULL when nothing is left.
CREATE OR REPLACE FUNCTION ai_cost._private_histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  last integer := pg_catalog.cardinality(h);
BEGIN
  WHILE last > 0 AND coalesce(h[last], 0) = 0 LOOP
    last := last - 1;
  END LOOP;
  IF last = 0 THEN
    RETURN NULL;
  END IF;
  RETURN CASE WHEN last = pg_catalog.cardinality(h) THEN h ELSE h[1:last] END;
END
$$;

-- Adds two histograms bucket by bucket (counts may be negative in a change
-- set), into a copy of the longer one assigned in place; an all-zero sum is
-- NULL again.
CREATE OR REPLACE FUNCTION ai_cost._private_histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  total bigint[];
  other bigint[];
BEGIN
  IF a IS NULL THEN
    RETURN b;
  END IF;
  IF b IS NULL THEN
    RETURN a;
  END IF;
  IF pg_catalog.cardinality(a) >= pg_catalog.cardinality(b) THEN
    total := a;
    other := b;
  ELSE
    total := b;
    other := a;
  END IF;
  FOR slot IN 1 .. pg_catalog.cardinality(other) LOOP
    total[slot] := total[slot] + other[slot];
  END LOOP;
  RETURN ai_cost._private_histogram_trim(total);
END
$$;

-- Adds sparse counts into a histogram: bucket numbers and their counts (a
-- bucket may repeat). The work follows the buckets touched, not the width.
CREATE FUNCTION ai_cost._private_histogram_apply(h bigint[], buckets integer[], counts bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  width integer := coalesce(pg_catalog.cardinality(h), 0);
  slot integer;
BEGIN
  IF buckets IS NULL THEN
    RETURN h;
  END IF;
  IF h IS NULL THEN
    h := '{}';
  END IF;
  FOR i IN 1 .. pg_catalog.cardinality(buckets) LOOP
    slot := buckets[i] + 1;
    IF slot > width THEN
      h := h || pg_catalog.array_fill(0::bigint, ARRAY[slot - width]);
      width := slot;
    END IF;
    h[slot] := h[slot] + counts[i];
  END LOOP;
  IF width = 0 OR h[width] = 0 THEN
    RETURN ai_cost._private_histogram_trim(h);
  END IF;
  RETURN h;
END
$$;
COMMENT ON FUNCTION ai_cost._private_histogram_apply(bigint[], integer[], bigint[]) IS 'Internal: adds (bucket, count) pairs into a latency histogram.';

-- Step of ai_cost.histogram_merge: adds a histogram into a full-width state in place.
CREATE OR REPLACE FUNCTION ai_cost._private_histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF histogram IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  FOR slot IN 1 .. least(89, pg_catalog.cardinality(histogram)) LOOP
    state[slot] := state[slot] + histogram[slot];
  END LOOP;
  RETURN state;
END
$$;

-- Step of the histogram builder: counts one latency with a weight (+1 added, -1 removed).
CREATE OR REPLACE FUNCTION ai_cost._private_histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  slot integer;
BEGIN
  IF ms IS NULL THEN
    RETURN state;
  END IF;
  IF state IS NULL THEN
    state := pg_catalog.array_fill(0::bigint, ARRAY[89]);
  END IF;
  slot := ai_cost.latency_bucket(ms) + 1;
  state[slot] := state[slot] + weight;
  RETURN state;
END
$$;

------------------------------------------------------------------------------
-- Daily rollups
------------------------------------------------------------------------------

-- Emptied groups are found from the upserts' RETURNING now (see
-- _private_refresh_rollups), so updates of `calls` can be HOT again.
DROP INDEX ai_cost.calls_hourly_emptied_idx;
DROP INDEX ai_cost.conversations_hourly_emptied_idx;
-- Room on each page for new versions of its rows, so that folding changes
-- into the current hour and day is a HOT update (no new index entries).
ALTER TABLE ai_cost.calls_hourly SET (fillfactor = 80);
ALTER TABLE ai_cost.conversations_hourly SET (fillfactor = 80);

CREATE TABLE ai_cost._private_calls_daily (
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
  reasoning_tokens bigint NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX _private_calls_daily_key_idx ON ai_cost._private_calls_daily
  (day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason)
  NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost._private_calls_daily IS 'Internal: daily (UTC) rollup of ai_cost.calls by every dimension but the user (day is the start of the UTC day): calls, cost and tokens, maintained with calls_hourly by ai_cost.refresh(); what the windowed materialized views and budgets read.';

CREATE TABLE ai_cost._private_users_daily (
  day timestamptz NOT NULL,
  tenant_id text,
  user_id text,
  calls bigint NOT NULL,
  successes bigint NOT NULL,
  unpriced_calls bigint NOT NULL,
  cost_micros bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX _private_users_daily_key_idx ON ai_cost._private_users_daily
  (day, user_id, tenant_id) NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost._private_users_daily IS 'Internal: daily (UTC) spend per user and tenant, maintained with calls_hourly by ai_cost.refresh(); what per-user reports and budgets read.';

-- Per model and status, and per feature and status, by hour: the few rows
-- (tens per hour) that error rates and latency percentiles need, so their
-- windows merge a few thousand histograms, not one per group and user.
CREATE TABLE ai_cost._private_models_hourly (
  hour timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  status text NOT NULL,
  cached boolean NOT NULL,
  calls bigint NOT NULL,
  total_ms_calls bigint NOT NULL,
  total_ms_sum bigint NOT NULL,
  total_ms_hist bigint[],
  ttft_ms_calls bigint NOT NULL,
  ttft_ms_sum bigint NOT NULL,
  ttft_ms_hist bigint[]
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX _private_models_hourly_key_idx ON ai_cost._private_models_hourly (hour, provider, model, status, cached);
COMMENT ON TABLE ai_cost._private_models_hourly IS 'Internal: hourly (UTC) calls and latency histograms per model, status and app-cache flag, maintained with calls_hourly by ai_cost.refresh(); what the error-rate and latency views read.';

CREATE TABLE ai_cost._private_features_hourly (
  hour timestamptz NOT NULL,
  feature text,
  status text NOT NULL,
  calls bigint NOT NULL
) WITH (fillfactor = 70);
CREATE UNIQUE INDEX _private_features_hourly_key_idx ON ai_cost._private_features_hourly (hour, feature, status) NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost._private_features_hourly IS 'Internal: hourly (UTC) calls per feature and status, maintained with calls_hourly by ai_cost.refresh(); what the error rate per feature reads.';

-- The history so far, from the hourly rollup. Changes not yet consumed stay
-- pending and reach all rollups with the next refresh.
INSERT INTO ai_cost._private_calls_daily
SELECT date_trunc('day', hour, 'UTC'), provider, model, operation, status, service_tier, tenant_id, feature,
       cached, unpriced_reason, sum(calls), sum(unpriced_calls), sum(cost_micros), sum(input_tokens),
       sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens)
  FROM ai_cost.calls_hourly
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;
INSERT INTO ai_cost._private_users_daily
SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
       coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
       sum(input_tokens), sum(output_tokens)
  FROM ai_cost.calls_hourly
 GROUP BY 1, tenant_id, user_id;

INSERT INTO ai_cost._private_models_hourly
SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
       ai_cost.histogram_merge(total_ms_hist), sum(ttft_ms_calls), sum(ttft_ms_sum), ai_cost.histogram_merge(ttft_ms_hist)
  FROM ai_cost.calls_hourly
 GROUP BY hour, provider, model, status, cached;
INSERT INTO ai_cost._private_features_hourly
SELECT hour, feature, status, sum(calls) FROM ai_cost.calls_hourly GROUP BY hour, feature, status;

-- The daily rollups plus the changes no refresh has consumed yet (see
-- ai_cost.calls_hourly_live): exact at any moment. Several rows may share a
-- key: always aggregate.
CREATE VIEW ai_cost._private_calls_daily_live AS
SELECT day, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason,
       calls, unpriced_calls, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
       reasoning_tokens
  FROM ai_cost._private_calls_daily
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
  FROM ai_cost._private_call_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost._private_calls_daily_live IS 'Internal: the daily calls rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost._private_users_daily_live AS
SELECT day, tenant_id, user_id, calls, successes, unpriced_calls, cost_micros, input_tokens, output_tokens
  FROM ai_cost._private_users_daily
UNION ALL
SELECT date_trunc('day', created_at, 'UTC'), tenant_id, user_id,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint
  FROM ai_cost._private_call_changes
 GROUP BY 1, tenant_id, user_id;
COMMENT ON VIEW ai_cost._private_users_daily_live IS 'Internal: the daily per-user rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost._private_models_hourly_live AS
SELECT hour, provider, model, status, cached, calls, total_ms_calls, total_ms_sum, total_ms_hist,
       ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost._private_models_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost._private_histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost._private_histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost._private_call_changes
 GROUP BY 1, provider, model, status, cached;
COMMENT ON VIEW ai_cost._private_models_hourly_live IS 'Internal: the per-model hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

CREATE VIEW ai_cost._private_features_hourly_live AS
SELECT hour, feature, status, calls FROM ai_cost._private_features_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), feature, status, sum(sign)::bigint
  FROM ai_cost._private_call_changes
 GROUP BY 1, feature, status;
COMMENT ON VIEW ai_cost._private_features_hourly_live IS 'Internal: the per-feature hourly rollup plus the changes since the last refresh. Several rows can share a key: aggregate.';

-- The UTC days (their midnights) that `first` or one of `cuts` at or after
-- it falls strictly inside of: the days the slices below read by the hour.
CREATE FUNCTION ai_cost._private_split_days(first timestamptz, cuts timestamptz[]) RETURNS timestamptz[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT date_trunc('day', c, 'UTC')), '{}')
    FROM unnest(cuts || first) AS c
   WHERE c >= first AND date_trunc('day', c, 'UTC') <> c
$$;
COMMENT ON FUNCTION ai_cost._private_split_days(timestamptz, timestamptz[]) IS 'Internal: the UTC days that first or a later cut falls inside of.';

-- Calls and spend (by everything but the user) from the hour of `since` on,
-- in the coarsest rows that keep every instant in `cuts` on a row boundary:
-- whole UTC days from the daily rollup, and hours from the hourly one in each
-- day that `since` or a cut falls inside of. A filter like start >= cut or
-- start < cut is then exact to the hour, while a 30-day window reads about
-- 30 daily rows per group instead of 720 hourly rows per group and user.
-- PL/pgSQL so that each bound reaches the live views as a value: a bound
-- taken from a join would not be pushed into the UNION ALL of a live view,
-- which would then scan its whole rollup. Days are 24 hours: UTC has no
-- daylight saving, whatever the session's time zone.
CREATE FUNCTION ai_cost._private_calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost._private_split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.provider, d.model, d.operation, d.status, d.service_tier, d.tenant_id, d.feature, d.cached,
           d.unpriced_reason, d.calls, d.unpriced_calls, d.cost_micros
      FROM ai_cost._private_calls_daily_live d
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
COMMENT ON FUNCTION ai_cost._private_calls_slices(timestamptz, timestamptz[]) IS 'Internal: rollup rows from the hour of since on, daily except hourly in the UTC days that since or a cut falls inside; start is the day or hour.';

-- The same for spend per user (see _private_calls_slices).
CREATE FUNCTION ai_cost._private_user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  first timestamptz := date_trunc('hour', since, 'UTC');
  split timestamptz[] := ai_cost._private_split_days(first, cuts);
  day timestamptz;
BEGIN
  RETURN QUERY
    SELECT d.day, d.tenant_id, d.user_id, d.calls, d.successes, d.unpriced_calls, d.cost_micros
      FROM ai_cost._private_users_daily_live d
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
COMMENT ON FUNCTION ai_cost._private_user_slices(timestamptz, timestamptz[]) IS 'Internal: per-user spend rows from the hour of since on, daily except hourly in the UTC days that since or a cut falls inside; start is the day or hour.';

------------------------------------------------------------------------------
-- Refresh: one statement feeds every rollup
------------------------------------------------------------------------------

-- The rollup part of ai_cost.refresh(), called under its lock. The changes
-- are summed once per hourly group and latency bucket (cells) with built-in
-- aggregates; the hourly and per-model rollups take those sums by hour, with
-- histograms built from the buckets touched; the daily, per-user and
-- per-feature rollups take the hourly groups; the conversation rollup the
-- changes that carry a conversation. Groups that reach zero calls (all their
-- calls deleted or moved away) are deleted right after, by the row addresses
-- the upserts returned: no index on `calls` is needed, so updates stay
-- HOT-capable.
CREATE OR REPLACE FUNCTION ai_cost._private_refresh_rollups(OUT applied bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  emptied_hourly tid[];
  emptied_daily tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
BEGIN
  -- Only changes committed before this statement started are visible, hence
  -- deleted; later ones stay for the next run. Every part sees the same rows.
  WITH consumed AS (
    DELETE FROM ai_cost._private_call_changes RETURNING *
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
      FROM consumed
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
           ai_cost._private_histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)) AS total_ms_hist,
           sum(ttft_ms_calls)::bigint AS ttft_ms_calls, sum(ttft_ms_sum)::bigint AS ttft_ms_sum,
           ai_cost._private_histogram_apply(NULL,
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
      total_ms_hist = ai_cost._private_histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost._private_histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING h.ctid, h.calls
  ), daily AS (
    INSERT INTO ai_cost._private_calls_daily AS d
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
    INSERT INTO ai_cost._private_users_daily AS u
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
    INSERT INTO ai_cost._private_models_hourly AS m
    SELECT hour, provider, model, status, cached, sum(calls), sum(total_ms_calls), sum(total_ms_sum),
           ai_cost._private_histogram_apply(NULL,
             array_agg(total_bucket) FILTER (WHERE total_ms_calls <> 0),
             array_agg(total_ms_calls) FILTER (WHERE total_ms_calls <> 0)),
           sum(ttft_ms_calls), sum(ttft_ms_sum),
           ai_cost._private_histogram_apply(NULL,
             array_agg(ttft_bucket) FILTER (WHERE ttft_ms_calls <> 0),
             array_agg(ttft_ms_calls) FILTER (WHERE ttft_ms_calls <> 0))
      FROM cells
     GROUP BY hour, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost._private_histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost._private_histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost._private_features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
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
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM daily WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0)
    INTO applied, emptied_hourly, emptied_daily, emptied_users, emptied_conversations, emptied_models, emptied_features;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_daily IS NOT NULL THEN
    DELETE FROM ai_cost._private_calls_daily WHERE ctid = ANY (emptied_daily) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost._private_users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost._private_models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost._private_features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;

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

-- TRUNCATE fires no row or DELETE triggers: empty every rollup with the calls.
CREATE OR REPLACE FUNCTION ai_cost._private_truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost._private_call_changes, ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost._private_calls_daily, ai_cost._private_users_daily, ai_cost._private_models_hourly,
           ai_cost._private_features_hourly;
  RETURN NULL;
END
$$;

------------------------------------------------------------------------------
-- Views on the daily rollups
------------------------------------------------------------------------------

-- Budget periods (UTC day, week, month) start on UTC midnights, so spend in
-- a period is whole daily rows: at most 31 per group for a month.
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
     FROM (SELECT d.day, d.cost_micros, d.unpriced_calls FROM ai_cost._private_calls_daily_live d
            WHERE b.scope <> 'user'
              AND CASE b.scope WHEN 'tenant' THEN d.tenant_id = b.scope_value
                               WHEN 'feature' THEN d.feature = b.scope_value
                               ELSE true END
           UNION ALL
           SELECT u.day, u.cost_micros, u.unpriced_calls FROM ai_cost._private_users_daily_live u
            WHERE b.scope = 'user' AND u.user_id = b.scope_value) AS r
    WHERE r.day >= p.period_start AND r.day < p.period_end
 ) AS s;

-- One row per UTC day, from the daily rollup: the whole history in about one
-- row per day and group instead of per hour, group and user.
CREATE OR REPLACE VIEW ai_cost.spend_by_day AS
SELECT (day AT TIME ZONE 'UTC')::date AS day, sum(calls)::bigint AS calls,
       coalesce(sum(calls) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
       coalesce(sum(calls) FILTER (WHERE status = 'error'), 0)::bigint AS errors,
       coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0)::bigint AS cancelled,
       sum(cost_micros)::bigint AS cost_micros,
       coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0)::bigint AS success_cost_micros,
       sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost._private_calls_daily_live
 GROUP BY 1
HAVING sum(calls) <> 0;

------------------------------------------------------------------------------
-- Materialized views on the daily rollups
------------------------------------------------------------------------------

-- The views keep their names, columns and meaning; only what they read changes.
DROP VIEW ai_cost.spend_share;
DROP VIEW ai_cost.error_rate_by_model;
DROP VIEW ai_cost.error_rate_by_feature;
DROP VIEW ai_cost.latency_by_model;
DROP VIEW ai_cost.top_spenders;
DROP VIEW ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share;
DROP MATERIALIZED VIEW ai_cost.mv_error_rate_by_model;
DROP MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature;
DROP MATERIALIZED VIEW ai_cost.mv_latency_by_model;
DROP MATERIALIZED VIEW ai_cost.mv_top_spenders;
DROP MATERIALIZED VIEW ai_cost.mv_spend_trends;

-- Calls in each report window (label), read once for all three windows:
-- daily rows except in the three UTC days the windows start in.
CREATE VIEW ai_cost._private_window_calls AS
SELECT w.label, s.*
  FROM ai_cost._private_calls_slices((SELECT min(since) FROM ai_cost._private_windows),
                                     ARRAY(SELECT since FROM ai_cost._private_windows)) AS s
  JOIN ai_cost._private_windows w ON s.start >= w.since;
COMMENT ON VIEW ai_cost._private_window_calls IS 'Internal: rollup rows (all dimensions but the user) of the 24h, 7d and 30d windows, labelled; a row belongs to every window it starts in.';

-- Spend per user in each report window (see _private_window_calls).
CREATE VIEW ai_cost._private_window_users AS
SELECT w.label, s.*
  FROM ai_cost._private_user_slices((SELECT min(since) FROM ai_cost._private_windows),
                                    ARRAY(SELECT since FROM ai_cost._private_windows)) AS s
  JOIN ai_cost._private_windows w ON s.start >= w.since;
COMMENT ON VIEW ai_cost._private_window_users IS 'Internal: per-user spend rows of the 24h, 7d and 30d windows, labelled.';

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
    FROM ai_cost._private_window_calls r
   GROUP BY GROUPING SETS ((r.label, r.provider), (r.label, r.model), (r.label, r.operation),
                           (r.label, r.tenant_id), (r.label, r.feature))
  HAVING sum(r.calls) <> 0
  UNION ALL
  SELECT u.label, 'user', u.user_id, sum(u.calls)::bigint, sum(u.successes)::bigint, sum(u.cost_micros)::bigint,
         sum(u.unpriced_calls)::bigint
    FROM ai_cost._private_window_users u
   GROUP BY u.label, u.user_id
  HAVING sum(u.calls) <> 0
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
  JOIN ai_cost._private_models_hourly_live r ON r.hour >= w.since
 -- The 30-day bound again as a value, so that it reaches the rollup's index.
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
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
  JOIN ai_cost._private_features_hourly_live r ON r.hour >= w.since
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
 GROUP BY w.label, r.feature
HAVING sum(r.calls) > 0;
CREATE UNIQUE INDEX mv_error_rate_by_feature_key_idx ON ai_cost.mv_error_rate_by_feature ("window", feature) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature (NULL: calls without one) over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_feature.';

-- Successes only, app cache hits excluded; time to first token only for streamed calls.
CREATE MATERIALIZED VIEW ai_cost.mv_latency_by_model AS
WITH merged AS (
  SELECT w.label AS "window", r.provider, r.model,
         sum(r.total_ms_calls)::bigint AS calls, sum(r.total_ms_sum)::bigint AS total_ms_sum,
         ai_cost.histogram_merge(r.total_ms_hist) AS total_hist,
         sum(r.ttft_ms_calls)::bigint AS streamed_calls, sum(r.ttft_ms_sum)::bigint AS ttft_ms_sum,
         ai_cost.histogram_merge(r.ttft_ms_hist) AS ttft_hist
    FROM ai_cost._private_windows w
    JOIN ai_cost._private_models_hourly_live r ON r.hour >= w.since
   WHERE r.status = 'success' AND NOT r.cached
     AND r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
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

-- Tenants and the total from the daily calls rollup, users from their own,
-- conversations from the conversation rollup (a conversation rarely spans
-- more than an hour or two, so its hourly rows are already few).
CREATE MATERIALIZED VIEW ai_cost.mv_top_spenders AS
WITH calls AS MATERIALIZED (
  SELECT label, tenant_id, calls, cost_micros, unpriced_calls
    FROM ai_cost._private_window_calls WHERE label IN ('7d', '30d')
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
    FROM ai_cost._private_window_users
   WHERE label IN ('7d', '30d') AND user_id IS NOT NULL
   GROUP BY label, user_id
  UNION ALL
  SELECT w.label, 'conversation', c.conversation_id, sum(c.calls), sum(c.cost_micros), sum(c.unpriced_calls)
    FROM ai_cost._private_windows w
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

-- Trends per dimension value (and the total), as in 0004: every bound is a
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
   CROSS JOIN LATERAL ai_cost._private_calls_slices(
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


-- ai_cost_reader (0004) reads the recreated views as before.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    GRANT SELECT ON ai_cost.spend_share, ai_cost.error_rate_by_model, ai_cost.error_rate_by_feature,
                    ai_cost.latency_by_model, ai_cost.top_spenders, ai_cost.spend_trends, ai_cost.mv_spend_share,
                    ai_cost.mv_error_rate_by_model, ai_cost.mv_error_rate_by_feature,
                    ai_cost.mv_latency_by_model, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends
       TO ai_cost_reader;
  END IF;
END
$$;

-- Just-in-time compilation costs more than it saves on these statements: the
-- budget check over zero budgets alone was estimated expensive enough to
-- spend 0.9 s compiling (jit_above_cost), longer than the whole refresh.
ALTER FUNCTION ai_cost.refresh(boolean) SET jit = off;

-- Down Migration
--
-- Back to 0004 exactly: its views, materialized views, functions and indexes,
-- in its own words.

DROP VIEW ai_cost.spend_share;
DROP VIEW ai_cost.error_rate_by_model;
DROP VIEW ai_cost.error_rate_by_feature;
DROP VIEW ai_cost.latency_by_model;
DROP VIEW ai_cost.top_spenders;
DROP VIEW ai_cost.spend_trends;
DROP MATERIALIZED VIEW ai_cost.mv_spend_share;
DROP MATERIALIZED VIEW ai_cost.mv_error_rate_by_model;
DROP MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature;
DROP MATERIALIZED VIEW ai_cost.mv_latency_by_model;
DROP MATERIALIZED VIEW ai_cost.mv_top_spenders;
DROP MATERIALIZED VIEW ai_cost.mv_spend_trends;
DROP VIEW ai_cost._private_window_calls;
DROP VIEW ai_cost._private_window_users;

CREATE OR REPLACE VIEW ai_cost.spend_by_day AS
SELECT day, sum(calls)::bigint AS calls, sum(successes)::bigint AS successes,
       sum(errors)::bigint AS errors, sum(cancelled)::bigint AS cancelled,
       sum(cost_micros)::bigint AS cost_micros, sum(success_cost_micros)::bigint AS success_cost_micros,
       sum(unpriced_calls)::bigint AS unpriced_calls,
       sum(input_tokens)::bigint AS input_tokens, sum(output_tokens)::bigint AS output_tokens
  FROM ai_cost.spend_daily
 GROUP BY day;

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
     FROM ai_cost.calls_hourly_live r
    WHERE r.hour >= p.period_start AND r.hour < p.period_end
      AND CASE b.scope WHEN 'tenant' THEN r.tenant_id = b.scope_value
                       WHEN 'user' THEN r.user_id = b.scope_value
                       WHEN 'feature' THEN r.feature = b.scope_value
                       ELSE true END
 ) AS s;

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


-- ai_cost_reader (0004) reads the recreated views as before.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    GRANT SELECT ON ai_cost.spend_share, ai_cost.error_rate_by_model, ai_cost.error_rate_by_feature,
                    ai_cost.latency_by_model, ai_cost.top_spenders, ai_cost.spend_trends, ai_cost.mv_spend_share,
                    ai_cost.mv_error_rate_by_model, ai_cost.mv_error_rate_by_feature,
                    ai_cost.mv_latency_by_model, ai_cost.mv_top_spenders, ai_cost.mv_spend_trends
       TO ai_cost_reader;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost._private_refresh_rollups(OUT applied bigint, OUT alerts bigint)
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

CREATE OR REPLACE FUNCTION ai_cost._private_truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost._private_call_changes, ai_cost.calls_hourly, ai_cost.conversations_hourly;
  RETURN NULL;
END
$$;

ALTER FUNCTION ai_cost.refresh(boolean) RESET jit;
DROP FUNCTION ai_cost._private_calls_slices(timestamptz, timestamptz[]);
DROP FUNCTION ai_cost._private_user_slices(timestamptz, timestamptz[]);
DROP FUNCTION ai_cost._private_split_days(timestamptz, timestamptz[]);
DROP VIEW ai_cost._private_calls_daily_live;
DROP VIEW ai_cost._private_users_daily_live;
DROP VIEW ai_cost._private_models_hourly_live;
DROP VIEW ai_cost._private_features_hourly_live;
DROP TABLE ai_cost._private_calls_daily;
DROP TABLE ai_cost._private_users_daily;
DROP TABLE ai_cost._private_models_hourly;
DROP TABLE ai_cost._private_features_hourly;
ALTER TABLE ai_cost.calls_hourly RESET (fillfactor);
ALTER TABLE ai_cost.conversations_hourly RESET (fillfactor);
CREATE INDEX calls_hourly_emptied_idx ON ai_cost.calls_hourly (hour) WHERE calls = 0;
CREATE INDEX conversations_hourly_emptied_idx ON ai_cost.conversations_hourly (hour) WHERE calls = 0;

DROP FUNCTION ai_cost._private_histogram_apply(bigint[], integer[], bigint[]);
CREATE OR REPLACE FUNCTION ai_cost._private_histogram_step(state bigint[], ms integer, weight integer) RETURNS bigint[]
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

CREATE OR REPLACE FUNCTION ai_cost._private_histogram_accumulate(state bigint[], histogram bigint[]) RETURNS bigint[]
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

CREATE OR REPLACE FUNCTION ai_cost._private_histogram_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE
    WHEN a IS NULL THEN b
    WHEN b IS NULL THEN a
    ELSE ai_cost._private_histogram_trim(ARRAY(
      SELECT coalesce(x, 0) + coalesce(y, 0) FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i) ORDER BY i))
  END
$$;

CREATE OR REPLACE FUNCTION ai_cost._private_histogram_trim(h bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN last IS NULL THEN NULL ELSE h[1:last] END
    FROM (SELECT max(i) AS last FROM unnest(h) WITH ORDINALITY AS t(n, i) WHERE n <> 0) AS s
$$;

CREATE OR REPLACE FUNCTION ai_cost.latency_bucket(ms integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  -- The epsilon keeps exact powers of two in their own bucket despite float rounding.
  SELECT CASE WHEN ms < 1 THEN 0
              ELSE least(88, 1 + floor(4 * ln(ms::float8) / ln(2::float8) + 1e-9)::integer) END
$$;
