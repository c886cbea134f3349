-- Distributing an installed ledger over a Citus cluster: ai_cost.distribute(),
-- run on the coordinator (docs/scaling.md says what it does and what changes).
--
-- The layout it makes:
--   ai_cost.calls                  distributed by tenant_id: the calls of a
--                                  tenant live together, on one shard.
--   the price tables (providers,   reference tables: a copy on every node, so
--   service_tiers, prices,         the cost trigger, which runs on the node
--   model_aliases, model_patterns, that holds the call's shard, reads them
--   tenant_discounts, markups and  there.
--   tenant_access)
--   the price lookup and the       node-local on every node: each node builds
--   compiled price book            its own from its copy of the price tables,
--                                  in the statement trigger that fires on its
--                                  copy when a price changes, so a change
--                                  reaches every node in its own transaction.
--   rollups, views, refresh and    stay on the coordinator, as on one server:
--   budget state                   the refresh reads new calls by id range
--                                  from the distributed table, and the
--                                  coordinator's lock table shows it every
--                                  transaction writing calls through it.
--   the changes of updates and     distributed like the calls, beside them:
--   deletes                        captured on each shard, collected into the
--   (shard_call_changes)           coordinator's change table by the refresh.
--   on a partitioned ledger: its   distributed like the calls, beside them:
--   partitions and request ids     a call claims its request id on its shard's
--   (request_ids)                  node, and a partition maintenance adds is
--                                  distributed as it is attached.
--
-- Citus runs the triggers of a distributed or reference table on each shard
-- copy (with citus.enable_unsafe_triggers), and a trigger running on a shard
-- copy can read reference tables but cannot write a distributed or reference
-- table (nested distributed execution). Hence the price triggers write only
-- node-local state (ai_cost_internal.close_previous_price updates its own
-- copy; the lookup and the book are plain tables on each node), and the
-- capture of updates and deletes writes the change shard on the node of the
-- calls' shard (ai_cost_internal.capture_shard_call_changes), as the claims of
-- request ids write the request id shard there.

