-- The rollups: aggregates that stay exact at any moment and cost work
-- proportional to what changed since the last refresh.
--
--   1. New calls need no capture: ai_cost.refresh() (130_refresh.sql) reads
--      them by id, as the range of ids drawn since its last run, the way
--      Crunchy Data's pg_incremental reads a sequence. An id is drawn by a
--      transaction that already holds its write lock on ai_cost.calls, so
--      the refresh first reads how far the id sequence has gone, then which
--      transactions hold that lock (ai_cost_internal.call_writers): only
--      those can still commit a call at or below that id. Ids of the range
--      not visible yet (a writer still open, or an id never used) are kept
--      in ai_cost_internal.unfolded_ids with those writers, and read again
--      by every refresh until the writers have ended. A long transaction
--      holds back only the ids it could still fill, never the calls
--      committed around it; a writer that commits late, out of id order, or
--      with a created_at in the past is folded once, when it is visible.
--   2. Updates and deletes (reprices, moves between partitions, deletes) are
--      rare and are captured: statement-level AFTER triggers with transition
--      tables copy the removed (-1) and added (+1) versions into
--      ai_cost_internal.call_changes. A change counts only for a call already
--      folded; a change of a call not folded yet is dropped, since its
--      current version is what gets folded.
--   A tenant_id of '' is read as no tenant (NULL), as a ledger distributed
--   over Citus stores calls without one (145_distribution.sql), so reports
--   say the same on one server and on a cluster.
--   3. The refresh folds both in one statement, so one snapshot decides what
--      is folded, and adds them to the rollups in the same transaction. (On a
--      distributed ledger the changes captured on the shards are collected
--      by a statement before it, and a call changed in between waits for the
--      next refresh: see unfolded_calls_through.)
--      Readers add what no refresh has folded yet (ai_cost_internal.pending_changes,
--      read by 100_live_views.sql), so the views are exact at any moment.
--
-- calls_hourly keeps every reporting dimension, the user included, as the
-- table to filter; the narrow rollups in ai_cost_internal (per day without
-- the user, per user and day, per model or feature and hour, per dimension
-- and day, activity and unpriced calls per hour) hold the few rows each
-- view's question needs, so dashboards never scan a row per call. The hot
-- helpers are PL/pgSQL loops over arrays and inlinable SQL (080_histograms.sql),
-- and groups emptied by deletes are found from the upserts' RETURNING, so a
-- refresh spends its time on the changes, not on function calls.

CREATE TABLE ai_cost_internal.call_changes (
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
  total_ms integer,
  -- The call's id: whether the change counts (its call is folded), what a
  -- change set aside by the refresh is known by, and how the later changes
  -- of that call are kept beside it.
  call_id bigint
) WITH (
  -- Every refresh empties this table with one DELETE, so after a busy
  -- reprice it is mostly dead rows until autovacuum comes; by default that
  -- waits for 20% of the table to change, and meanwhile its statistics
  -- overstate it, which every live view reads. Vacuum and analyze it after
  -- a fixed number of changes instead.
  autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
  autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 10000
);
COMMENT ON TABLE ai_cost_internal.call_changes IS 'Internal: versions of calls removed (-1) and added (+1) by updates and deletes since the last ai_cost.refresh(), written by triggers on ai_cost.calls.';

-- Changes the refresh could not fold, with the reason, out of every rollup
-- and report until retried (ai_cost.retry_set_aside_changes in
-- 130_refresh.sql). A change is set aside when it adds a value past the
-- per-call ceilings of 040_calls.sql (so no such value ever reaches a
-- rollup, where it would make every later call of its group overflow), when
-- folding it fails (found by ai_cost_internal.fold_changes_apart), or when
-- its call already has a change here: a call's changes wait and are folded
-- together, so a removal is never subtracted without its addition.
CREATE TABLE ai_cost_internal.set_aside_changes (
  -- Every column of a captured change, so a change moves between the two
  -- tables as it is.
  LIKE ai_cost_internal.call_changes,
  reason text NOT NULL,
  set_aside_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX set_aside_changes_call_id_idx ON ai_cost_internal.set_aside_changes (call_id);
COMMENT ON TABLE ai_cost_internal.set_aside_changes IS 'Internal: call changes ai_cost.refresh() could not fold into the rollups, with the reason; listed by ai_cost.set_aside_calls, retried by ai_cost.retry_set_aside_changes().';

-- The charge of the call in a change (ai_cost.calls.billed_micros). It
-- follows the set-aside table's own columns there, where an upgrade adds
-- it, so the copies between the two tables name their columns.
ALTER TABLE ai_cost_internal.call_changes ADD COLUMN billed_micros bigint;
ALTER TABLE ai_cost_internal.set_aside_changes ADD COLUMN billed_micros bigint;

-- Copies the rows an UPDATE or DELETE statement changed into the change
-- table. SECURITY DEFINER: whoever may change ai_cost.calls must not need
-- (or get) rights on the internal table. Updates copy every row as
-- removed-then-added; rows whose reported columns did not change net out to
-- nothing in the refresh.
CREATE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id, billed_micros
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id, billed_micros
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_call_changes() IS 'Trigger: records the calls a statement updated or deleted for the next ai_cost.refresh().';

-- A trigger with transition tables handles one event, hence two.
CREATE TRIGGER tg_calls__capture_updates
  AFTER UPDATE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.capture_call_changes();

CREATE TRIGGER tg_calls__capture_deletes
  AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.capture_call_changes();

-- How far the refresh has read ai_cost.calls: every call with an id up to
-- folded_through is in the rollups, set aside, or in a range of
-- unfolded_ids; every call above it is new.
CREATE TABLE ai_cost_internal.fold_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  folded_through bigint NOT NULL DEFAULT 0
);

