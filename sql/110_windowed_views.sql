-- Windowed materialized views: spend share, error rates, latency, top
-- spenders and trends over the last 24 hours, 7 days and 30 days, as BI
-- tools like them (small, indexed, refreshed CONCURRENTLY by refresh()).
--
-- Each reads the narrow rollups, not the raw calls: daily rows for the whole
-- days of a window and hourly rows only in the UTC day a window starts in
-- (from its smaller side, see dimension_slices), so windows stay exact to
-- the hour and a rebuild reads about 30 daily rows per value instead of 720
-- hourly rows per group and user. The plain views of the same names without
-- mv_ read the live rollups: exact now, slower.

-- The report windows, each the last N UTC hours up to and including the
-- current one. Windows keep each rebuild proportional to recent rollup rows,
-- not to all history.
CREATE VIEW ai_cost_internal.windows AS
SELECT label, date_trunc('hour', now(), 'UTC') - (hours - 1) * interval '1 hour' AS since
  FROM (VALUES ('24h', 24), ('7d', 168), ('30d', 720)) AS w(label, hours);
COMMENT ON VIEW ai_cost_internal.windows IS 'Internal: the 24h, 7d and 30d report windows as their first UTC hour.';

-- The UTC days (their midnights) that `first` or one of `cuts` at or after
-- it falls strictly inside of: the days the slices below read by the hour.
CREATE FUNCTION ai_cost_internal.split_days(first timestamptz, cuts timestamptz[]) RETURNS timestamptz[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT date_trunc('day', c, 'UTC')), '{}')
    FROM unnest(cuts || first) AS c
   WHERE c >= first AND date_trunc('day', c, 'UTC') <> c
$$;
COMMENT ON FUNCTION ai_cost_internal.split_days(timestamptz, timestamptz[]) IS 'Internal: the UTC days that first or a later cut falls inside of.';

-- How the slices below read a UTC day that `first` or one of the `cuts` at
-- or after it falls inside. The day is cut into parts from the later of the
-- day and `first` on, each starting at a cut (or that later one) and
-- counting the whole hours from there to the next: an hour a cut falls
-- inside counts before the cut. `bounds` are the parts' starts, sorted. The
-- hours read from the hourly rollup are [read_from, skip_from) and
-- [skip_to, the day's end). When the longest part has more hours than the
-- rest of the day read by the hour and one more (the daily row), it is
-- skipped and summed as the day's daily row less the hours read:
-- derived_start is then its start, else NULL and nothing is skipped.
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

-- Calls and spend per value of the dimensions named (of provider, model,
-- operation, tenant, user and feature) from the hour of `since` on,
-- in the coarsest rows that keep every instant in `cuts` on a row boundary:
-- whole UTC days from the daily dimension rollup, and in each day that
-- `since` or a cut falls inside of, a row per part of the day between the
-- cuts (start is then the cut, or the hour of `since`; an hour a cut falls
-- inside counts before it). A filter like start >= cut or start < cut is
-- then exact to the hour, while a 30-day window reads about 30 daily rows
-- per value instead of 720 hourly rows per group and user.
--
-- A cut day is read from its smaller side (ai_cost_internal.day_reading):
-- the longest part is the day's daily row less the day's other hours, when
-- those are fewer hours of the hourly rollup than the part itself (a window
-- starting at 01:00 reads the one hour before it, not the 23 after it); the
-- other parts are the hourly rollup's rows summed between the cuts. A model is its model id, whoever
-- served it: the daily rollup's model_id rows. PL/pgSQL so that each bound
-- reaches the live views as a value: a bound taken from a join would not be
-- pushed into the UNION ALL of a live view, which would then scan its whole
-- rollup; planned for each call's values (force_custom_plan), so that the
-- hours a bound covers are estimated from the rollup's statistics and the
-- hourly rows are summed in a hash table rather than sorted on disk. Days
-- are 24 hours: UTC has no daylight saving, whatever the session's time
-- zone.
--
-- A window is a few weeks of a rollup that holds all history, so it is read
-- through the rollup's index on the day, never by a sequential scan. The
-- planner prefers a (parallel) scan of the whole rollup once the window's
-- rows are spread over many pages, as after history is backfilled and folded
-- in bulk: with 10M calls over 500 days that reads 67,000 pages for 30 days'
-- 7,600, and makes the rebuild of every view on it grow with history.
-- Turning sequential scans off prices every plan of the function in the
-- billions, far past jit_above_cost: jit = off, or each of its queries would
-- spend about 0.2 s compiling a scan of a few milliseconds.
CREATE FUNCTION ai_cost_internal.dimension_slices(since timestamptz, cuts timestamptz[], dimensions text[])
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

-- Spend per user and tenant, sliced as ai_cost_internal.dimension_slices
-- slices, a cut day read from its smaller side the same way.
CREATE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
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

-- Calls per dimension value in each report window (label), read once for
-- all three windows: daily rows except in the three UTC days the windows
-- start in. The windows are computed once (MATERIALIZED): inlined, their
-- bounds would be computed again from now() for every row and window they
-- are compared with, about a tenth of a rebuild.
CREATE VIEW ai_cost_internal.window_dimensions AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.dimension_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w),
                                         ARRAY['provider', 'model', 'operation', 'tenant', 'user', 'feature']) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_dimensions IS 'Internal: calls and spend per provider, model, operation, tenant, user and feature in the 24h, 7d and 30d windows, labelled; a row belongs to every window it starts in.';

