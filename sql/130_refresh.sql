-- The refresh: what keeps the rollups, budget alerts, price book and
-- materialized views current, whatever schedules it (pg_cron, 160_schedule.sql,
-- or any scheduler calling SELECT ai_cost.refresh()).

CREATE TABLE ai_cost_internal.refresh_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  refreshed_at timestamptz,
  views_refreshed_at timestamptz,
  duration_ms numeric,
  changes_applied bigint
);

INSERT INTO ai_cost_internal.refresh_state DEFAULT VALUES;
COMMENT ON TABLE ai_cost_internal.refresh_state IS 'Internal: when ai_cost.refresh() last completed and what it did.';

-- Folds the pending call changes into the rollups, raises budget alerts,
-- compiles the price book again once a price has started or ended since the
-- last compile, and rebuilds the windowed materialized views. Each part runs
-- under its own advisory lock and is skipped when another session holds it,
-- so overlapping runs (pg_cron plus a manual one) are safe. Just-in-time
-- compilation costs more than it saves on these statements: the budget check
-- over zero budgets alone was estimated expensive enough to spend 0.9 s
-- compiling (jit_above_cost), longer than the whole refresh.
CREATE FUNCTION ai_cost.refresh(views boolean DEFAULT true)
RETURNS TABLE (refreshed boolean, changes_applied bigint, views_refreshed boolean, budget_alerts bigint, duration_ms numeric)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  started timestamptz := clock_timestamp();
  applied bigint := 0;
  alerts bigint := 0;
  rollups_done boolean := false;
  views_done boolean := false;
BEGIN
  IF ai_cost_internal.price_book_stale_at() <= now() THEN
    PERFORM ai_cost_internal.compile_price_book();
  END IF;
  -- "aicost_r" and "aicost_v": the keys of the rollup and view locks.
  IF pg_try_advisory_xact_lock(x'6169636f73745f72'::bigint) THEN
    rollups_done := true;
    SELECT r.applied, r.alerts INTO applied, alerts FROM ai_cost_internal.refresh_rollups() AS r;
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
    UPDATE ai_cost_internal.refresh_state AS s
       SET refreshed_at = CASE WHEN rollups_done THEN now() ELSE s.refreshed_at END,
           views_refreshed_at = CASE WHEN views_done THEN now() ELSE s.views_refreshed_at END,
           duration_ms = round(extract(epoch FROM clock_timestamp() - started) * 1000, 1),
           changes_applied = CASE WHEN rollups_done THEN applied ELSE s.changes_applied END;
  END IF;
  RETURN QUERY SELECT rollups_done, applied, views_done, alerts, round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;
COMMENT ON FUNCTION ai_cost.refresh(boolean) IS 'Brings the rollups and budget alerts up to date (cost proportional to the calls changed since the last run) and, unless views => false, rebuilds the windowed materialized views: SELECT * FROM ai_cost.refresh(). Safe to overlap: a part already running elsewhere is skipped. pg_cron runs it when installed.';

-- How fresh the materialized views are and how much waits for the next refresh.
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.call_changes) AS pending_changes
  FROM ai_cost_internal.refresh_state s;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, and how many changes wait for the next run.';
