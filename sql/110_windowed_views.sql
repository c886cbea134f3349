-- Windowed materialized views: spend share, error rates, latency, top
-- spenders and trends over the last 24 hours, 7 days and 30 days, as BI
-- tools like them (small, indexed, refreshed CONCURRENTLY by refresh()).
--
-- Each reads the narrow rollups, not the raw calls: daily rows for the whole
-- days of a window and hourly rows only in the UTC day a window starts in,
-- so windows stay exact to the hour and a rebuild reads about 30 daily rows
-- per group instead of 720 hourly rows per group and user. The plain views
-- of the same names without mv_ read the live rollups: exact now, slower.

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
CREATE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- The same for spend per user (see ai_cost_internal.calls_slices).
CREATE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
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

-- Calls in each report window (label), read once for all three windows:
-- daily rows except in the three UTC days the windows start in.
CREATE VIEW ai_cost_internal.window_calls AS
SELECT w.label, s.*
  FROM ai_cost_internal.calls_slices((SELECT min(since) FROM ai_cost_internal.windows),
                                     ARRAY(SELECT since FROM ai_cost_internal.windows)) AS s
  JOIN ai_cost_internal.windows w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_calls IS 'Internal: rollup rows (all dimensions but the user) of the 24h, 7d and 30d windows, labelled; a row belongs to every window it starts in.';

-- Spend per user in each report window (see ai_cost_internal.window_calls).
CREATE VIEW ai_cost_internal.window_users AS
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM ai_cost_internal.windows),
                                    ARRAY(SELECT since FROM ai_cost_internal.windows)) AS s
  JOIN ai_cost_internal.windows w ON s.start >= w.since;
COMMENT ON VIEW ai_cost_internal.window_users IS 'Internal: per-user spend rows of the 24h, 7d and 30d windows, labelled.';

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