INSERT INTO ai_cost_internal.fold_state DEFAULT VALUES;
COMMENT ON TABLE ai_cost_internal.fold_state IS 'Internal: the highest call id the rollups have read up to (ai_cost.refresh()).';

-- Ranges of ids at or below folded_through that the refresh read while
-- their calls were not visible: calls of a transaction still open, or ids
-- drawn and never used (a rollback, an insert skipped by ON CONFLICT).
-- writers are the transactions (virtual transaction ids, as pg_locks shows
-- them) that were writing calls then and still were at the last refresh:
-- only they can still fill the range. A range goes once they have ended.
-- The writer 'next refresh' marks a range read under an older snapshot
-- (see ai_cost_internal.refresh_rollups): the next refresh reads it again.
CREATE TABLE ai_cost_internal.unfolded_ids (
  first_id bigint NOT NULL,
  last_id bigint NOT NULL,
  writers text[] NOT NULL,
  held_since timestamptz NOT NULL
);
COMMENT ON TABLE ai_cost_internal.unfolded_ids IS 'Internal: ranges of call ids the refresh has passed but not folded, because transactions that could still add calls there (writers) were open; read again by every refresh until they end.';

-- The calls no refresh has folded yet, as far as this snapshot sees them
-- (those above folded_through and those in the unfolded ranges below it),
-- up to the id range_end, each as an addition in the shape of call_changes.
-- A function, not a view, so that nothing depends on ai_cost.calls itself
-- (ai_cost.partition_calls() replaces the table); it returns only the
-- columns the rollups keep. The ranges of ids are read by one query, their
-- bounds as array parameters joined to the ids: an index range scan per
-- range on one server, and on a distributed ledger one round of queries to
-- the shards, however many ranges are held back, where a query joining the
-- local tables would send them to every worker first (spend_by_day on a
-- coordinator with two workers, by hand with pgbench: 22 ms against 56). No
-- call has an id above the last one drawn, so when no id was drawn since the
-- last fold and no range is held back, nothing is read. JIT off: the planner
-- cannot know how few ids lie above folded_through and would spend
-- milliseconds compiling a plan that reads a handful of rows. PL/pgSQL,
-- since Citus cannot plan the parameters of a SQL function over a
-- distributed table. STABLE: its queries read the snapshot of the statement
-- that calls it.
--
-- For the fold, on a distributed ledger, mark_changed returns with sign 0
-- (held) each call that has an update or delete waiting on its shard (not
-- collected yet), and the id of each call deleted whose delete waits there.
-- The refresh collects those changes in a statement before the fold
-- (collect_shard_changes), and each worker sees each statement as of its own
-- start, so a change committed between the two is already in what is read
-- here (the version of the call, or its absence), and would be counted a
-- second time by the next refresh, once the call is folded. The changes'
-- shard and the calls' are read in one query on their node, so the mark
-- agrees with what is read. The fold leaves a held call for the next
-- refresh, which collects the change first and drops it (a change of a call
-- not folded yet never counts).
CREATE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint, mark_changed boolean DEFAULT false)
RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_ids bigint[];
  last_ids bigint[];
BEGIN
  range_end := least(range_end, ai_cost_internal.last_drawn_call_id());
  SELECT array_agg(r.first_id), array_agg(r.last_id) INTO first_ids, last_ids
    FROM (SELECT s.folded_through + 1 AS first_id, range_end AS last_id FROM ai_cost_internal.fold_state s
          UNION ALL
          SELECT u.first_id, least(u.last_id, range_end) FROM ai_cost_internal.unfolded_ids u) r
   WHERE r.first_id <= r.last_id;
  -- Asked only for the fold: the live views run while 110_windowed_views.sql
  -- installs, before the function this asks exists.
  IF mark_changed THEN
    mark_changed := ai_cost_internal.calls_are_distributed();
  END IF;
  IF first_ids IS NULL THEN
    RETURN;
  END IF;
  IF mark_changed THEN
    -- The table this names exists on a distributed ledger only.
    RETURN QUERY
    SELECT CASE WHEN w.call_id IS NULL THEN 1 ELSE 0 END::smallint, c.created_at, c.provider, c.model, c.operation,
           c.status, c.service_tier, nullif(c.tenant_id, ''), c.user_id, c.feature, c.conversation_id, c.cached,
           c.streamed, c.unpriced_reason, c.cost_micros, c.input_tokens, c.output_tokens, c.cache_read_tokens,
           c.cache_write_tokens, c.reasoning_tokens, c.ttft_ms, c.total_ms, coalesce(c.id, w.call_id), c.billed_micros
      FROM (SELECT a.* FROM ai_cost.calls a
              JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON a.id BETWEEN r.first_id AND r.last_id) c
      FULL JOIN (SELECT DISTINCT s.tenant_id, s.call_id FROM ai_cost_internal.shard_call_changes s
                   JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON s.call_id BETWEEN r.first_id AND r.last_id
                  WHERE s.collected_by IS NULL) w
        ON w.tenant_id = c.tenant_id AND w.call_id = c.id;
  ELSE
    RETURN QUERY
    SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.id, c.billed_micros
      FROM ai_cost.calls c
      JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON c.id BETWEEN r.first_id AND r.last_id;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls_through(bigint, boolean) IS 'Internal: the calls visible now, with ids up to range_end, that ai_cost.refresh() has not folded into the rollups yet, as additions (+1); with mark_changed, on a distributed ledger, those with a change waiting on their shard as sign 0 (held for the next refresh).';

