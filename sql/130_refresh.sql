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

-- Folds the pending call changes into the rollups (which announces models
-- newly unpriced, see 125_unpriced_model_alerts.sql), raises budget alerts,
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
  set_aside bigint := 0;
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
    SELECT r.applied, r.set_aside, r.alerts INTO applied, set_aside, alerts FROM ai_cost_internal.refresh_rollups() AS r;
    IF set_aside > 0 THEN
      RAISE WARNING 'ai_cost.refresh(): % call change(s) could not be folded and were set aside: see ai_cost.set_aside_calls', set_aside;
    END IF;
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
COMMENT ON FUNCTION ai_cost.refresh(boolean) IS 'Brings the rollups and budget alerts up to date (cost proportional to the calls changed since the last run), announces each model newly without a price (NOTIFY ai_cost_unpriced_model, unless ai_cost.unpriced_model_alert_settings turns it off) and, unless views => false, rebuilds the windowed materialized views: SELECT * FROM ai_cost.refresh(). Safe to overlap: a part already running elsewhere is skipped. pg_cron runs it when installed.';

-- The updates and deletes of a distributed ledger that a refresh has folded
-- but keeps on the shards for open transactions whose live views may still
-- count them (see collect_shard_changes in 145_distribution.sql): since
-- when, and the backends of those transactions. 145_distribution.sql gives
-- it a body over the kept collections; none on one server.
CREATE FUNCTION ai_cost_internal.shard_changes_kept(OUT kept_since timestamptz, OUT kept_for_pids integer[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT NULL::timestamptz, NULL::integer[]
$$;
COMMENT ON FUNCTION ai_cost_internal.shard_changes_kept() IS 'Internal: since when updates and deletes already folded are kept on the shards of a distributed ledger for open transactions, and their backends; NULL on one server and when none are kept for one.';

-- How fresh the rollups and materialized views are, how much waits for the
-- next refresh, and what holds calls back: ids passed while a transaction
-- that could still commit calls there was open (see unfolded_ids in
-- 090_rollups.sql), with the backends of those transactions still open; and
-- on a distributed ledger, which open transactions keep folded changes on
-- the shards.
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.pending_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes,
       (SELECT min(u.held_since) FROM ai_cost_internal.unfolded_ids u) AS held_back_since,
       (SELECT array_agg(DISTINCT l.pid ORDER BY l.pid) FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL
           AND l.virtualxid IN (SELECT unnest(u.writers) FROM ai_cost_internal.unfolded_ids u)) AS held_back_by_pids,
       k.kept_since AS shard_changes_kept_since,
       k.kept_for_pids AS shard_changes_kept_for_pids
  FROM ai_cost_internal.refresh_state s
 CROSS JOIN ai_cost_internal.shard_changes_kept() k;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many wait for the next run, how many it set aside (ai_cost.set_aside_calls), which open transactions hold calls back, and on a distributed ledger which keep folded changes on the shards.';
COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';
COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';
COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';
COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'New calls, updates and deletes the last refresh of the rollups folded in.';
COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'New calls, updates and deletes waiting for the next refresh (the live views already count them).';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded. On a distributed ledger a call updated or deleted while a refresh read it waits too, for the next refresh.';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_by_pids IS 'Process ids (pg_stat_activity.pid) of the open transactions that hold call ids back, as of the last refresh; their calls are folded by the first refresh after they end. NULL when none.';
COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';
COMMENT ON COLUMN ai_cost.refresh_status.shard_changes_kept_since IS 'On a distributed ledger: since when (the refresh that folded them) updates and deletes already folded have stayed on the shards for transactions still open, whose live views may still count them; every live view and refresh reads past them until those end, for ten refreshes that fold changes at most. NULL when none are kept for an open transaction, and on one server.';
COMMENT ON COLUMN ai_cost.refresh_status.shard_changes_kept_for_pids IS 'On a distributed ledger: process ids (pg_stat_activity.pid) of the open transactions for which folded updates and deletes stay on the shards. NULL when none.';

-- Puts set-aside changes (of one call, or all) back for the next refresh,
-- once the calls are fixed. A fix is itself a change of the call, set aside
-- beside the original (an update removes the bad version and adds the new
-- one; a delete removes it): an addition and a removal of the same version
-- cancel out here, so only what the rollups lack is folded. A change still
-- bad is set aside again by that refresh. To forget a change instead (it
-- stays out of the rollups), delete it from ai_cost_internal.set_aside_changes.
-- Waits for a running refresh of the rollups.
CREATE FUNCTION ai_cost.retry_set_aside_changes(call_id bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  moved bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  WITH taken AS (
    DELETE FROM ai_cost_internal.set_aside_changes s
     WHERE retry_set_aside_changes.call_id IS NULL OR s.call_id = retry_set_aside_changes.call_id
    RETURNING s.*, to_jsonb(s) - '{sign,reason,set_aside_at}'::text[] AS version
  ), numbered AS (
    -- The n-th addition of a version cancels its n-th removal.
    SELECT t.*, row_number() OVER (PARTITION BY t.version, t.sign ORDER BY t.set_aside_at) AS n FROM taken t
  ), returned AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT a.sign, a.created_at, a.provider, a.model, a.operation, a.status, a.service_tier, a.tenant_id,
           a.user_id, a.feature, a.conversation_id, a.cached, a.streamed, a.unpriced_reason, a.cost_micros,
           a.input_tokens, a.output_tokens, a.cache_read_tokens, a.cache_write_tokens, a.reasoning_tokens,
           a.ttft_ms, a.total_ms, a.call_id, a.billed_micros
      FROM numbered a
     WHERE NOT EXISTS (SELECT FROM numbered b WHERE b.version = a.version AND b.n = a.n AND b.sign = -a.sign)
    RETURNING 1
  )
  SELECT count(*) INTO moved FROM returned;
  RETURN moved;
END
$$;
COMMENT ON FUNCTION ai_cost.retry_set_aside_changes(bigint) IS 'Puts the set-aside changes of a call (or of all calls) back for the next ai_cost.refresh(), once fixed; changes that undo each other cancel out. Returns how many were put back.';