-- The tenant_id a call recorded without one gets: NULL on one server. A
-- distribution column cannot be NULL, so ai_cost.distribute() replaces this
-- with the one it gives calls without a tenant (''), which ai_cost.insert_calls()
-- uses for a batch's calls without one, as the column default does for an
-- INSERT that leaves the column out. A SQL constant, inlined into the batch.
CREATE FUNCTION ai_cost_internal.tenant_of_calls_without_one() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT NULL::pg_catalog.text $$;
COMMENT ON FUNCTION ai_cost_internal.tenant_of_calls_without_one() IS 'Internal: the tenant_id of a call recorded without one: NULL, or '''' on a ledger distributed by ai_cost.distribute().';

-- Row-level security on a distributed table may not use subqueries, so on a
-- distributed ledger the policies of the calls and their rollups ask these
-- (150_roles.sql keeps the subquery form on one server, where PostgreSQL
-- evaluates it once per query, not once per row).
CREATE FUNCTION ai_cost_internal.is_tenant_reader() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_has_role('ai_cost_tenant_reader', 'MEMBER')
$$;
COMMENT ON FUNCTION ai_cost_internal.is_tenant_reader() IS 'Internal: whether the current role reads calls as a tenant reader (row-level security of a distributed ledger).';

CREATE FUNCTION ai_cost_internal.may_read_tenant(tenant_id text) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN EXISTS (SELECT FROM ai_cost.tenant_access a WHERE a.tenant_id = $1);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.may_read_tenant(text) IS 'Internal: whether ai_cost.tenant_access maps the current role to the tenant (row-level security of a distributed ledger).';

-- Whether ai_cost.calls is distributed over Citus: false on one server,
-- made the constant true by ai_cost.distribute(). Inlined where it is asked.
CREATE FUNCTION ai_cost_internal.calls_are_distributed() RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT false
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_are_distributed() IS 'Internal: whether ai_cost.calls is distributed over Citus (ai_cost.distribute() makes it true).';

-- Updates and deletes of a distributed ledger's calls, captured on the
-- shards. A trigger on a shard cannot write the coordinator's change table
-- (nested distributed execution), so it writes the shard of
-- ai_cost_internal.shard_call_changes that lives beside it: distributed by
-- tenant_id like the calls, so every row of one shard's statement has the
-- same change shard, on the same node, written as a local table. The refresh
-- collects those changes into the change table in its own transaction
-- (collect_shard_changes), and the live views read them where they are
-- (shard_changes, 090_rollups.sql). Calls without a tenant are '' here, as
-- in the calls. SECURITY DEFINER, as the one-server capture: whoever may
-- change calls needs no rights on the change shards.
CREATE FUNCTION ai_cost_internal.capture_shard_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- A change of a call, after its sign, in the columns of call_changes.
  change CONSTANT text := 'created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
    conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id, billed_micros';
  change_shard text;
BEGIN
  SELECT format('ai_cost_internal.%I', 'shard_call_changes_' || get_shard_id_for_distribution_column('ai_cost_internal.shard_call_changes', o.tenant_id))
    INTO change_shard FROM old_calls o LIMIT 1;
  IF change_shard IS NULL THEN
    RETURN NULL;
  END IF;
  EXECUTE format('INSERT INTO %s SELECT -1, %s FROM old_calls', change_shard, change);
  IF TG_OP = 'UPDATE' THEN
    EXECUTE format('INSERT INTO %s SELECT 1, %s FROM new_calls', change_shard, change);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.capture_shard_call_changes() IS 'Trigger on the shards of a distributed ledger''s calls: records the calls a statement updated or deleted in the co-located shard of ai_cost_internal.shard_call_changes.';

-- The request ids of a distributed partitioned ledger (140_partitioning.sql
-- keeps them in ai_cost_internal.request_ids, since a partitioned table
-- cannot have UNIQUE (request_id)). There they are distributed like the
-- calls, by tenant_id, so the claim of a call's request id is made on the
-- node of its shard, in the shard of request_ids beside it; a trigger on a
-- shard cannot write a distributed table (nested distributed execution), so
-- these write that shard directly, as capture_shard_call_changes does. The
-- name of the shard a tenant's request ids are in: PL/pgSQL, whose body is
-- read when it runs, since a server without Citus lacks the function it asks.
CREATE FUNCTION ai_cost_internal.request_id_shard(tenant_id text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN format('ai_cost_internal.%I', 'request_ids_' || get_shard_id_for_distribution_column('ai_cost_internal.request_ids', tenant_id));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.request_id_shard(text) IS 'Internal: the shard of ai_cost_internal.request_ids that holds a tenant''s request ids on a distributed partitioned ledger.';

-- BEFORE INSERT on the shards of a distributed partitioned ledger's calls:
-- ai_cost_internal.claim_request_id, per tenant. SECURITY DEFINER, as there.
CREATE FUNCTION ai_cost_internal.claim_shard_request_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  claimed bigint;
BEGIN
  EXECUTE format('INSERT INTO %s (tenant_id, request_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
                 ai_cost_internal.request_id_shard(NEW.tenant_id))
    USING NEW.tenant_id, NEW.request_id, NEW.created_at;
  GET DIAGNOSTICS claimed = ROW_COUNT;
  IF claimed > 0 THEN
    RETURN NEW;
  END IF;
  IF current_setting('ai_cost.moving_request_id', true) = NEW.request_id THEN
    PERFORM set_config('ai_cost.moving_request_id', '', true);
    RETURN NEW;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.claim_shard_request_id() IS 'Trigger on the shards of a distributed partitioned ledger''s calls: records the request_id of a call in the co-located shard of ai_cost_internal.request_ids, or skips the call when its tenant already has it.';

-- BEFORE UPDATE OF request_id, created_at on those shards:
-- ai_cost_internal.move_request_id, per tenant (Citus never changes a
-- distribution column, so a call keeps its tenant).
CREATE FUNCTION ai_cost_internal.move_shard_request_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  shard CONSTANT text := ai_cost_internal.request_id_shard(NEW.tenant_id);
BEGIN
  IF OLD.request_id IS NOT DISTINCT FROM NEW.request_id THEN
    EXECUTE format('UPDATE %s SET created_at = $3 WHERE tenant_id = $1 AND request_id = $2', shard)
      USING NEW.tenant_id, NEW.request_id, NEW.created_at;
  ELSE
    EXECUTE format('DELETE FROM %s WHERE tenant_id = $1 AND request_id = $2', shard) USING OLD.tenant_id, OLD.request_id;
    IF NEW.request_id IS NOT NULL THEN
      BEGIN
        EXECUTE format('INSERT INTO %s (tenant_id, request_id, created_at) VALUES ($1, $2, $3)', shard)
          USING NEW.tenant_id, NEW.request_id, NEW.created_at;
      EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "calls_request_id_key"'
          USING ERRCODE = 'unique_violation', CONSTRAINT = 'calls_request_id_key', TABLE = 'calls',
                SCHEMA = 'ai_cost', DETAIL = format('Key (tenant_id, request_id)=(%s, %s) already exists.', NEW.tenant_id, NEW.request_id);
      END;
    END IF;
  END IF;
  PERFORM set_config('ai_cost.moving_request_id', coalesce(NEW.request_id, ''), true);
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.move_shard_request_id() IS 'Trigger on the shards of a distributed partitioned ledger''s calls: follows a change of request_id or created_at of a call.';

-- After DELETE (statement, transition table) on those shards: the deleted
-- calls' request ids are free again. Every row of one shard's statement
-- has its request ids in the same shard.
CREATE FUNCTION ai_cost_internal.release_shard_request_ids() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  shard text;
BEGIN
  SELECT ai_cost_internal.request_id_shard(o.tenant_id) INTO shard FROM old_calls o LIMIT 1;
  IF shard IS NOT NULL THEN
    EXECUTE format('DELETE FROM %s r USING old_calls o WHERE r.tenant_id = o.tenant_id AND r.request_id = o.request_id', shard);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.release_shard_request_ids() IS 'Trigger on the shards of a distributed partitioned ledger''s calls: frees the request_ids of the calls a statement deleted.';

-- Distributes the request ids of a partitioned ledger beside the calls,
-- each with its call's tenant, with the shard versions of the triggers that
-- claim them. Run by ai_cost.distribute() once the calls are distributed,
-- having dropped the one-server triggers before.
CREATE FUNCTION ai_cost_internal.distribute_request_ids() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  TRUNCATE ai_cost_internal.request_ids;
  ALTER TABLE ai_cost_internal.request_ids ADD COLUMN tenant_id text NOT NULL;
  ALTER TABLE ai_cost_internal.request_ids DROP CONSTRAINT request_ids_pkey;
  ALTER TABLE ai_cost_internal.request_ids ADD PRIMARY KEY (tenant_id, request_id);
  PERFORM create_distributed_table('ai_cost_internal.request_ids', 'tenant_id', colocate_with => 'ai_cost.calls');
  INSERT INTO ai_cost_internal.request_ids (tenant_id, request_id, created_at)
  SELECT c.tenant_id, c.request_id, c.created_at FROM ai_cost.calls c WHERE c.request_id IS NOT NULL;
  CREATE TRIGGER tg_calls__claim_request_id
    BEFORE INSERT ON ai_cost.calls FOR EACH ROW WHEN (NEW.request_id IS NOT NULL)
    EXECUTE FUNCTION ai_cost_internal.claim_shard_request_id();
  CREATE TRIGGER tg_calls__move_request_id
    BEFORE UPDATE OF request_id, created_at ON ai_cost.calls FOR EACH ROW
    WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_cost_internal.move_shard_request_id();
  CREATE TRIGGER tg_calls__release_request_ids
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_shard_request_ids();
  -- Citus runs a TRUNCATE trigger on the coordinator's table only, where
  -- request_ids is truncated as a distributed table.
  CREATE TRIGGER tg_calls__truncate_request_ids
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.distribute_request_ids() IS 'Internal: distributes the request ids of a partitioned ledger beside its calls, with the triggers that claim them on the shards (ai_cost.distribute()).';

-- The open transactions of this database that hold a snapshot, which are
-- those that may not see a collection of the changes on the shards (see
-- collect_shard_changes): every transaction holds a lock on its own virtual
-- transaction id, and while it holds a snapshot its backend_xmin is set
-- (which any login can see; an idle READ COMMITTED transaction holds none).
CREATE FUNCTION ai_cost_internal.transactions_holding_snapshots(OUT virtualxid text, OUT pid integer)
RETURNS SETOF record
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT l.virtualxid, l.pid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted
     AND a.datname = current_database() AND a.backend_xmin IS NOT NULL
$$;
COMMENT ON FUNCTION ai_cost_internal.transactions_holding_snapshots() IS 'Internal: the virtual transaction ids and backends of this database''s open transactions that hold a snapshot, which keep the changes of the collections they may not see on the shards of a distributed ledger.';

-- Copies the changes captured on the shards into the change table, for the
-- refresh to fold in the same transaction (ai_cost_internal.refresh_rollups);
-- nothing on one server. A live view reads the rollups as of its snapshot on
-- the coordinator, and the shards as of each one's own, which can be earlier
-- or later. So the refresh does not delete the changes it takes: it stamps
-- them with the number of this collection (shard_changes_collected), which
-- a live view skips once its snapshot on the coordinator sees that number.
--
-- A view whose snapshot does not see a collection counts its changes, so
-- they stay on the shards while such a snapshot may exist: until every
-- transaction that held a snapshot at the first refresh after the
-- collection (which has committed by then) has ended
-- (shard_collections_kept). A transaction that held none then, idle in
-- READ COMMITTED say, takes its next snapshot after the collection, which
-- it sees. Each refresh deletes the changes of the collections no open
-- transaction can still need, and those ten collections old whatever is
-- open: a transaction left open in REPEATABLE READ would otherwise keep on
-- the shards every change made meanwhile, for every live view to read past.
--
-- The stamps must be visible on the shards before the number is on the
-- coordinator. Citus commits a transaction on the coordinator first and
-- then on the workers, so stamps written in the refresh's transaction
-- would leave an instant (or, if a worker cannot be reached then, until
-- Citus recovers its prepared transaction) in which a view sees the number
-- and not the stamps, and counts the changes twice. So the stamps are
-- committed first, by each node in a transaction of its own
-- (stamp_shard_changes_on_this_node): a view then counts the stamped changes
-- until the number is committed, and skips them after, as the rollups then
-- hold them. If the refresh rolls back, they stay stamped with a number the
-- coordinator never committed, still counted, and the next collection, which
-- draws the same number, takes them with the changes made since.
--
-- The nodes' transactions must not wait for this one, which waits for them,
-- and its next statement on the shards must see what they committed: so
-- they stamp only when this transaction has written nothing yet (it has no
-- transaction id) and reads in READ COMMITTED. Otherwise, or if a node could
-- not stamp (its lock_timeout passed), the stamps are written in this
-- transaction.
CREATE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
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
  -- Read afresh, not from this transaction's cached copy of pg_stat_activity.
  PERFORM pg_stat_clear_snapshot();
  open_now := (SELECT coalesce(array_agg(h.virtualxid), '{}')
                 FROM ai_cost_internal.transactions_holding_snapshots() h WHERE h.pid <> pg_backend_pid());
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

-- Stamps the changes waiting in the shards of shard_call_changes on this
-- node with a collection's number, in the transaction of the connection
-- ai_cost_internal.collect_shard_changes opens here: see there. Its
-- lock_timeout keeps the refresh from waiting for long on a node where a
-- shard is locked (by a shard move, say); it then stamps them itself.
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

-- The capture triggers of a distributed ledger's calls (see
-- capture_shard_call_changes): one per event, as a trigger with transition
-- tables handles one.
CREATE FUNCTION ai_cost_internal.create_shard_capture_triggers() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TRIGGER tg_calls__capture_updates
    AFTER UPDATE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.capture_shard_call_changes();
  CREATE TRIGGER tg_calls__capture_deletes
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.capture_shard_call_changes();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_shard_capture_triggers() IS 'Internal: creates the triggers that capture updates and deletes of the calls on the shards of a distributed ledger.';


-- Empties the rollups when the distributed calls are truncated: Citus runs
-- a TRUNCATE trigger on the coordinator's table, where the rollups are, and
-- never on the shards. ai_cost.distribute() drops the triggers of the calls
-- before it distributes them, and creates this one again after.
CREATE FUNCTION ai_cost_internal.create_truncate_trigger() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TRIGGER tg_calls__truncate_rollups
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.truncate_rollups();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_truncate_trigger() IS 'Internal: creates the trigger that empties the rollups when the calls of a distributed ledger are truncated.';

-- The live views' reader of the changes waiting on the shards, created on
-- the coordinator only: it reads a distributed table there. It skips those
-- a refresh has collected, as far as the coordinator's snapshot of the
-- calling query sees (see collect_shard_changes): the rollups it adds them
-- to are read in that snapshot. SECURITY DEFINER, as
-- ai_cost_internal.unfolded_calls(): the live views read the changes for
-- roles without rights on them.
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

-- What lets the live views and the refresh agree on the changes collected
-- from the shards (see collect_shard_changes): the stamp of the collection
-- that took each change, the coordinator's count of collections, the
-- collections whose changes are kept, and the live views' reader that skips
-- what the rollups already hold. For a change
-- table distributed by an earlier release too.
CREATE FUNCTION ai_cost_internal.stamp_collected_shard_changes() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  ALTER TABLE ai_cost_internal.shard_call_changes ADD COLUMN collected_by bigint;
  COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; copied into ai_cost_internal.call_changes by the next ai_cost.refresh().';
  COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted once no transaction open is one that may hold a snapshot older than that collection (ai_cost_internal.shard_collections_kept).';
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

-- The collections whose changes are still on the shards (see
-- collect_shard_changes), with the transactions that may hold a snapshot
-- older than each, and ai_cost.refresh_status's reader of them.
CREATE FUNCTION ai_cost_internal.create_shard_collections_kept() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_collections_kept (
    collection bigint PRIMARY KEY,
    open_transactions text[],
    collected_at timestamptz NOT NULL DEFAULT now()
  );
  COMMENT ON TABLE ai_cost_internal.shard_collections_kept IS 'Internal: each collection whose changes are still on the shards, kept for live views in transactions whose snapshot may not see it (ai_cost_internal.collect_shard_changes()).';
  COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.open_transactions IS 'Virtual transaction ids of the transactions that held a snapshot at the first refresh after the collection, NULL until then: every transaction whose snapshot may not see it. Its changes are deleted once none of them is open.';
  COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.collected_at IS 'When the refresh that made the collection started.';
  PERFORM ai_cost_internal.create_shard_changes_kept_reader();
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_shard_collections_kept() IS 'Internal: creates the table of the collections whose changes are still on the shards of a distributed ledger, and ai_cost.refresh_status''s reader of it (ai_cost.distribute()).';

-- Gives ai_cost_internal.shard_changes_kept() its body over the kept
-- collections, on the coordinator only, where they are: the oldest kept for
-- a transaction still open and holding a snapshot (the rule by which
-- collect_shard_changes keeps them), and the backends of those transactions.
-- SECURITY DEFINER: ai_cost.refresh_status reads it for roles without rights
-- on the kept collections, to which it shows only a time and process ids.
CREATE FUNCTION ai_cost_internal.create_shard_changes_kept_reader() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  EXECUTE format($f$CREATE OR REPLACE FUNCTION %s(OUT kept_since timestamptz, OUT kept_for_pids integer[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$f$, 'ai_cost_internal.shard_changes_kept', $body$
  WITH kept_for AS (
    SELECT k.collected_at, h.pid
      FROM ai_cost_internal.shard_collections_kept k
      JOIN ai_cost_internal.transactions_holding_snapshots() h ON h.virtualxid = ANY (k.open_transactions)
  )
  SELECT min(f.collected_at), array_agg(DISTINCT f.pid ORDER BY f.pid) FROM kept_for f
$body$);
  PERFORM set_config('citus.enable_ddl_propagation', 'on', true);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.create_shard_changes_kept_reader() IS 'Internal: gives ai_cost_internal.shard_changes_kept() its body over the collections kept on a distributed ledger (ai_cost.distribute()).';

-- Captures updates and deletes of the distributed calls on their shards:
-- the co-located change table, the count of its collections, and the
-- functions that read it. The capture triggers must already be on
-- ai_cost.calls.
CREATE FUNCTION ai_cost_internal.capture_changes_on_shards() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_call_changes (LIKE ai_cost_internal.call_changes);
  ALTER TABLE ai_cost_internal.shard_call_changes ALTER tenant_id SET NOT NULL;
  -- Citus moves a shard by logical replication (citus_rebalance_start()'s
  -- default), which needs a replica identity on every table co-located
  -- with it. The rows have no key, and a shard holds few of them: the
  -- changes since the last refresh.
  ALTER TABLE ai_cost_internal.shard_call_changes REPLICA IDENTITY FULL;
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

-- CREATE TABLE IF NOT EXISTS for a node-local copy of a table: columns,
-- defaults, constraints, indexes and grants as on the coordinator.
CREATE FUNCTION ai_cost_internal.node_local_table_ddl(source regclass) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ddl text;
BEGIN
  SELECT format('CREATE TABLE IF NOT EXISTS %s (%s);', source, string_agg(
           format('%I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                  ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), CASE WHEN a.attnotnull THEN ' NOT NULL' END),
           ', ' ORDER BY a.attnum))
    INTO ddl
    FROM pg_attribute a
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped;
  -- Each constraint and index is created unless the node has it, so that a
  -- second run goes through to the grants: run_command_on_workers reports
  -- the first statement's result, and an error after it would pass unseen.
  SELECT ddl || coalesce(format(' DO $ddl$ BEGIN %s END $ddl$;', string_agg(stmt, ' ')), '')
    INTO ddl
    FROM (SELECT format('IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = %L::regclass AND conname = %L) THEN ALTER TABLE %s ADD CONSTRAINT %I %s; END IF;',
                        source, c.conname, source, c.conname, pg_get_constraintdef(c.oid)) AS stmt
            FROM pg_constraint c WHERE c.conrelid = source
          UNION ALL
          SELECT format('IF to_regclass(%L) IS NULL THEN %s; END IF;', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid))
            FROM pg_index i
           WHERE i.indrelid = source AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)) s;
  RETURN ddl || coalesce((
    SELECT string_agg(format(' GRANT %s ON %s TO %s;', x.privilege_type, source,
                             CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(x.grantee::regrole::text) END), '')
      FROM pg_class c, aclexplode(c.relacl) x
     WHERE c.oid = source AND x.grantee <> c.relowner), '');
END
$$;
COMMENT ON FUNCTION ai_cost_internal.node_local_table_ddl(regclass) IS 'Internal: the DDL that creates a node-local copy of a table on a Citus worker (ai_cost.distribute()).';

-- The tables every node of a distributed ledger reads a copy of: the price
-- tables the cost and billing triggers read on the node of a call's shard,
-- and the tenant mapping the row-level security there reads. ai_cost.distribute()
-- makes each a reference table; ai-cost doctor names any that is not (one an
-- upgrade added since distribute last ran).
CREATE FUNCTION ai_cost_internal.reference_tables() RETURNS regclass[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT ARRAY['ai_cost.providers', 'ai_cost.service_tiers', 'ai_cost.prices', 'ai_cost.model_aliases',
               'ai_cost.model_patterns', 'ai_cost.tenant_discounts', 'ai_cost.tenant_access', 'ai_cost.markups']::regclass[]
$$;
COMMENT ON FUNCTION ai_cost_internal.reference_tables() IS 'Internal: the tables ai_cost.distribute() makes reference tables, a copy on every node.';

-- The settings functions of a distributed ledger need from Citus, each
-- given by ai_cost.distribute(). CREATE OR REPLACE FUNCTION sets a
-- function's settings to those its statement names, so an upgrade that
-- replaces one of these drops its setting: migrate puts them back after its
-- steps on a distributed ledger (src/migrate.ts), and ai-cost doctor names
-- any function that lacks its setting.
CREATE FUNCTION ai_cost_internal.cluster_function_settings(OUT function regprocedure, OUT setting text, OUT value text)
RETURNS SETOF record
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  VALUES
    -- Every node compiles its own price book: its DDL stays on the node.
    ('ai_cost_internal.compile_price_book()'::regprocedure, 'citus.enable_ddl_propagation', 'off'),
    -- Otherwise Citus locks every shard an INSERT ... SELECT ... ON CONFLICT
    -- writes against every other one (to keep several copies of a shard
    -- alike): two batches would wait for each other, and all of them for one
    -- long transaction. The calls' shards have one copy, whose unique index
    -- settles a conflict by itself.
    ('ai_cost.insert_calls(jsonb)'::regprocedure, 'citus.all_modifications_commutative', 'on'),
    -- The calls' policy reads the tenant_access reference table on the node
    -- of the shard it filters: a read Citus calls nested, and which is local.
    ('ai_cost_internal.may_read_tenant(text)'::regprocedure, 'citus.allow_nested_distributed_execution', 'on'),
    -- The capture writes the change shard beside the calls' shard directly,
    -- which Citus allows only where asked.
    ('ai_cost_internal.capture_shard_call_changes()'::regprocedure, 'citus.enable_manual_changes_to_shards', 'on'),
    -- So do the claims of request ids on a partitioned ledger.
    ('ai_cost_internal.claim_shard_request_id()'::regprocedure, 'citus.enable_manual_changes_to_shards', 'on'),
    ('ai_cost_internal.move_shard_request_id()'::regprocedure, 'citus.enable_manual_changes_to_shards', 'on'),
    ('ai_cost_internal.release_shard_request_ids()'::regprocedure, 'citus.enable_manual_changes_to_shards', 'on')
$$;
COMMENT ON FUNCTION ai_cost_internal.cluster_function_settings() IS 'Internal: the Citus setting each function of a distributed ledger needs, which ai_cost.distribute() gives it.';

-- Gives each function its setting. ALTER FUNCTION on a function Citus has
-- created on the workers changes their copies too.
CREATE FUNCTION ai_cost_internal.apply_cluster_function_settings() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  wanted record;
BEGIN
  FOR wanted IN SELECT * FROM ai_cost_internal.cluster_function_settings() LOOP
    EXECUTE format('ALTER FUNCTION %s SET %s = %L', wanted.function, wanted.setting, wanted.value);
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.apply_cluster_function_settings() IS 'Internal: gives the functions of a distributed ledger the Citus settings they need (ai_cost.distribute(), and migrate after an upgrade of a distributed ledger).';

CREATE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price_tables CONSTANT regclass[] := ai_cost_internal.reference_tables();
  node_local_tables CONSTANT regclass[] := ARRAY['ai_cost_internal.price_lookup', 'ai_cost_internal.price_book',
                                                 'ai_cost_internal.price_book_generation'];
  local_price_tables regclass[];
  t regclass;
  trigger_name name;
  source_triggers text[];
  definition text;
  worker record;
  workers integer;
  already boolean;
  lacks_reference_tables boolean;
  partitioned CONSTANT boolean := ai_cost_internal.calls_partitioned();
  moved bigint;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'ai_cost.distribute() needs Citus, and this database has no citus extension: on a Citus coordinator, CREATE EXTENSION citus and add the workers (citus_add_node) first';
  END IF;
  IF (SELECT groupid FROM pg_dist_local_group) <> 0 THEN
    RAISE EXCEPTION 'ai_cost.distribute() runs on the Citus coordinator, and this is a worker';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_dist_node WHERE groupid = 0) THEN
    RAISE EXCEPTION 'the coordinator is not in the Citus metadata, so it would hold no copy of the price tables: run SELECT citus_set_coordinator_host(''<its host>'', <its port>) first';
  END IF;
  already := EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.calls'::regclass);
  -- A worker added since the last run needs copies of the price tables:
  -- small tables, copied below while writes to them wait (the default would
  -- need logical replication, wal_level = logical, on every node). Citus
  -- lets only a superuser copy them, so an owner that is none is refused
  -- here, before anything is written on any node. Checked by oid: the
  -- function's signature names a type in schema citus, which such an owner
  -- may not look up.
  lacks_reference_tables := already AND EXISTS (
    SELECT FROM pg_dist_partition p
      JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid
     CROSS JOIN pg_dist_node n
     WHERE p.partmethod = 'n' AND p.repmodel = 't' AND n.isactive AND n.noderole = 'primary'
       AND NOT EXISTS (SELECT FROM pg_dist_placement pl WHERE pl.shardid = s.shardid AND pl.groupid = n.groupid));
  IF lacks_reference_tables AND NOT (SELECT bool_and(has_function_privilege(p.oid, 'EXECUTE')) FROM pg_proc p
                                      WHERE p.proname = 'replicate_reference_tables' AND p.pronamespace = 'pg_catalog'::regnamespace) THEN
    RAISE EXCEPTION 'a node added to the cluster has no copy of the reference tables yet, and Citus lets only a superuser copy them: run SELECT replicate_reference_tables(''block_writes'') as a superuser, then this again';
  END IF;
  PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);

  -- Node-local price state on every worker, created before the statement
  -- below asks each node to fill it. run_command_on_workers commits on its
  -- own: a run that fails later leaves empty tables, which the next run uses.
  FOR worker IN
    SELECT r.nodename, r.nodeport, r.success, r.result
      FROM unnest(node_local_tables) AS n(t),
           LATERAL run_command_on_workers(ai_cost_internal.node_local_table_ddl(n.t)
                                          || CASE WHEN n.t = 'ai_cost_internal.price_book_generation'::regclass
                                                  THEN ' INSERT INTO ai_cost_internal.price_book_generation (generation)'
                                                       ' SELECT 0 WHERE NOT EXISTS (SELECT FROM ai_cost_internal.price_book_generation);'
                                                  ELSE '' END) AS r
     WHERE NOT r.success
  LOOP
    RAISE EXCEPTION 'could not create the price lookup on worker %:%: %', worker.nodename, worker.nodeport, worker.result;
  END LOOP;
  SELECT count(*) INTO workers FROM pg_dist_node WHERE groupid <> 0 AND isactive AND noderole = 'primary';
  step := 'workers'; detail := format('%s worker(s) have the node-local price lookup and book', workers); RETURN NEXT;

  PERFORM ai_cost_internal.apply_cluster_function_settings();

  -- The price tables not yet distributed: all of them on the first run, a
  -- table an upgrade added on a later one.
  local_price_tables := ARRAY(SELECT p FROM unnest(price_tables) AS p
                               WHERE NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = p));
  IF cardinality(local_price_tables) > 0 THEN
    -- Copying a table's rows to its shard copies would fire its triggers
    -- there: they go first and come back on the reference tables, where they
    -- fire on each node's copy. They come back without TRUNCATE among their
    -- events: Citus does not run TRUNCATE triggers on shards.
    source_triggers := ARRAY(
      SELECT regexp_replace(pg_get_triggerdef(g.oid), ' OR TRUNCATE', '')
        FROM pg_trigger g WHERE g.tgrelid = ANY (local_price_tables) AND NOT g.tgisinternal ORDER BY g.tgrelid, g.tgname);
    FOR trigger_name, t IN
      SELECT g.tgname, g.tgrelid::regclass FROM pg_trigger g WHERE g.tgrelid = ANY (local_price_tables) AND NOT g.tgisinternal
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, t);
    END LOOP;
    -- A role's oid differs from node to node: the copy of tenant_access on
    -- every node names its roles.
    IF 'ai_cost.tenant_access'::regclass = ANY (local_price_tables) THEN
      DROP POLICY own_tenants ON ai_cost.tenant_access;
      ALTER TABLE ai_cost.tenant_access ALTER reader TYPE name USING pg_get_userbyid(reader::oid);
      CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT USING (pg_has_role(reader, 'USAGE'));
    END IF;
    FOREACH t IN ARRAY local_price_tables LOOP
      EXECUTE 'SELECT create_reference_table($1)' USING t;
    END LOOP;
    FOREACH definition IN ARRAY source_triggers LOOP
      EXECUTE definition;
    END LOOP;
    step := 'price tables'; detail := (SELECT string_agg(replace(p::text, 'ai_cost.', ''), ', ') FROM unnest(local_price_tables) AS p)
                                      || ' are reference tables'; RETURN NEXT;
  END IF;

  -- A worker added since the last run gets its copies of the price tables
  -- (checked above who may copy them).
  IF lacks_reference_tables THEN
    EXECUTE 'SELECT replicate_reference_tables(''block_writes'')';
  END IF;
  PERFORM ai_cost_internal.distribute_functions();
  -- A statement on every copy of the prices fires the lookup trigger there:
  -- each node builds its lookup and compiles its book from its copy.
  UPDATE ai_cost.prices SET source = source WHERE id < 0;
  step := 'price book'; detail := 'every node built its price lookup and compiled its price book'; RETURN NEXT;

  IF NOT already THEN
    -- A distribution column cannot be NULL: calls without a tenant get '',
    -- which the rollups read as none (090_rollups.sql), so they do not
    -- change. The rows keep their costs: the cost trigger and the capture
    -- stay out of it.
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__set_billed,
                              DISABLE TRIGGER tg_calls__capture_updates;
    UPDATE ai_cost.calls SET tenant_id = '' WHERE tenant_id IS NULL;
    GET DIAGNOSTICS moved = ROW_COUNT;
    ALTER TABLE ai_cost.calls ALTER tenant_id SET DEFAULT '', ALTER tenant_id SET NOT NULL;
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   'ai_cost_internal.tenant_of_calls_without_one', 'SELECT ''''::pg_catalog.text');
    step := 'calls without a tenant'; detail := format('%s call(s) without a tenant now have tenant_id '''' (a distribution column cannot be NULL)', moved); RETURN NEXT;

    -- Unique keys must hold the distribution column (and on a partitioned
    -- ledger the partition key, which they hold already): request ids are
    -- unique per tenant, and ON CONFLICT DO NOTHING (no target) works as before.
    ALTER TABLE ai_cost.calls DROP CONSTRAINT calls_pkey, DROP CONSTRAINT calls_request_id_key;
    EXECUTE format('ALTER TABLE ai_cost.calls ADD CONSTRAINT calls_pkey PRIMARY KEY (tenant_id, id%1$s),
                      ADD CONSTRAINT calls_request_id_key UNIQUE (tenant_id, request_id%1$s)',
                   CASE WHEN partitioned THEN ', created_at' ELSE '' END);
    -- The refresh and the live views read calls by id alone, which the new
    -- primary key, led by the tenant, cannot serve.
    CREATE INDEX calls_id_idx ON ai_cost.calls (id);
    -- The refresh finds new calls by the ids the coordinator draws and the
    -- writers its lock table shows. A call inserted on a worker draws from
    -- the worker's own range of ids, from 2^48 up, and would never be folded.
    ALTER TABLE ai_cost.calls ADD CONSTRAINT "calls are recorded through the coordinator" CHECK (id < 281474976710656);
    -- The policies of the calls and their rollups ask functions instead of
    -- subqueries: Citus refuses subqueries in the policies of a distributed
    -- table, and plans the rollups' join with the tenant_access reference
    -- table recursively, without end. The rollups are on the coordinator.
    FOREACH t IN ARRAY ARRAY['ai_cost.calls', 'ai_cost.calls_hourly', 'ai_cost.conversations_hourly']::regclass[] LOOP
      EXECUTE format('DROP POLICY tenant_rows ON %s', t);
      EXECUTE format('DROP POLICY other_roles_all_rows ON %s', t);
      EXECUTE format('CREATE POLICY tenant_rows ON %s FOR SELECT
                        USING (ai_cost_internal.is_tenant_reader() AND ai_cost_internal.may_read_tenant(tenant_id))', t);
      EXECUTE format('CREATE POLICY other_roles_all_rows ON %s
                        USING (NOT ai_cost_internal.is_tenant_reader()) WITH CHECK (true)', t);
    END LOOP;
    -- Updates and deletes are captured on the shards, which carry the
    -- triggers of the table.
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    -- So do the claims of request ids, on a partitioned ledger.
    IF partitioned THEN
      DROP TRIGGER tg_calls__claim_request_id ON ai_cost.calls;
      DROP TRIGGER tg_calls__move_request_id ON ai_cost.calls;
      DROP TRIGGER tg_calls__release_request_ids ON ai_cost.calls;
      DROP TRIGGER tg_calls__truncate_request_ids ON ai_cost.calls;
    END IF;
    PERFORM ai_cost_internal.create_shard_capture_triggers();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    -- Citus has copied the calls to the shards and left them on the
    -- coordinator's disk too, out of every query's sight: they go. It
    -- truncates the table there, which fires no trigger of pg-ai-cost: the
    -- TRUNCATE triggers, which would empty the rollups, come back below.
    PERFORM truncate_local_data_after_distributing_table('ai_cost.calls');
    PERFORM ai_cost_internal.capture_changes_on_shards();
    IF partitioned THEN
      PERFORM ai_cost_internal.distribute_request_ids();
    END IF;
    PERFORM ai_cost_internal.create_truncate_trigger();
    -- Citus takes one ENABLE TRIGGER per statement.
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__price_call;
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__set_billed;
    PERFORM ai_cost_internal.distribute_functions();
    step := 'calls'; detail := format('ai_cost.calls is distributed by tenant_id over %s shard(s)',
                                      (SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'ai_cost.calls'::regclass));
    RETURN NEXT;
  ELSE
    step := 'calls'; detail := 'ai_cost.calls was already distributed'; RETURN NEXT;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost.distribute() IS 'Distributes the ledger over the Citus cluster this coordinator runs: calls by tenant_id, the price tables as reference tables, a price lookup and book on every node. Idempotent: run it again after adding a worker. See docs/scaling.md.';

-- Creates on the workers the functions of pg-ai-cost that Citus has not
-- (those created before Citus was, or taking a row of a table that was
-- local then): the cost trigger calls them on every node. Functions that
-- only the coordinator runs, over its local tables, cannot be and are skipped.
CREATE FUNCTION ai_cost_internal.distribute_functions() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace)
       AND NOT EXISTS (SELECT FROM pg_dist_object o WHERE o.classid = 'pg_proc'::regclass AND o.objid = p.oid)
  LOOP
    BEGIN
      EXECUTE 'SELECT create_distributed_function($1)' USING f;
    EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR object_not_in_prerequisite_state THEN
      NULL;
    END;
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.distribute_functions() IS 'Internal: creates on the Citus workers the pg-ai-cost functions the cost trigger needs there (ai_cost.distribute()).';