-- Every one of them: what the live views add to the rollups. SECURITY
-- DEFINER: the live views read it for roles that may not read the raw calls
-- or the internal tables, as they read the change table.
CREATE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT * FROM ai_cost_internal.unfolded_calls_through(9223372036854775807)
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls() IS 'Internal: the calls visible now that ai_cost.refresh() has not folded into the rollups yet, as additions (+1).';

-- The changes captured on the shards of a distributed ledger and not yet
-- collected into call_changes (145_distribution.sql, which gives it a body over
-- them); none on one server, where the planner inlines this and drops it.
-- It names no table: inlined, a table would be read with the rights of the
-- role reading the live views.
CREATE FUNCTION ai_cost_internal.shard_changes() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE AS $$
  SELECT (NULL::ai_cost_internal.call_changes).* WHERE false
$$;
COMMENT ON FUNCTION ai_cost_internal.shard_changes() IS 'Internal: the call changes captured on the shards of a distributed ledger that no refresh has collected yet; none on one server.';

-- Everything the next refresh will fold, in the shape of call_changes: each
-- unfolded call added (+1), and the captured changes of calls already
-- folded. The changes of a call not folded yet are left out, since its
-- current version is among the unfolded calls. The live views add these to
-- the rollups; ai_cost_internal.fold_changes applies the same rule.
CREATE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM (SELECT * FROM ai_cost_internal.call_changes UNION ALL SELECT * FROM ai_cost_internal.shard_changes()) c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));
COMMENT ON VIEW ai_cost_internal.pending_changes IS 'Internal: what the next ai_cost.refresh() will fold: the unfolded calls (+1) and the changes of calls already folded.';

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
  ttft_ms_hist bigint[],
  billed_micros bigint NOT NULL,
  unbilled_calls bigint NOT NULL
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX calls_hourly_key_idx ON ai_cost.calls_hourly
  (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
  NULLS NOT DISTINCT;

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
) WITH (fillfactor = 80);

CREATE UNIQUE INDEX conversations_hourly_key_idx ON ai_cost.conversations_hourly
  (hour, conversation_id, tenant_id, user_id) NULLS NOT DISTINCT;

