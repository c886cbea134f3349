-- Up Migration
--
-- An owner that is no superuser can run ai_cost.distribute() again after a
-- worker joined the cluster: its check of who may copy the price tables to
-- the new node looked the Citus function up by a signature that names a
-- type in schema citus, which such an owner may not read. The check comes
-- first now, before the run writes anything on a worker. The changes
-- captured on the shards of a distributed ledger get a replica identity, so
-- that citus_rebalance_start() can move their shards by logical
-- replication, its default. And an install by a login that may not use
-- pg_cron's schema says which GRANT lets it schedule the refresh. (sql/
-- holds the definitions; this step brings the schema there.)

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_changes_on_shards() RETURNS void
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

CREATE OR REPLACE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
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

CREATE OR REPLACE FUNCTION ai_cost.schedule_refresh() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    RAISE NOTICE 'pg_cron is not installed in this database: nothing schedules ai_cost.refresh() (see `ai-cost doctor` and `ai-cost schedule`)';
    RETURN false;
  END IF;
  IF NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
    RAISE NOTICE 'pg_cron is installed but % may not use schema cron: nothing schedules ai_cost.refresh(); an administrator can run GRANT USAGE ON SCHEMA cron TO %, then run `ai-cost schedule`', current_user, current_user;
    RETURN false;
  END IF;
  PERFORM cron.schedule('ai_cost_refresh', '* * * * *', 'SELECT ai_cost.refresh(views => false)');
  PERFORM cron.schedule('ai_cost_refresh_views', '*/5 * * * *', 'SELECT ai_cost.refresh()');
  PERFORM cron.schedule('ai_cost_trim_job_history', '17 3 * * *',
    $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' AND jobid IN (SELECT jobid FROM cron.job WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history') AND database = current_database())$cmd$);
  RETURN true;
END
$$;
COMMENT ON FUNCTION ai_cost.schedule_refresh() IS 'Schedules (or schedules again) the pg_cron jobs that run ai_cost.refresh() when pg_cron is installed in this database; returns whether it could. Run by the install; run it again after installing pg_cron.';

-- Sequentially: after a change to a distributed table over parallel
-- connections, Citus runs no function command in the same transaction, and
-- migrate runs more of them after this step.
DO $$
BEGIN
  IF pg_catalog.to_regclass('ai_cost_internal.shard_call_changes') IS NOT NULL THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    ALTER TABLE ai_cost_internal.shard_call_changes REPLICA IDENTITY FULL;
  END IF;
END
$$;

-- Down Migration

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

CREATE OR REPLACE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
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

  -- A worker added since the last run gets its copies of the price tables:
  -- small tables, copied while writes to them wait (the default would need
  -- logical replication, wal_level = logical, on every node). Only when a
  -- node lacks one: Citus lets only a superuser copy them, and the owner
  -- runs this again after an upgrade too.
  IF already AND EXISTS (
       SELECT FROM pg_dist_partition p
         JOIN pg_dist_shard s ON s.logicalrelid = p.logicalrelid
        CROSS JOIN pg_dist_node n
        WHERE p.partmethod = 'n' AND p.repmodel = 't' AND n.isactive AND n.noderole = 'primary'
          AND NOT EXISTS (SELECT FROM pg_dist_placement pl WHERE pl.shardid = s.shardid AND pl.groupid = n.groupid)) THEN
    IF NOT has_function_privilege('pg_catalog.replicate_reference_tables(citus.shard_transfer_mode)', 'EXECUTE') THEN
      RAISE EXCEPTION 'a node added to the cluster has no copy of the reference tables yet, and Citus lets only a superuser copy them: run SELECT replicate_reference_tables(''block_writes'') as a superuser, then this again';
    END IF;
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

CREATE OR REPLACE FUNCTION ai_cost.schedule_refresh() RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
    RAISE NOTICE 'pg_cron is not installed in this database: nothing schedules ai_cost.refresh() (see `ai-cost doctor` and `ai-cost schedule`)';
    RETURN false;
  END IF;
  IF NOT pg_catalog.has_schema_privilege('cron', 'USAGE') THEN
    RAISE NOTICE 'pg_cron is installed but % may not use schema cron: nothing schedules ai_cost.refresh()', current_user;
    RETURN false;
  END IF;
  PERFORM cron.schedule('ai_cost_refresh', '* * * * *', 'SELECT ai_cost.refresh(views => false)');
  PERFORM cron.schedule('ai_cost_refresh_views', '*/5 * * * *', 'SELECT ai_cost.refresh()');
  PERFORM cron.schedule('ai_cost_trim_job_history', '17 3 * * *',
    $cmd$DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days' AND jobid IN (SELECT jobid FROM cron.job WHERE jobname IN ('ai_cost_refresh', 'ai_cost_refresh_views', 'ai_cost_trim_job_history') AND database = current_database())$cmd$);
  RETURN true;
END
$$;
COMMENT ON FUNCTION ai_cost.schedule_refresh() IS 'Schedules (or schedules again) the pg_cron jobs that run ai_cost.refresh() when pg_cron is installed in this database; returns whether it could. Run by the install; run it again after installing pg_cron.';

-- Sequentially: after a change to a distributed table over parallel
-- connections, Citus runs no function command in the same transaction, and
-- migrate runs more of them after this step.
DO $$
BEGIN
  IF pg_catalog.to_regclass('ai_cost_internal.shard_call_changes') IS NOT NULL THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    ALTER TABLE ai_cost_internal.shard_call_changes REPLICA IDENTITY DEFAULT;
  END IF;
END
$$;