-- Spend per user in the 7d and 30d windows, the ones the top spenders rank
-- (see ai_cost_internal.window_dimensions): the 24-hour window would cut one
-- more day for nothing.
CREATE VIEW ai_cost_internal.window_users AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows WHERE label IN ('7d', '30d'))
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_users IS 'Internal: per-user spend rows of the 7d and 30d windows, labelled.';

-- The window rows hold a row per dimension value a day, about as many as
-- the dimensions have values, not one per group of every dimension.
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

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_model AS
SELECT w.label AS "window", r.provider, r.model, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost_internal.windows w
  JOIN ai_cost_internal.models_hourly_live r ON r.hour >= w.since
 -- The 30-day bound again as a value, so that it reaches the rollup's index.
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
 GROUP BY w.label, r.provider, r.model
HAVING sum(r.calls) > 0;

CREATE UNIQUE INDEX mv_error_rate_by_model_key_idx ON ai_cost.mv_error_rate_by_model ("window", provider, model);
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_model IS 'Attempts, errors, cancellations and error rate (errors / attempts) per model over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_model.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature AS
SELECT w.label AS "window", r.feature, sum(r.calls)::bigint AS attempts,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::bigint AS errors,
       coalesce(sum(r.calls) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled,
       round(coalesce(sum(r.calls) FILTER (WHERE r.status = 'error'), 0)::numeric / sum(r.calls), 6) AS error_rate
  FROM ai_cost_internal.windows w
  JOIN ai_cost_internal.features_hourly_live r ON r.hour >= w.since
 WHERE r.hour >= date_trunc('hour', now(), 'UTC') - interval '719 hours'
 GROUP BY w.label, r.feature
HAVING sum(r.calls) > 0;

CREATE UNIQUE INDEX mv_error_rate_by_feature_key_idx ON ai_cost.mv_error_rate_by_feature ("window", feature) NULLS NOT DISTINCT;
COMMENT ON MATERIALIZED VIEW ai_cost.mv_error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature (NULL: calls without one) over the last 24h, 7d and 30d; rebuilt by ai_cost.refresh(). Read ai_cost.error_rate_by_feature.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.mv_error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

-- Successes only, app cache hits excluded; time to first token only for streamed calls.
CREATE MATERIALIZED VIEW ai_cost.mv_latency_by_model AS
WITH merged AS (
  SELECT w.label AS "window", r.provider, r.model,
         sum(r.total_ms_calls)::bigint AS calls, sum(r.total_ms_sum)::bigint AS total_ms_sum,
         ai_cost.histogram_merge(r.total_ms_hist) AS total_hist,
         sum(r.ttft_ms_calls)::bigint AS streamed_calls, sum(r.ttft_ms_sum)::bigint AS ttft_ms_sum,
         ai_cost.histogram_merge(r.ttft_ms_hist) AS ttft_hist
    FROM ai_cost_internal.windows w
    JOIN ai_cost_internal.models_hourly_live r ON r.hour >= w.since
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

-- Tenants, users and the total from the daily per-user rollup (a row per
-- user and day, the narrowest that holds the tenant), conversations from the
-- conversation rollup (a conversation rarely spans more than an hour or two,
-- so its hourly rows are already few). A month holds many conversations:
-- each is summed once, for 30 days and for the last 7 beside it, and each
-- window keeps its 100 biggest with a top-N sort instead of ranking them
-- all.
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

-- Trends per dimension value (and the total): every bound is a cut of the
-- slices, so each stays exact to the hour. Every call has one provider, so
-- the provider rows count the total too.
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

CREATE VIEW ai_cost.error_rate_by_model AS
SELECT "window", provider, model, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_model;
COMMENT ON VIEW ai_cost.error_rate_by_model IS 'Attempts, errors, cancellations and error rate per model over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.error_rate_by_model.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.error_rate_by_model.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.model IS 'Model id as the provider reports it.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_model.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.error_rate_by_model.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE VIEW ai_cost.error_rate_by_feature AS
SELECT "window", feature, attempts, errors, cancelled, error_rate FROM ai_cost.mv_error_rate_by_feature;
COMMENT ON VIEW ai_cost.error_rate_by_feature IS 'Attempts, errors, cancellations and error rate per feature over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.window IS '24h, 7d or 30d: the last 24, 168 or 720 UTC hours, counting the hour of the last ai_cost.refresh(). Every figure here is as of that refresh (ai_cost.refresh_status.views_refreshed_at).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.feature IS 'Product feature that made the calls (NULL: calls without one).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.attempts IS 'Call attempts in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.errors IS 'Calls with status error in the window.';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.cancelled IS 'Calls with status cancelled in the window (not counted as errors).';
COMMENT ON COLUMN ai_cost.error_rate_by_feature.error_rate IS 'errors / attempts, a fraction with 6 decimals (0.05 = 5%).';

CREATE VIEW ai_cost.latency_by_model AS
SELECT "window", provider, model, calls, avg_ms, p50_ms, p95_ms, p99_ms, streamed_calls, ttft_avg_ms,
       ttft_p50_ms, ttft_p95_ms, ttft_p99_ms
  FROM ai_cost.mv_latency_by_model;
COMMENT ON VIEW ai_cost.latency_by_model IS 'Latency p50/p95/p99 of successful provider calls per model (app-cache hits excluded), and time to first token of streamed calls, over the last 24h, 7d and 30d. As of the last ai_cost.refresh().';
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