COMMENT ON TABLE ai_cost.calls_hourly IS 'Hourly rollup of ai_cost.calls (UTC hours) by every reporting dimension, maintained incrementally by ai_cost.refresh(). Exact as of the last refresh; ai_cost.calls_hourly_live adds what came since.';
COMMENT ON COLUMN ai_cost.calls_hourly.hour IS 'Start of the UTC hour of created_at.';
COMMENT ON COLUMN ai_cost.calls_hourly.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.calls_hourly.model IS 'Model id.';
COMMENT ON COLUMN ai_cost.calls_hourly.operation IS 'Kind of call (chat, embedding, ...).';
COMMENT ON COLUMN ai_cost.calls_hourly.status IS 'success, error or cancelled.';
COMMENT ON COLUMN ai_cost.calls_hourly.service_tier IS 'Provider service tier (ai_cost.service_tiers): standard, batch, flex, priority, ...';
COMMENT ON COLUMN ai_cost.calls_hourly.tenant_id IS 'Tenant the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.user_id IS 'End user the calls were made for (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.feature IS 'Product feature that made the calls (NULL: none given).';
COMMENT ON COLUMN ai_cost.calls_hourly.cached IS 'True for answers served from the application''s own cache.';
COMMENT ON COLUMN ai_cost.calls_hourly.unpriced_reason IS 'Why these calls are unpriced; NULL for priced calls.';
COMMENT ON COLUMN ai_cost.calls_hourly.calls IS 'Number of call attempts.';
COMMENT ON COLUMN ai_cost.calls_hourly.unpriced_calls IS 'Calls with cost_micros NULL: their cost is unknown and not in cost_micros.';
COMMENT ON COLUMN ai_cost.calls_hourly.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';
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
COMMENT ON COLUMN ai_cost.calls_hourly.billed_micros IS 'Sum of what the billed calls were charged to their tenants (ai_cost.calls.billed_micros, set by ai_cost.markups), in micro-dollars; never part of cost_micros. Calls not billed add nothing (see unbilled_calls). To aggregate: CASE WHEN sum(calls) > sum(unbilled_calls) THEN sum(billed_micros) END (NULL = none billed).';
COMMENT ON COLUMN ai_cost.calls_hourly.unbilled_calls IS 'Calls with billed_micros NULL: no markup covers them, or their cost is unknown.';

COMMENT ON TABLE ai_cost.conversations_hourly IS 'Hourly (UTC) rollup of the calls that carry a conversation_id, maintained incrementally by ai_cost.refresh(). A conversation is too fine a key for ai_cost.calls_hourly, and rarely spans many hours.';
COMMENT ON COLUMN ai_cost.conversations_hourly.hour IS 'Start of the UTC hour of created_at.';
COMMENT ON COLUMN ai_cost.conversations_hourly.conversation_id IS 'Conversation or session id.';
COMMENT ON COLUMN ai_cost.conversations_hourly.tenant_id IS 'Tenant of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly.user_id IS 'End user of the calls.';
COMMENT ON COLUMN ai_cost.conversations_hourly.calls IS 'Number of call attempts.';
COMMENT ON COLUMN ai_cost.conversations_hourly.unpriced_calls IS 'Calls with no cost (unknown, not in cost_micros).';
COMMENT ON COLUMN ai_cost.conversations_hourly.cost_micros IS 'Sum of the costs of the priced calls, in micro-dollars (1 = $0.000001); unpriced calls add nothing (see unpriced_calls), so a row of only unpriced calls holds 0. To aggregate: CASE WHEN sum(calls) > sum(unpriced_calls) THEN sum(cost_micros) END (NULL = unknown).';
COMMENT ON COLUMN ai_cost.conversations_hourly.input_tokens IS 'Sum of input_tokens.';
COMMENT ON COLUMN ai_cost.conversations_hourly.output_tokens IS 'Sum of output_tokens.';

CREATE TABLE ai_cost_internal.users_daily (
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

CREATE UNIQUE INDEX users_daily_key_idx ON ai_cost_internal.users_daily
  (day, user_id, tenant_id) NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost_internal.users_daily IS 'Internal: daily (UTC) spend per user and tenant, maintained with calls_hourly by ai_cost.refresh(); what per-user reports and budgets read.';

-- Per model and status, and per feature and status, by hour: the few rows
-- (tens per hour) that error rates and latency percentiles need, so their
-- windows merge a few thousand histograms, not one per group and user.
CREATE TABLE ai_cost_internal.models_hourly (
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

CREATE UNIQUE INDEX models_hourly_key_idx ON ai_cost_internal.models_hourly (hour, provider, model, status, cached);
COMMENT ON TABLE ai_cost_internal.models_hourly IS 'Internal: hourly (UTC) calls and latency histograms per model, status and app-cache flag, maintained with calls_hourly by ai_cost.refresh(); what the error-rate and latency views read.';

CREATE TABLE ai_cost_internal.features_hourly (
  hour timestamptz NOT NULL,
  feature text,
  status text NOT NULL,
  calls bigint NOT NULL
) WITH (fillfactor = 70);

CREATE UNIQUE INDEX features_hourly_key_idx ON ai_cost_internal.features_hourly (hour, feature, status) NULLS NOT DISTINCT;
COMMENT ON TABLE ai_cost_internal.features_hourly IS 'Internal: hourly (UTC) calls per feature and status, maintained with calls_hourly by ai_cost.refresh(); what the error rate per feature reads.';

-- The drill-down to one user (spend_daily_by_user) reads that user's days.
CREATE INDEX users_daily_user_idx ON ai_cost_internal.users_daily (user_id, day);

-- Rollups as small as the question of the view that reads them: activity
-- per hour, status and app-cache flag (a handful of rows an hour), unpriced
-- calls per hour and model (rows only where calls went unpriced), and spend
-- per UTC day for one dimension at a time, whose size follows the distinct
-- values a day, not the calls.
CREATE TABLE ai_cost_internal.activity_hourly (
  hour timestamptz NOT NULL,
  status text NOT NULL,
  cached boolean NOT NULL,
  calls bigint NOT NULL,
  cost_micros bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  unpriced_calls bigint NOT NULL
) WITH (fillfactor = 70);

CREATE UNIQUE INDEX activity_hourly_key_idx ON ai_cost_internal.activity_hourly (hour, status, cached);
COMMENT ON TABLE ai_cost_internal.activity_hourly IS 'Internal: hourly (UTC) calls, spend and tokens per status and app-cache flag, maintained by ai_cost.refresh(); what ai_cost.activity_hourly reads.';

CREATE TABLE ai_cost_internal.unpriced_hourly (
  hour timestamptz NOT NULL,
  provider text NOT NULL,
  model text NOT NULL,
  service_tier text NOT NULL,
  unpriced_reason text NOT NULL,
  calls bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL
) WITH (fillfactor = 70);

CREATE UNIQUE INDEX unpriced_hourly_key_idx
  ON ai_cost_internal.unpriced_hourly (hour, provider, model, service_tier, unpriced_reason);
COMMENT ON TABLE ai_cost_internal.unpriced_hourly IS 'Internal: hourly (UTC) unpriced calls and their tokens per model and reason, maintained by ai_cost.refresh(); what ai_cost.unpriced_models reads.';

CREATE TABLE ai_cost_internal.dimensions_daily (
  day timestamptz NOT NULL,
  dimension text NOT NULL,
  value text,
  calls bigint NOT NULL,
  successes bigint NOT NULL,
  errors bigint NOT NULL,
  cancelled bigint NOT NULL,
  cost_micros bigint NOT NULL,
  success_cost_micros bigint NOT NULL,
  unpriced_calls bigint NOT NULL,
  input_tokens bigint NOT NULL,
  output_tokens bigint NOT NULL,
  unpriced_successes bigint NOT NULL
) WITH (fillfactor = 70);

CREATE UNIQUE INDEX dimensions_daily_key_idx ON ai_cost_internal.dimensions_daily (day, dimension, value) NULLS NOT DISTINCT;

CREATE INDEX dimensions_daily_dimension_idx ON ai_cost_internal.dimensions_daily (dimension, day);
COMMENT ON TABLE ai_cost_internal.dimensions_daily IS 'Internal: daily (UTC) calls, spend and tokens per dimension and value (one row per provider, model, operation, service tier, tenant, user and feature a day, and per model id whatever its provider), maintained by ai_cost.refresh(); what ai_cost.spend_daily_by_dimension and the windowed views read.';

-- The values a call has, one row per dimension: how a group of calls is
-- counted once under each. A model is named with its provider, since two
-- providers can serve the same model id; model_id is the model id alone,
-- what the windowed views (110_windowed_views.sql) count as a model. It
-- cannot be split off the provider/model value, since either may hold a
-- '/', and spend_daily_by_dimension leaves it out. No SET clause, so the planner
-- inlines it into the queries that use it instead of calling it per row; its
-- one operator is named by its schema (see 080_histograms.sql on such helpers).
CREATE FUNCTION ai_cost_internal.dimension_values(
  provider text, model text, operation text, service_tier text, tenant_id text, user_id text, feature text,
  OUT dimension text, OUT value text
) RETURNS SETOF record
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  VALUES ('provider', provider), ('model', provider OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) model), ('operation', operation),
         ('service_tier', service_tier), ('tenant', tenant_id), ('user', user_id), ('feature', feature),
         ('model_id', model)
$$;
COMMENT ON FUNCTION ai_cost_internal.dimension_values(text, text, text, text, text, text, text) IS 'Internal: the (dimension, value) pairs of a call, as ai_cost_internal.dimensions_daily counts them.';


-- The call changes the refresh could not fold, for doctor and for whoever
-- fixes them: which call, what happened to it, and why.
CREATE VIEW ai_cost.set_aside_calls AS
SELECT call_id, CASE WHEN sign > 0 THEN 'added' ELSE 'removed' END AS change, created_at, provider, model,
       tenant_id, cost_micros, reason, set_aside_at
  FROM ai_cost_internal.set_aside_changes;
COMMENT ON VIEW ai_cost.set_aside_calls IS 'Call changes ai_cost.refresh() could not fold into the rollups, one row each: they are left out of every rollup and report until retried. Fix the call (or delete it), then SELECT ai_cost.retry_set_aside_changes().';
COMMENT ON COLUMN ai_cost.set_aside_calls.call_id IS 'The ai_cost.calls id; NULL when the change does not carry one (changes captured by release 0.1).';
COMMENT ON COLUMN ai_cost.set_aside_calls.change IS 'added (an insert, or the new version of an update) or removed (a delete, or the old version of an update).';
COMMENT ON COLUMN ai_cost.set_aside_calls.created_at IS 'Time of the call.';
COMMENT ON COLUMN ai_cost.set_aside_calls.provider IS 'Provider id.';
COMMENT ON COLUMN ai_cost.set_aside_calls.model IS 'Model id.';
COMMENT ON COLUMN ai_cost.set_aside_calls.tenant_id IS 'Tenant of the call.';
COMMENT ON COLUMN ai_cost.set_aside_calls.cost_micros IS 'Cost of the call in this change, in micro-dollars.';
COMMENT ON COLUMN ai_cost.set_aside_calls.reason IS 'Why it could not be folded: the value past a per-call ceiling, the error folding it raised, or that another change of the call is set aside.';
COMMENT ON COLUMN ai_cost.set_aside_calls.set_aside_at IS 'When the refresh set it aside.';

-- Which value of an added change is past the per-call ceilings of
-- 040_calls.sql, in words; NULL when none is. Called only for the changes
-- the fold's inline check refuses.
CREATE FUNCTION ai_cost_internal.ceiling_breach(change ai_cost_internal.call_changes) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN b.value < 0 THEN format('%s %s is negative', b.name, b.value)
              ELSE format('%s %s is past the per-call ceiling of %s', b.name, b.value, b.ceiling) END
    FROM (VALUES (1, 'cost_micros', change.cost_micros, 10000000000),
                 (2, 'input_tokens', change.input_tokens, 10000000000),
                 (3, 'output_tokens', change.output_tokens, 10000000000),
                 (4, 'cache_read_tokens', change.cache_read_tokens, 10000000000),
                 (5, 'cache_write_tokens', change.cache_write_tokens, 10000000000),
                 (6, 'reasoning_tokens', change.reasoning_tokens, 10000000000),
                 (7, 'ttft_ms', change.ttft_ms, 2147483647),
                 (8, 'total_ms', change.total_ms, 2147483647),
                 (9, 'billed_micros', change.billed_micros, 10000000000)) AS b(position, name, value, ceiling)
   WHERE b.value NOT BETWEEN 0 AND b.ceiling
   ORDER BY b.position
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.ceiling_breach(ai_cost_internal.call_changes) IS 'Internal: the first value of a call change past the per-call ceilings, in words, or NULL.';

-- One statement folds into every rollup, from one hourly grouping, either
-- everything pending (no addresses: the unfolded calls with ids up to
-- range_end that this statement's snapshot sees, and the captured changes
-- of calls already folded, see ai_cost_internal.pending_changes), or the
-- captured changes at the given addresses (the unfolded calls having been
-- staged among them by ai_cost_internal.stage_unfolded_calls). It sets aside
-- what must not be folded (see set_aside_changes) and returns the ids of the
-- calls it folded and of those it held (see unfolded_calls_through), from
-- which ai_cost_internal.record_unfolded_ids learns which ids it passed
-- unseen and which to read again. Groups that reach zero calls are found
-- from the upserts' own RETURNING and deleted. Planned for its arguments every time,
-- so that a list of addresses is read by a TID scan and no list by a plain
-- one. The grouping of a minute's calls, histograms and all, takes more than
-- the default 4 MB of work_mem and would spill to disk: it gets 64 MB. The
-- planner cannot estimate how many calls arrive, guesses few, and sorts them
-- on a dozen keys to group them; hashing them costs less (about 8% of a
-- refresh after 10,000 calls), so sorting is off here.
CREATE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint, OUT applied bigint,
                                              OUT set_aside bigint, OUT arrived_ids bigint[], OUT held_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  emptied_hourly tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end, true) u WHERE only_changes IS NULL
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived WHERE sign <> 0
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), delta AS (
    -- The hourly groups, each histogram built from the buckets of its changes.
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
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)) AS total_ms_hist,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL)) AS ttft_ms_hist,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
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
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
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
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, sum(sign),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0), coalesce(sum(sign * total_ms), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL))
      FROM folded
     GROUP BY 1, provider, model, status, cached
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
    -- One pass over the hourly groups into a group per day and value of each
    -- dimension (GROUPING SETS), the pairs ai_cost_internal.dimension_values names.
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'),
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN 'provider' WHEN 31 THEN 'model' WHEN 111 THEN 'operation' WHEN 119 THEN 'service_tier'
                WHEN 123 THEN 'tenant' WHEN 125 THEN 'user' WHEN 95 THEN 'model_id' ELSE 'feature' END,
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN provider WHEN 31 THEN provider || '/' || model WHEN 111 THEN operation
                WHEN 119 THEN service_tier WHEN 123 THEN tenant_id WHEN 125 THEN user_id WHEN 95 THEN model
                ELSE feature END,
           sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta
     GROUP BY date_trunc('day', hour, 'UTC'),
              GROUPING SETS ((provider), (provider, model), (operation), (service_tier), (tenant_id), (user_id), (feature),
                            (model))
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
         (SELECT array_agg(a.call_id) FROM arrived a WHERE a.sign <> 0),
         (SELECT array_agg(a.call_id) FROM arrived a WHERE a.sign = 0),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, held_ids, emptied_hourly, emptied_users, emptied_conversations, emptied_models,
         emptied_features, emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
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
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls folded and of those held for the next refresh; run by ai_cost_internal.refresh_rollups().';

