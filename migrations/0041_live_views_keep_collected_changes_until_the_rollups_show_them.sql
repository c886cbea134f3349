-- Up Migration
--
-- On a distributed ledger, a live view read while a refresh committed could
-- miss the changes captured on the shards that the refresh collected: the
-- view reads the rollups as of its snapshot on the coordinator, and each
-- shard as of its own, which can be later. The refresh now stamps the
-- changes it collects with the number of its collection instead of deleting
-- them, a live view skips them once its snapshot sees that number, and the
-- next collection deletes them (sql/ holds the definitions; this step
-- brings the schema there).

CREATE FUNCTION ai_cost_internal.create_shard_changes_reader() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %s() RETURNS SETOF ai_cost_internal.call_changes
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$f$, 'ai_cost_internal.shard_changes', $body$
DECLARE
  collection bigint := (SELECT c.collection FROM ai_cost_internal.shard_changes_collected c);
BEGIN
  RETURN QUERY
  SELECT s.sign, s.created_at, s.provider, s.model, s.operation, s.status, s.service_tier, nullif(s.tenant_id, ''), s.user_id,
         s.feature, s.conversation_id, s.cached, s.streamed, s.unpriced_reason, s.cost_micros, s.input_tokens, s.output_tokens,
         s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens, s.ttft_ms, s.total_ms, s.call_id, s.billed_micros
    FROM ai_cost_internal.shard_call_changes s
   WHERE s.collected_by IS NULL OR s.collected_by > collection;
END
$body$);
  PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_shard_changes_reader() IS 'Internal: gives ai_cost_internal.shard_changes() its body over the changes captured on the shards of a distributed ledger (ai_cost.distribute()).';

CREATE FUNCTION ai_cost_internal.stamp_collected_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost_internal.shard_call_changes ADD COLUMN collected_by bigint;
  COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; copied into ai_cost_internal.call_changes by the next ai_cost.refresh().';
  COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted by the next collection.';
  CREATE TABLE ai_cost_internal.shard_changes_collected (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    collection bigint NOT NULL DEFAULT 0,
    rows_on_shards bigint NOT NULL DEFAULT 0
  );
  INSERT INTO ai_cost_internal.shard_changes_collected DEFAULT VALUES;
  COMMENT ON TABLE ai_cost_internal.shard_changes_collected IS 'Internal: the number of the last collection of the changes captured on the shards that took any, and how many it stamped there (ai_cost_internal.collect_shard_changes()).';
  PERFORM ai_cost_internal.create_shard_changes_reader();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stamp_collected_shard_changes() IS 'Internal: adds to the changes captured on the shards of a distributed ledger the stamp of their collection, the count of collections, and the live views'' reader of them (ai_cost.distribute()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  collection bigint;
  rows_on_shards bigint;
  stamped bigint;
BEGIN
  IF NOT ai_cost_internal.calls_are_distributed() THEN
    RETURN;
  END IF;
  SELECT c.collection, c.rows_on_shards INTO collection, rows_on_shards FROM ai_cost_internal.shard_changes_collected c;
  IF rows_on_shards > 0 THEN
    DELETE FROM ai_cost_internal.shard_call_changes WHERE collected_by IS NOT NULL;
  END IF;
  WITH moved AS (
    UPDATE ai_cost_internal.shard_call_changes SET collected_by = collection + 1
     WHERE collected_by IS NULL
    RETURNING *
  )
  INSERT INTO ai_cost_internal.call_changes
  SELECT m.sign, m.created_at, m.provider, m.model, m.operation, m.status, m.service_tier, nullif(m.tenant_id, ''), m.user_id,
         m.feature, m.conversation_id, m.cached, m.streamed, m.unpriced_reason, m.cost_micros, m.input_tokens, m.output_tokens,
         m.cache_read_tokens, m.cache_write_tokens, m.reasoning_tokens, m.ttft_ms, m.total_ms, m.call_id, m.billed_micros
    FROM moved m;
  GET DIAGNOSTICS stamped = ROW_COUNT;
  UPDATE ai_cost_internal.shard_changes_collected c
     SET collection = CASE WHEN stamped > 0 THEN c.collection + 1 ELSE c.collection END, rows_on_shards = stamped;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.collect_shard_changes() IS 'Internal: copies the call changes captured on the shards of a distributed ledger into ai_cost_internal.call_changes, stamping them as collected, and deletes those an earlier collection stamped (ai_cost.refresh()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_changes_on_shards() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_call_changes (LIKE ai_cost_internal.call_changes);
  ALTER TABLE ai_cost_internal.shard_call_changes ALTER tenant_id SET NOT NULL;
  PERFORM create_distributed_table('ai_cost_internal.shard_call_changes', 'tenant_id', colocate_with => 'ai_cost.calls');
  PERFORM ai_cost_internal.stamp_collected_shard_changes();
  -- On the coordinator only, as the reader.
  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                 'ai_cost_internal.calls_are_distributed', 'SELECT true');
  PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_changes_on_shards() IS 'Internal: sets up the capture of updates and deletes on the shards of the distributed calls (ai_cost.distribute()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint, mark_changed boolean DEFAULT false)
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

DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    PERFORM ai_cost_internal.stamp_collected_shard_changes();
  END IF;
END
$$;

SELECT ai_cost_internal.grant_roles();

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT ai_cost_internal.calls_are_distributed() THEN
    RETURN;
  END IF;
  WITH moved AS (
    DELETE FROM ai_cost_internal.shard_call_changes RETURNING *
  )
  INSERT INTO ai_cost_internal.call_changes
  SELECT m.sign, m.created_at, m.provider, m.model, m.operation, m.status, m.service_tier, nullif(m.tenant_id, ''), m.user_id,
         m.feature, m.conversation_id, m.cached, m.streamed, m.unpriced_reason, m.cost_micros, m.input_tokens, m.output_tokens,
         m.cache_read_tokens, m.cache_write_tokens, m.reasoning_tokens, m.ttft_ms, m.total_ms, m.call_id, m.billed_micros
    FROM moved m;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.collect_shard_changes() IS 'Internal: moves the call changes captured on the shards of a distributed ledger into ai_cost_internal.call_changes (ai_cost.refresh()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_changes_on_shards() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_call_changes (LIKE ai_cost_internal.call_changes);
  ALTER TABLE ai_cost_internal.shard_call_changes ALTER tenant_id SET NOT NULL;
  COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; moved into ai_cost_internal.call_changes by the next ai_cost.refresh().';
  PERFORM create_distributed_table('ai_cost_internal.shard_call_changes', 'tenant_id', colocate_with => 'ai_cost.calls');
  -- Created on the coordinator only: each reads a distributed table there.
  -- SECURITY DEFINER, as ai_cost_internal.unfolded_calls(): the live views
  -- read the changes for roles without rights on them.
  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %s() RETURNS SETOF ai_cost_internal.call_changes
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$f$, 'ai_cost_internal.shard_changes', $body$
BEGIN
  RETURN QUERY
  SELECT s.sign, s.created_at, s.provider, s.model, s.operation, s.status, s.service_tier, nullif(s.tenant_id, ''), s.user_id,
         s.feature, s.conversation_id, s.cached, s.streamed, s.unpriced_reason, s.cost_micros, s.input_tokens, s.output_tokens,
         s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens, s.ttft_ms, s.total_ms, s.call_id, s.billed_micros
    FROM ai_cost_internal.shard_call_changes s;
END
$body$);
  EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                 'ai_cost_internal.calls_are_distributed', 'SELECT true');
  PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_changes_on_shards() IS 'Internal: sets up the capture of updates and deletes on the shards of the distributed calls (ai_cost.distribute()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint, mark_changed boolean DEFAULT false)
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
                   JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON s.call_id BETWEEN r.first_id AND r.last_id) w
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

-- The changes collected are folded: without their stamp they would count again.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    DELETE FROM ai_cost_internal.shard_call_changes WHERE collected_by IS NOT NULL;
    ALTER TABLE ai_cost_internal.shard_call_changes DROP COLUMN collected_by;
    COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; moved into ai_cost_internal.call_changes by the next ai_cost.refresh().';
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s() RETURNS SETOF ai_cost_internal.call_changes
      LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$f$, 'ai_cost_internal.shard_changes', $body$
BEGIN
  RETURN QUERY
  SELECT s.sign, s.created_at, s.provider, s.model, s.operation, s.status, s.service_tier, nullif(s.tenant_id, ''), s.user_id,
         s.feature, s.conversation_id, s.cached, s.streamed, s.unpriced_reason, s.cost_micros, s.input_tokens, s.output_tokens,
         s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens, s.ttft_ms, s.total_ms, s.call_id, s.billed_micros
    FROM ai_cost_internal.shard_call_changes s;
END
$body$);
    PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
    DROP TABLE ai_cost_internal.shard_changes_collected;
  END IF;
END
$$;

DROP FUNCTION ai_cost_internal.stamp_collected_shard_changes();
DROP FUNCTION ai_cost_internal.create_shard_changes_reader();

SELECT ai_cost_internal.grant_roles();
