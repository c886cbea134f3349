-- Up Migration
--
-- The windowed materialized views rebuild faster (sql/ holds each
-- definition; this step brings the schema there): the report windows are
-- computed once per rebuild instead of once per rollup row and window, and
-- the functions that read the windows' rollup rows compile nothing just in
-- time.

SET LOCAL check_function_bodies = off;

CREATE OR REPLACE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
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

CREATE OR REPLACE VIEW ai_cost_internal.window_calls AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.calls_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;

CREATE OR REPLACE VIEW ai_cost_internal.window_users AS
WITH w AS MATERIALIZED (SELECT label, since FROM ai_cost_internal.windows)
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM w), ARRAY(SELECT since FROM w)) AS s
  JOIN w ON s.start >= w.since;

-- Down Migration

SET LOCAL check_function_bodies = off;

CREATE OR REPLACE FUNCTION ai_cost_internal.calls_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, provider text, model text, operation text, status text, service_tier text,
               tenant_id text, feature text, cached boolean, unpriced_reason text, calls bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
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

CREATE OR REPLACE FUNCTION ai_cost_internal.user_slices(since timestamptz, cuts timestamptz[])
RETURNS TABLE (start timestamptz, tenant_id text, user_id text, calls bigint, successes bigint,
               unpriced_calls bigint, cost_micros bigint)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
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

CREATE OR REPLACE VIEW ai_cost_internal.window_calls AS
SELECT w.label, s.*
  FROM ai_cost_internal.calls_slices((SELECT min(since) FROM ai_cost_internal.windows),
                                     ARRAY(SELECT since FROM ai_cost_internal.windows)) AS s
  JOIN ai_cost_internal.windows w ON s.start >= w.since;

CREATE OR REPLACE VIEW ai_cost_internal.window_users AS
SELECT w.label, s.*
  FROM ai_cost_internal.user_slices((SELECT min(since) FROM ai_cost_internal.windows),
                                    ARRAY(SELECT since FROM ai_cost_internal.windows)) AS s
  JOIN ai_cost_internal.windows w ON s.start >= w.since;