-- When folding the changes together fails, finds the ones that cannot be
-- folded by halving: each half is folded on its own (a subtransaction), a
-- half that fails is halved again, and a single call's changes that still
-- fail are set aside with the error. The other changes are folded, at the
-- cost of about two folds (10-20 ms each) per bad change per halving level.
-- The changes of one call are never split, so an update or a delete is
-- folded or set aside with the insert it follows. After max_splits halvings
-- (many bad changes, e.g. a rollup group at the edge of bigint) a part that
-- fails is set aside whole instead, so that one refresh stays within seconds;
-- a retry examines it again. Only errors caused by the data are caught:
-- anything else (a lock, the disk, a bug) fails the refresh.
CREATE FUNCTION ai_cost_internal.fold_changes_apart(max_splits integer DEFAULT 500, OUT applied bigint, OUT set_aside bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  changes tid[];
  calls bigint[];
  first_queue integer[];
  last_queue integer[];
  first integer;
  last integer;
  split integer;
  part record;
  failure text;
  splits integer := 0;
BEGIN
  applied := 0;
  set_aside := 0;
  -- Sorted by hourly group, so that the changes that fail together (those of
  -- a group at the edge of bigint) are neighbours and isolated in few
  -- halvings; a call's changes are sorted by the first group among them, so
  -- they are neighbours too. A change with no call id (captured by release
  -- 0.1) stands alone.
  SELECT array_agg(u.tid ORDER BY u.place, u.call_id, u.tid), array_agg(u.call_id ORDER BY u.place, u.call_id, u.tid)
    INTO changes, calls
    FROM (SELECT c.ctid AS tid, c.call_id,
                 CASE WHEN c.call_id IS NULL THEN g.hourly_group
                      ELSE min(g.hourly_group) OVER (PARTITION BY c.call_id) END AS place
            FROM ai_cost_internal.call_changes c
           CROSS JOIN LATERAL (SELECT format('%s %s %s %s %s %s %s', date_trunc('hour', c.created_at, 'UTC'), c.provider,
                                             c.model, c.tenant_id, c.user_id, c.feature, c.status) AS hourly_group) g) u;
  IF changes IS NULL THEN
    RETURN;
  END IF;
  -- Parts are tried in the order they were made, halves before quarters,
  -- so clean parts are folded early and the halvings go where failures are.
  first_queue := ARRAY[1];
  last_queue := ARRAY[cardinality(changes)];
  WHILE cardinality(first_queue) > 0 LOOP
    first := first_queue[1];
    last := last_queue[1];
    first_queue := first_queue[2:];
    last_queue := last_queue[2:];
    BEGIN
      SELECT * INTO part FROM ai_cost_internal.fold_changes(changes[first:last], NULL);
      applied := applied + part.applied;
      set_aside := set_aside + part.set_aside;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      failure := SQLERRM;
      IF splits >= max_splits AND NOT (first = last OR calls[first] = calls[last]) THEN
        failure := format('%s, in a part of %s changes set aside whole: retrying examines them one by one',
                          failure, last - first + 1);
      END IF;
      IF first = last OR calls[first] = calls[last] OR splits >= max_splits THEN
        WITH moved AS (
          DELETE FROM ai_cost_internal.call_changes WHERE ctid = ANY (changes[first:last]) RETURNING *
        )
        INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status,
               service_tier, tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason,
               cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
               ttft_ms, total_ms, call_id, billed_micros, reason)
        SELECT m.sign, m.created_at, m.provider, m.model, m.operation, m.status, m.service_tier, m.tenant_id,
               m.user_id, m.feature, m.conversation_id, m.cached, m.streamed, m.unpriced_reason, m.cost_micros,
               m.input_tokens, m.output_tokens, m.cache_read_tokens, m.cache_write_tokens, m.reasoning_tokens,
               m.ttft_ms, m.total_ms, m.call_id, m.billed_micros, failure
          FROM moved m;
        set_aside := set_aside + (last - first + 1);
      ELSE
        -- Split between two calls, at the boundary nearest the middle.
        split := (first + last) / 2;
        WHILE split < last AND calls[split] = calls[split + 1] LOOP
          split := split + 1;
        END LOOP;
        IF split = last THEN
          split := (first + last) / 2 - 1;
          WHILE calls[split] = calls[split + 1] LOOP
            split := split - 1;
          END LOOP;
        END IF;
        first_queue := first_queue || ARRAY[first, split + 1];
        last_queue := last_queue || ARRAY[split, last];
        splits := splits + 1;
      END IF;
    END;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.fold_changes_apart(integer) IS 'Internal: folds the captured call changes part by part, setting aside those whose folding fails, with the error; run by ai_cost_internal.refresh_rollups() when folding them together failed.';

