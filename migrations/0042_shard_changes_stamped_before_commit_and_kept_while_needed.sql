-- Up Migration
--
-- On a distributed ledger, the refresh stamped the changes it collected
-- from the shards in its own transaction, which Citus commits on the
-- coordinator before the workers: a live view read in between saw the
-- collection and not the stamps, and counted those changes twice. The
-- stamps are now committed first, by each node. And the next refresh
-- deleted them, so a view whose snapshot was older than two refreshes
-- missed the first one's changes: they now stay until no transaction that
-- may need them is open. (sql/ holds the definitions; this step brings the
-- schema there.)

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

CREATE FUNCTION ai_cost_internal.create_shard_collections_kept() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_collections_kept (
    collection bigint PRIMARY KEY,
    open_transactions text[]
  );
  COMMENT ON TABLE ai_cost_internal.shard_collections_kept IS 'Internal: each collection whose changes are still on the shards, kept for live views in transactions whose snapshot may not see it (ai_cost_internal.collect_shard_changes()).';
  COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.open_transactions IS 'Virtual transaction ids of the transactions open at the first refresh after the collection, NULL until then: every transaction whose snapshot may not see it. Its changes are deleted once none of them is open.';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_shard_collections_kept() IS 'Internal: creates the table of the collections whose changes are still on the shards of a distributed ledger (ai_cost.distribute()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.stamp_collected_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost_internal.shard_call_changes ADD COLUMN collected_by bigint;
  COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; copied into ai_cost_internal.call_changes by the next ai_cost.refresh().';
  COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted once no transaction that was open when that collection committed is (ai_cost_internal.shard_collections_kept).';
  CREATE TABLE ai_cost_internal.shard_changes_collected (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    collection bigint NOT NULL DEFAULT 0
  );
  INSERT INTO ai_cost_internal.shard_changes_collected DEFAULT VALUES;
  COMMENT ON TABLE ai_cost_internal.shard_changes_collected IS 'Internal: the number of the last collection of the changes captured on the shards that took any (ai_cost_internal.collect_shard_changes()).';
  PERFORM ai_cost_internal.create_shard_collections_kept();
  PERFORM ai_cost_internal.create_shard_changes_reader();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stamp_collected_shard_changes() IS 'Internal: adds to the changes captured on the shards of a distributed ledger the stamp of their collection, the count of collections, the collections kept, and the live views'' reader of them (ai_cost.distribute()).';

CREATE OR REPLACE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  may_stamp_ahead boolean;
  open_now text[];
  last_collection bigint;
  no_longer_needed bigint;
  waiting bigint;
  stamped_before bigint;
  nodes_stamped boolean := false;
  collected bigint;
