-- Up Migration
--
-- On a distributed ledger, the refresh stamped the changes it collected
-- from the shards in its own transaction, which Citus commits on the
-- coordinator before the workers: a live view read in between saw the
-- collection and not the stamps, and counted those changes twice. The
-- stamps are now committed first, by each node (sql/ holds the
-- definitions; this step brings the schema there).

CREATE FUNCTION ai_cost_internal.stamp_shard_changes_on_this_node(collection bigint) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '1s' AS $$
DECLARE
  shard text;
BEGIN
  FOR shard IN
    SELECT shard_name(d.logicalrelid, d.shardid)
      FROM pg_dist_shard d
      JOIN pg_dist_placement p ON p.shardid = d.shardid
     WHERE d.logicalrelid = 'ai_cost_internal.shard_call_changes'::regclass
       AND p.groupid = (SELECT g.groupid FROM pg_dist_local_group g)
  LOOP
    EXECUTE format('UPDATE %s SET collected_by = $1 WHERE collected_by IS NULL', shard) USING collection;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stamp_shard_changes_on_this_node(bigint) IS 'Internal: stamps the call changes waiting in this node''s shards of ai_cost_internal.shard_call_changes with the number of the collection about to take them (ai_cost_internal.collect_shard_changes()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- Asked before the deletion below, which writes.
  may_stamp_ahead CONSTANT boolean := pg_current_xact_id_if_assigned() IS NULL
                                      AND current_setting('transaction_isolation') = 'read committed';
  collection bigint;
  rows_on_shards bigint;
  waiting bigint;
  stamped_ahead bigint;
  stamped bigint;
BEGIN
  IF NOT ai_cost_internal.calls_are_distributed() THEN
    RETURN;
  END IF;
  SELECT c.collection, c.rows_on_shards INTO collection, rows_on_shards FROM ai_cost_internal.shard_changes_collected c;
  IF rows_on_shards > 0 THEN
    DELETE FROM ai_cost_internal.shard_call_changes WHERE collected_by <= collection;
  END IF;
  SELECT count(*) FILTER (WHERE s.collected_by IS NULL), count(*) FILTER (WHERE s.collected_by > collection)
    INTO waiting, stamped_ahead
    FROM ai_cost_internal.shard_call_changes s
   WHERE s.collected_by IS NULL OR s.collected_by > collection;
  IF waiting = 0 AND stamped_ahead = 0 THEN
    UPDATE ai_cost_internal.shard_changes_collected c SET rows_on_shards = 0;
    RETURN;
  END IF;
  IF waiting > 0 AND may_stamp_ahead
     AND (SELECT bool_and(n.success)
            FROM run_command_on_all_nodes(format('SELECT ai_cost_internal.stamp_shard_changes_on_this_node(%s)',
                                                 collection + 1)) n) THEN
    waiting := 0;
  END IF;
  IF waiting = 0 THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT s.sign, s.created_at, s.provider, s.model, s.operation, s.status, s.service_tier, nullif(s.tenant_id, ''), s.user_id,
           s.feature, s.conversation_id, s.cached, s.streamed, s.unpriced_reason, s.cost_micros, s.input_tokens, s.output_tokens,
           s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens, s.ttft_ms, s.total_ms, s.call_id, s.billed_micros
      FROM ai_cost_internal.shard_call_changes s
     WHERE s.collected_by > collection;
  ELSE
    WITH moved AS (
      UPDATE ai_cost_internal.shard_call_changes s SET collected_by = collection + 1
       WHERE s.collected_by IS NULL OR s.collected_by > collection
      RETURNING *
    )
    INSERT INTO ai_cost_internal.call_changes
    SELECT m.sign, m.created_at, m.provider, m.model, m.operation, m.status, m.service_tier, nullif(m.tenant_id, ''), m.user_id,
           m.feature, m.conversation_id, m.cached, m.streamed, m.unpriced_reason, m.cost_micros, m.input_tokens, m.output_tokens,
           m.cache_read_tokens, m.cache_write_tokens, m.reasoning_tokens, m.ttft_ms, m.total_ms, m.call_id, m.billed_micros
      FROM moved m;
  END IF;
  GET DIAGNOSTICS stamped = ROW_COUNT;
  UPDATE ai_cost_internal.shard_changes_collected c
     SET collection = CASE WHEN stamped > 0 THEN c.collection + 1 ELSE c.collection END, rows_on_shards = stamped;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.collect_shard_changes() IS 'Internal: copies the call changes captured on the shards of a distributed ledger into ai_cost_internal.call_changes, stamping them as collected, and deletes those an earlier collection stamped (ai_cost.refresh()).';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

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

-- Changes stamped by a refresh that rolled back: the collection before
-- this step takes only those without a stamp.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    UPDATE ai_cost_internal.shard_call_changes SET collected_by = NULL
     WHERE collected_by > (SELECT c.collection FROM ai_cost_internal.shard_changes_collected c);
  END IF;
END
$$;

DROP FUNCTION ai_cost_internal.stamp_shard_changes_on_this_node(bigint);

SELECT ai_cost_internal.grant_roles();