-- The highest call id drawn so far (0 before the first).
CREATE FUNCTION ai_cost_internal.last_drawn_call_id() RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('ai_cost.calls', 'id')::regclass), 0)
$$;
COMMENT ON FUNCTION ai_cost_internal.last_drawn_call_id() IS 'Internal: the last value drawn from the id sequence of ai_cost.calls, or 0.';

-- The calls the fold could not take together go through the change table,
-- so that ai_cost_internal.fold_changes_apart can fold them part by part:
-- the unfolded calls up to range_end are staged there as additions, and
-- the changes of calls not folded yet are dropped (their current version
-- is what is staged). Returns the ids of the calls staged, and of those
-- held for the next refresh as the fold holds them (see
-- unfolded_calls_through).
CREATE FUNCTION ai_cost_internal.stage_unfolded_calls(range_end bigint, OUT staged_ids bigint[], OUT held_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH dropped AS (
    DELETE FROM ai_cost_internal.call_changes t
     WHERE t.call_id > previous_through
        OR EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id)
  ), unfolded AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end, true) u
  ), staged AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT u.* FROM unfolded u WHERE u.sign <> 0
    RETURNING call_id
  )
  SELECT (SELECT array_agg(t.call_id) FROM staged t), (SELECT array_agg(u.call_id) FROM unfolded u WHERE u.sign = 0)
    INTO staged_ids, held_ids;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stage_unfolded_calls(bigint) IS 'Internal: copies the unfolded calls up to range_end into the change table for a fold part by part, dropping the changes of calls not folded yet; returns their ids, and those of the calls held for the next refresh.';