BEGIN
  IF NOT ai_cost_internal.calls_are_distributed() THEN
    RETURN;
  END IF;
  -- Asked before the deletion below, which writes.
  may_stamp_ahead := pg_current_xact_id_if_assigned() IS NULL AND current_setting('transaction_isolation') = 'read committed';
  -- Every transaction holds a lock on its own virtual transaction id.
  open_now := (SELECT coalesce(array_agg(l.virtualxid), '{}')
                 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted
                  AND l.pid <> pg_backend_pid() AND a.datname = current_database());
  SELECT c.collection INTO last_collection FROM ai_cost_internal.shard_changes_collected c;
  UPDATE ai_cost_internal.shard_collections_kept k SET open_transactions = open_now WHERE k.open_transactions IS NULL;
  -- A transaction still open that was open at an earlier collection was
  -- open at every later one too: the collections no longer needed come first.
  SELECT greatest(max(k.collection) FILTER (WHERE NOT k.open_transactions && open_now), last_collection - 10)
    INTO no_longer_needed
    FROM ai_cost_internal.shard_collections_kept k;
  IF EXISTS (SELECT FROM ai_cost_internal.shard_collections_kept k WHERE k.collection <= no_longer_needed) THEN
    DELETE FROM ai_cost_internal.shard_call_changes WHERE collected_by <= no_longer_needed;
    DELETE FROM ai_cost_internal.shard_collections_kept k WHERE k.collection <= no_longer_needed;
  END IF;
  SELECT count(*) FILTER (WHERE s.collected_by IS NULL), count(*) FILTER (WHERE s.collected_by > last_collection)
    INTO waiting, stamped_before
    FROM ai_cost_internal.shard_call_changes s
   WHERE s.collected_by IS NULL OR s.collected_by > last_collection;
  IF waiting = 0 AND stamped_before = 0 THEN
    RETURN;
  END IF;
  IF waiting > 0 AND may_stamp_ahead THEN
    nodes_stamped := (SELECT coalesce(bool_and(n.success), false)
                        FROM run_command_on_all_nodes(format('SELECT ai_cost_internal.stamp_shard_changes_on_this_node(%s)',
                                                             last_collection + 1)) n);
  END IF;
  IF waiting > 0 AND NOT nodes_stamped THEN
    UPDATE ai_cost_internal.shard_call_changes s SET collected_by = last_collection + 1 WHERE s.collected_by IS NULL;
  END IF;
  INSERT INTO ai_cost_internal.call_changes
  SELECT s.sign, s.created_at, s.provider, s.model, s.operation, s.status, s.service_tier, nullif(s.tenant_id, ''), s.user_id,
         s.feature, s.conversation_id, s.cached, s.streamed, s.unpriced_reason, s.cost_micros, s.input_tokens, s.output_tokens,
         s.cache_read_tokens, s.cache_write_tokens, s.reasoning_tokens, s.ttft_ms, s.total_ms, s.call_id, s.billed_micros
    FROM ai_cost_internal.shard_call_changes s
   WHERE s.collected_by > last_collection;
  GET DIAGNOSTICS collected = ROW_COUNT;
  IF collected > 0 THEN
    UPDATE ai_cost_internal.shard_changes_collected c SET collection = c.collection + 1;
    INSERT INTO ai_cost_internal.shard_collections_kept (collection) VALUES (last_collection + 1);
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.collect_shard_changes() IS 'Internal: copies the call changes captured on the shards of a distributed ledger into ai_cost_internal.call_changes, stamping them as collected, and deletes those an earlier collection stamped (ai_cost.refresh()).';

DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    PERFORM ai_cost_internal.create_shard_collections_kept();
    INSERT INTO ai_cost_internal.shard_collections_kept (collection)
    SELECT c.collection FROM ai_cost_internal.shard_changes_collected c WHERE c.rows_on_shards > 0;
    ALTER TABLE ai_cost_internal.shard_changes_collected DROP COLUMN rows_on_shards;
    COMMENT ON TABLE ai_cost_internal.shard_changes_collected IS 'Internal: the number of the last collection of the changes captured on the shards that took any (ai_cost_internal.collect_shard_changes()).';
    COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted once no transaction that was open when that collection committed is (ai_cost_internal.shard_collections_kept).';
  END IF;
END
$$;

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

CREATE OR REPLACE FUNCTION ai_cost_internal.stamp_collected_shard_changes() RETURNS void
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

-- Changes stamped by a refresh that rolled back go back to waiting: the
-- collection before this step takes only those without a stamp. It deletes
-- the stamped ones when the last collection stamped any.
DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    UPDATE ai_cost_internal.shard_call_changes SET collected_by = NULL
     WHERE collected_by > (SELECT c.collection FROM ai_cost_internal.shard_changes_collected c);
    ALTER TABLE ai_cost_internal.shard_changes_collected ADD COLUMN rows_on_shards bigint NOT NULL DEFAULT 0;
    UPDATE ai_cost_internal.shard_changes_collected
       SET rows_on_shards = (SELECT count(*) FROM ai_cost_internal.shard_call_changes WHERE collected_by IS NOT NULL);
    DROP TABLE ai_cost_internal.shard_collections_kept;
    COMMENT ON TABLE ai_cost_internal.shard_changes_collected IS 'Internal: the number of the last collection of the changes captured on the shards that took any, and how many it stamped there (ai_cost_internal.collect_shard_changes()).';
    COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted by the next collection.';
  END IF;
END
$$;

DROP FUNCTION ai_cost_internal.stamp_shard_changes_on_this_node(bigint);
DROP FUNCTION ai_cost_internal.create_shard_collections_kept();

SELECT ai_cost_internal.grant_roles();