-- After a fold: the ids it passed without seeing a call, kept with the
-- writers that can still fill them (see unfolded_ids), and how far the
-- rollups have read. The fold read the range above folded_through up to
-- range_end and every earlier unfolded range; arrived_ids are the ids it
-- saw there. A range whose writers have all ended is complete: an id it
-- lacks now is one never used, and it is forgotten. held_ids are ids of
-- calls it saw and held (see unfolded_calls_through): kept, in runs of
-- consecutive ids, for the next refresh to read again.
CREATE FUNCTION ai_cost_internal.record_unfolded_ids(range_end bigint, open_writers text[], arrived_ids bigint[],
                                                     held_ids bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH spans AS (
    SELECT previous_through + 1 AS first_id, range_end AS last_id, open_writers AS writers, now() AS held_since
     WHERE range_end > previous_through AND cardinality(open_writers) > 0
    UNION ALL
    SELECT u.first_id, u.last_id, w.writers, u.held_since
      FROM ai_cost_internal.unfolded_ids u
     CROSS JOIN LATERAL (SELECT ARRAY(SELECT unnest(u.writers || 'next refresh'::text) INTERSECT SELECT unnest(open_writers)) AS writers) w
     WHERE cardinality(w.writers) > 0
  ), seen AS (
    -- The ids seen in each range, between its two edges.
    SELECT s.first_id AS span, a.id FROM spans s
      JOIN unnest(arrived_ids || held_ids) AS a(id) ON a.id BETWEEN s.first_id AND s.last_id
    UNION ALL
    SELECT s.first_id, s.first_id - 1 FROM spans s
    UNION ALL
    SELECT s.first_id, s.last_id + 1 FROM spans s
  ), holes AS (
    SELECT n.span, n.id + 1 AS first_id, n.next_id - 1 AS last_id
      FROM (SELECT e.span, e.id, lead(e.id) OVER (PARTITION BY e.span ORDER BY e.id) AS next_id FROM seen e) n
     WHERE n.next_id > n.id + 1
  ), held AS (
    SELECT min(r.id) AS first_id, max(r.id) AS last_id
      FROM (SELECT h.id, h.id - row_number() OVER (ORDER BY h.id) AS run FROM unnest(held_ids) AS h(id)) r
     GROUP BY r.run
  ), cleared AS (
    DELETE FROM ai_cost_internal.unfolded_ids
  )
  INSERT INTO ai_cost_internal.unfolded_ids (first_id, last_id, writers, held_since)
  SELECT h.first_id, h.last_id, s.writers, s.held_since FROM holes h JOIN spans s ON s.first_id = h.span
  UNION ALL
  SELECT h.first_id, h.last_id, ARRAY['next refresh'], now() FROM held h;
  UPDATE ai_cost_internal.fold_state SET folded_through = greatest(previous_through, range_end);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[], bigint[]) IS 'Internal: after a fold, records the ids it passed unseen that open writers may still fill and those of the calls it held, and moves folded_through to range_end.';

-- Folds what is pending, together (the usual case: one statement) or, when
-- that fails on some bad data, apart (see fold_changes_apart); then records
-- and announces the budget thresholds crossed. First how far ids have been
-- drawn, then who is writing: an id is drawn under the write lock, so every
-- transaction that drew one up to range_end and has not ended is among
-- open_writers, and the fold's snapshot, taken after both, sees every call
-- of the others (with a snapshot per statement, as READ COMMITTED takes).
--
-- A backlog of more new calls than a part (history loaded in bulk, or a
-- scheduler that stopped for a while) is folded a part at a time: the ids
-- from the lowest unfolded one on, as many as fold_part_calls (a million,
-- or the setting ai_cost.fold_part_calls). Over ten million calls one
-- statement took 324 s and wrote its 12 GB of temporary files at once;
-- parts took 255 s, each writing about 1 GB and freeing it when done (by
-- hand, PostgreSQL 15, a backlog of the queries bench's shape). A part
-- ends at or below range_end, so open_writers still holds every writer
-- that can fill it, and each part's statement sees the changes made
-- meanwhile as the next refresh would.
CREATE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  fold_part_calls CONSTANT bigint :=
    greatest(coalesce(nullif(current_setting('ai_cost.fold_part_calls', true), '')::bigint, 1000000), 1);
  range_end bigint;
  part_end bigint;
  open_writers text[];
  arrived_ids bigint[];
  held_ids bigint[];
  part_applied bigint;
  part_set_aside bigint;
BEGIN
  IF (SELECT q.seqcache FROM pg_catalog.pg_sequence q
       WHERE q.seqrelid = pg_get_serial_sequence('ai_cost.calls', 'id')::regclass) > 1 THEN
    RAISE EXCEPTION 'the id sequence of ai_cost.calls caches ids (CACHE > 1), so the rollups cannot tell which calls are still to come'
      USING HINT = format('ALTER SEQUENCE %s CACHE 1', pg_get_serial_sequence('ai_cost.calls', 'id'));
  END IF;
  -- On a distributed ledger, the updates and deletes captured on the shards.
  PERFORM ai_cost_internal.collect_shard_changes();
  range_end := ai_cost_internal.last_drawn_call_id();
  open_writers := ai_cost_internal.call_writers();
  -- A REPEATABLE READ or SERIALIZABLE snapshot was taken when the transaction
  -- began, before both: a writer that ended in between is not among
  -- open_writers, yet its calls are not visible. Every range read is then
  -- kept for the next refresh to read again.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    open_writers := open_writers || 'next refresh'::text;
  END IF;
  applied := 0;
  set_aside := 0;
  LOOP
    part_end := range_end;
    IF range_end - (SELECT s.folded_through FROM ai_cost_internal.fold_state s) > fold_part_calls THEN
      -- From the lowest id above folded_through, so that a gap in the ids
      -- (a sequence moved on) is passed in one step.
      part_end := least(range_end, (SELECT min(c.id) FROM ai_cost.calls c
                                     WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s))
                                   + fold_part_calls - 1);
    END IF;
    BEGIN
      SELECT f.applied, f.set_aside, f.arrived_ids, f.held_ids INTO part_applied, part_set_aside, arrived_ids, held_ids
        FROM ai_cost_internal.fold_changes(NULL, part_end) AS f;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      SELECT s.staged_ids, s.held_ids INTO arrived_ids, held_ids FROM ai_cost_internal.stage_unfolded_calls(part_end) AS s;
      SELECT f.applied, f.set_aside INTO part_applied, part_set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
    END;
    PERFORM ai_cost_internal.record_unfolded_ids(part_end, open_writers, arrived_ids, held_ids);
    applied := applied + part_applied;
    set_aside := set_aside + part_set_aside;
    EXIT WHEN part_end >= range_end;
  END LOOP;

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
COMMENT ON FUNCTION ai_cost_internal.refresh_rollups() IS 'Internal: folds the new calls and the captured call changes into the rollups, setting aside those that cannot be folded, and records and announces budget thresholds crossed; run by ai_cost.refresh() under its lock.';

-- TRUNCATE fires no row or DELETE triggers: empty every rollup with the
-- calls, and start reading after the last id drawn (TRUNCATE ... RESTART
-- IDENTITY has reset the sequence by now). Waits for a running refresh. On
-- a distributed ledger the changes captured on the shards go too
-- (145_distribution.sql).
CREATE FUNCTION ai_cost_internal.truncate_rollups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(x'6169636f73745f72'::bigint);
  TRUNCATE ai_cost_internal.call_changes, ai_cost_internal.set_aside_changes, ai_cost_internal.unfolded_ids,
           ai_cost.calls_hourly, ai_cost.conversations_hourly,
           ai_cost_internal.users_daily, ai_cost_internal.models_hourly,
           ai_cost_internal.features_hourly, ai_cost_internal.activity_hourly, ai_cost_internal.unpriced_hourly,
           ai_cost_internal.dimensions_daily;
  IF ai_cost_internal.calls_are_distributed() THEN
    TRUNCATE ai_cost_internal.shard_call_changes;
  END IF;
  UPDATE ai_cost_internal.fold_state SET folded_through = ai_cost_internal.last_drawn_call_id();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.truncate_rollups() IS 'Trigger: empties the rollups and pending changes when ai_cost.calls is truncated.';

CREATE TRIGGER tg_calls__truncate_rollups
  AFTER TRUNCATE ON ai_cost.calls
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.truncate_rollups();

