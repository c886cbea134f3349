-- Up Migration
--
-- Distribution over Citus (sql/ holds each definition; this step brings the
-- schema there). ai_cost.distribute() spreads an installed ledger over the
-- Citus cluster of its coordinator (145_distribution.sql). For it, the
-- functions the cost trigger and the price triggers run on every node
-- become safe there: the price trigger updates the copy it fires on, the
-- pattern lookup is PL/pgSQL, and the trigger hands the slow path an
-- ai_cost.calls row whatever table it fires on. The rollups read a tenant_id
-- of '' as none, as a distributed ledger stores calls without a tenant, and
-- insert_calls gives such calls the tenant the column default gives.

SET LOCAL check_function_bodies = off;

-- Distributing an installed ledger over a Citus cluster: ai_cost.distribute(),
-- run on the coordinator (docs/scaling.md says what it does and what changes).
--
-- The layout it makes:
--   ai_cost.calls                  distributed by tenant_id: the calls of a
--                                  tenant live together, on one shard.
--   the price tables (providers,   reference tables: a copy on every node, so
--   service_tiers, prices,         the cost trigger, which runs on the node
--   model_aliases, model_patterns, that holds the call's shard, reads them
--   tenant_discounts) and          there.
--   tenant_access
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
--
-- Citus runs the triggers of a distributed or reference table on each shard
-- copy (with citus.enable_unsafe_triggers), and a trigger running on a shard
-- copy can read reference tables but cannot write a distributed or reference
-- table (nested distributed execution). Hence the price triggers write only
-- node-local state (ai_cost_internal.close_previous_price updates its own
-- copy; the lookup and the book are plain tables on each node), and the
-- capture of updates and deletes, which writes the coordinator's change
-- table, has no equivalent on the shards yet: on a distributed ledger, calls
-- are refused UPDATE and DELETE (see ai_cost_internal.refuse_call_changes).

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

-- Updates and deletes of calls change the rollups through the capture
-- triggers (090_rollups.sql), which write the coordinator's change table: a
-- trigger on a shard cannot. Refusing them keeps the rollups exact.
CREATE FUNCTION ai_cost_internal.refuse_call_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'calls of a distributed ledger cannot be updated or deleted yet (call %)', OLD.id
    USING ERRCODE = 'feature_not_supported',
          HINT = 'The rollups capture updates and deletes on one server only; see docs/scaling.md.';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.refuse_call_changes() IS 'Trigger on the calls of a distributed ledger: refuses UPDATE and DELETE, which the rollups cannot capture there.';

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
  -- Constraints and indexes are created with the table or not at all: a
  -- second run finds the table and skips them.
  SELECT ddl || format(' DO $ddl$ BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = %L::regclass) THEN %s END IF; END $ddl$;',
                       source, string_agg(stmt, ' '))
    INTO ddl
    FROM (SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s;', source, c.conname, pg_get_constraintdef(c.oid)) AS stmt
            FROM pg_constraint c WHERE c.conrelid = source
          UNION ALL
          SELECT pg_get_indexdef(i.indexrelid) || ';'
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

CREATE FUNCTION ai_cost.distribute() RETURNS TABLE (step text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  price_tables CONSTANT regclass[] := ARRAY['ai_cost.providers', 'ai_cost.service_tiers', 'ai_cost.prices', 'ai_cost.model_aliases',
                                            'ai_cost.model_patterns', 'ai_cost.tenant_discounts', 'ai_cost.tenant_access'];
  node_local_tables CONSTANT regclass[] := ARRAY['ai_cost_internal.price_lookup', 'ai_cost_internal.price_book',
                                                 'ai_cost_internal.price_book_generation'];
  t regclass;
  trigger_name name;
  source_triggers text[];
  definition text;
  worker record;
  workers integer;
  already boolean;
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
  IF (SELECT relkind FROM pg_class WHERE oid = 'ai_cost.calls'::regclass) = 'p' THEN
    RAISE EXCEPTION 'ai_cost.calls is partitioned, and a partitioned ledger cannot be distributed yet';
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

  -- Every node compiles its own price book: its DDL stays on the node.
  ALTER FUNCTION ai_cost_internal.compile_price_book() SET citus.enable_ddl_propagation = off;
  -- Otherwise Citus locks every shard an INSERT ... SELECT ... ON CONFLICT
  -- writes against every other one (to keep several copies of a shard
  -- alike): two batches would wait for each other, and all of them for one
  -- long transaction. The calls' shards have one copy, whose unique index
  -- settles a conflict by itself.
  ALTER FUNCTION ai_cost.insert_calls(jsonb) SET citus.all_modifications_commutative = on;
  -- The calls' policy reads the tenant_access reference table on the node of
  -- the shard it filters: a read Citus calls nested, and which is local.
  ALTER FUNCTION ai_cost_internal.may_read_tenant(text) SET citus.allow_nested_distributed_execution = on;

  IF NOT EXISTS (SELECT FROM pg_dist_partition WHERE logicalrelid = 'ai_cost.prices'::regclass) THEN
    -- Copying a table's rows to its shard copies would fire its triggers
    -- there: they go first and come back on the reference tables, where they
    -- fire on each node's copy. They come back without TRUNCATE among their
    -- events: Citus does not run TRUNCATE triggers on shards.
    source_triggers := ARRAY(
      SELECT regexp_replace(pg_get_triggerdef(g.oid), ' OR TRUNCATE', '')
        FROM pg_trigger g WHERE g.tgrelid = ANY (price_tables) AND NOT g.tgisinternal ORDER BY g.tgrelid, g.tgname);
    FOR trigger_name, t IN
      SELECT g.tgname, g.tgrelid::regclass FROM pg_trigger g WHERE g.tgrelid = ANY (price_tables) AND NOT g.tgisinternal
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, t);
    END LOOP;
    -- A role's oid differs from node to node: the copy of tenant_access on
    -- every node names its roles.
    DROP POLICY own_tenants ON ai_cost.tenant_access;
    ALTER TABLE ai_cost.tenant_access ALTER reader TYPE name USING pg_get_userbyid(reader::oid);
    CREATE POLICY own_tenants ON ai_cost.tenant_access FOR SELECT USING (pg_has_role(reader, 'USAGE'));
    FOREACH t IN ARRAY price_tables LOOP
      EXECUTE 'SELECT create_reference_table($1)' USING t;
    END LOOP;
    FOREACH definition IN ARRAY source_triggers LOOP
      EXECUTE definition;
    END LOOP;
    step := 'price tables'; detail := (SELECT string_agg(replace(p::text, 'ai_cost.', ''), ', ') FROM unnest(price_tables) AS p)
                                      || ' are reference tables'; RETURN NEXT;
  END IF;

  IF already THEN
    -- A worker added since the last run gets its copies of the price tables:
    -- small tables, copied while writes to them wait (the default would need
    -- logical replication, wal_level = logical, on every node).
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
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__capture_updates;
    UPDATE ai_cost.calls SET tenant_id = '' WHERE tenant_id IS NULL;
    GET DIAGNOSTICS moved = ROW_COUNT;
    ALTER TABLE ai_cost.calls ALTER tenant_id SET DEFAULT '', ALTER tenant_id SET NOT NULL;
    EXECUTE format('CREATE OR REPLACE FUNCTION %s() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
                   'ai_cost_internal.tenant_of_calls_without_one', 'SELECT ''''::pg_catalog.text');
    step := 'calls without a tenant'; detail := format('%s call(s) without a tenant now have tenant_id '''' (a distribution column cannot be NULL)', moved); RETURN NEXT;

    -- Unique keys must hold the distribution column: request ids are unique
    -- per tenant, and ON CONFLICT DO NOTHING (no target) works as before.
    ALTER TABLE ai_cost.calls DROP CONSTRAINT calls_pkey, DROP CONSTRAINT calls_request_id_key;
    ALTER TABLE ai_cost.calls ADD CONSTRAINT calls_pkey PRIMARY KEY (tenant_id, id),
                              ADD CONSTRAINT calls_request_id_key UNIQUE (tenant_id, request_id);
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
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    CREATE TRIGGER tg_calls__refuse_changes BEFORE UPDATE OR DELETE ON ai_cost.calls
      FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.refuse_call_changes();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    ALTER TABLE ai_cost.calls ENABLE TRIGGER tg_calls__price_call;
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

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  own_table CONSTANT text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  EXECUTE format($sql$
    UPDATE %s
       SET valid_to = $1.valid_from
     WHERE provider = $1.provider AND model = $1.model
       AND service_tier = $1.service_tier AND above_input_tokens = $1.above_input_tokens
       AND tenant_id IS NOT DISTINCT FROM $1.tenant_id AND daily_from IS NOT DISTINCT FROM $1.daily_from
       AND valid_from < $1.valid_from
       AND (valid_to IS NULL OR valid_to > $1.valid_from)$sql$, own_table) USING NEW;

  IF NEW.valid_to IS NULL THEN
    EXECUTE format($sql$
      SELECT min(valid_from)
        FROM %s
       WHERE provider = $1.provider AND model = $1.model
         AND service_tier = $1.service_tier AND above_input_tokens = $1.above_input_tokens
         AND tenant_id IS NOT DISTINCT FROM $1.tenant_id AND daily_from IS NOT DISTINCT FROM $1.daily_from
         AND valid_from > $1.valid_from$sql$, own_table) INTO NEW.valid_to USING NEW;
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_service_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  own_table CONSTANT text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  EXECUTE format($sql$
    UPDATE %s
       SET valid_to = $1.valid_from
     WHERE name = $1.name AND provider IS NOT DISTINCT FROM $1.provider AND model IS NOT DISTINCT FROM $1.model
       AND valid_from < $1.valid_from
       AND (valid_to IS NULL OR valid_to > $1.valid_from)$sql$, own_table) USING NEW;
  IF NEW.valid_to IS NULL THEN
    EXECUTE format($sql$
      SELECT min(valid_from)
        FROM %s
       WHERE name = $1.name AND provider IS NOT DISTINCT FROM $1.provider AND model IS NOT DISTINCT FROM $1.model
         AND valid_from > $1.valid_from$sql$, own_table) INTO NEW.valid_to USING NEW;
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.pattern_model(provider text, model text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN (
    SELECT r.candidate
      FROM ai_cost.model_patterns p
     CROSS JOIN LATERAL (SELECT regexp_replace($2, p.pattern, p.replacement) AS candidate) r
     WHERE p.provider = $1 AND $2 ~ p.pattern
       AND EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = $1 AND l.model = r.candidate)
     ORDER BY p.priority, p.id
     LIMIT 1);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost.insert_calls(calls jsonb) RETURNS bigint
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  inserted bigint;
BEGIN
  IF jsonb_typeof(calls) <> 'array' THEN
    RAISE EXCEPTION 'ai_cost.insert_calls() takes a JSON array of call objects, not a JSON %', jsonb_typeof(calls)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- On for this INSERT only. Not a SET clause of the function: PostgreSQL
  -- lets only a superuser store a custom setting there, and installs are
  -- often not superusers. If the INSERT fails, the transaction (or the
  -- caller's savepoint) is rolled back, and the setting with it.
  PERFORM set_config('ai_cost.inserting_priced_calls', 'on', true);
  INSERT INTO ai_cost.calls (
    created_at, provider, model, operation, status, service_tier,
    tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
    image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
    discount_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units,
    c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
    -- Only read with a cost beside them: the trigger sets its own otherwise.
    b.price_id, b.discount_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           coalesce(j.tenant_id, ai_cost_internal.tenant_of_calls_without_one()) AS tenant_id,
           j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
           j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit, j.extra_units,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
        units numeric, unit text, extra_units jsonb, provided_cost_micros bigint,
        streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text)
  ) c
  -- The book is hashed once per batch; each call probes it once.
  LEFT JOIN ai_cost_internal.price_book_entries() AS b
    ON b.provider = c.provider AND b.service_tier = c.service_tier AND b.model = c.model
  -- The cost trigger's test and sum (price_call below), once per call for
  -- both cost columns. The test's shifts are ORed into one comparison: each
  -- t >> b is 0 exactly when the trigger's t & -(2^b) is (a negative t
  -- stays negative). The parentheses are needed: >> and | have the same
  -- precedence. Where the book does not apply the cost stays NULL, and the
  -- trigger prices the row.
  CROSS JOIN LATERAL (
    SELECT CASE WHEN c.units IS NULL AND c.extra_units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
            AND NOT c.cached AND c.provided_cost_micros IS NULL
            -- The trigger's tolerance for created_at (price_call): a call dated
            -- later is left to the trigger, which refuses it.
            AND c.created_at <= now() + interval '1 day'
            AND NOT ai_cost_internal.price_book_has_tenant(c.tenant_id)
            AND b.valid_from <= c.created_at AND c.created_at < b.valid_to
            AND ((coalesce(c.input_tokens, 0::bigint) >> b.input_bits) | (coalesce(c.output_tokens, 0::bigint) >> b.output_bits)
                 | (coalesce(c.cache_read_tokens, 0::bigint) >> b.cache_read_bits)
                 | (coalesce(c.cache_write_tokens, 0::bigint) >> b.cache_write_bits)
                 | (coalesce(c.cache_write_1h_tokens, 0::bigint) >> b.cache_write_1h_bits)
                 | (coalesce(c.audio_input_tokens, 0::bigint) >> b.audio_input_bits)
                 | (coalesce(c.audio_output_tokens, 0::bigint) >> b.audio_output_bits)
                 | (coalesce(c.reasoning_tokens, 0::bigint) >> b.reasoning_bits)
                 | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)
                 | (coalesce(c.image_input_tokens, 0::bigint) >> b.image_input_bits)
                 | (coalesce(c.image_output_tokens, 0::bigint) >> b.image_output_bits)
                 | (coalesce(c.video_input_tokens, 0::bigint) >> b.video_input_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
                      c.image_input_tokens, c.image_output_tokens, c.video_input_tokens) IS NULL
             AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        -- Parts beyond their whole (reasoning, audio and image output
        -- beyond the output; image and video beyond the rest of the input):
        -- the trigger prices them, with the text at 0 as priced() does.
        WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
             - coalesce(c.image_output_tokens, 0::bigint) >= 0::bigint
             AND (coalesce(c.image_input_tokens, c.video_input_tokens) IS NULL
                  OR coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                     - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                     - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint) >= 0::bigint)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                       - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.image_input_tokens, 0::bigint) * b.image_input_rate
              + coalesce(c.video_input_tokens, 0::bigint) * b.video_input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
                 - coalesce(c.image_output_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
              + coalesce(c.image_output_tokens, 0::bigint) * b.image_output_rate
              + (coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.cache_read_rate
              + coalesce(c.cache_read_audio_tokens, 0::bigint) * b.cache_read_audio_rate
              + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
              + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
              + (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.audio_input_rate
              + coalesce(c.audio_output_tokens, 0::bigint) * b.audio_output_rate
              + 999999::bigint) / 1000000::bigint
        END
      END AS cost_micros) AS book
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR (ai_cost_internal.price_book_rates())[slot][9] OPERATOR(pg_catalog.=) (ai_cost_internal.price_book_rates())[slot][3]) THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- Uncached input needs no clamp at 0 here: with no cache writes or audio
      -- it is negative only in a row the CHECK constraints refuse next, and
      -- the masks keep every count below 2^30, so nothing overflows first.
      -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
      NEW.cost_micros := (((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint))
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  END IF;

  -- A call dated more than a day ahead of the database clock is refused: a
  -- day absorbs clocks out of step; a later date is a mistake, or a choice of
  -- a future price, and would make partitions no one needs. The book paths
  -- above take only calls within the day; insert_calls has the same bound.
  -- (Infinity is left to the CHECK constraint that names it.)
  IF NEW.created_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND pg_catalog.isfinite(NEW.created_at) THEN
    RAISE EXCEPTION 'created_at % is more than 1 day ahead of the database clock (%)', NEW.created_at, pg_catalog.now()
      USING ERRCODE = 'check_violation',
            HINT = 'Record the time the call was made: pg-ai-cost accepts calls dated at most 1 day ahead, for clocks out of step.';
  END IF;

  -- Not covered by the book: the lookup, as priced() does it.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    -- On a Citus shard NEW is a row of the shard's own table: the row
    -- constructor makes it an ai_cost.calls row on every node.
    RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) NEW.provider AND l.model OPERATOR(pg_catalog.=) NEW.model AND l.service_tier OPERATOR(pg_catalog.=) NEW.service_tier
     AND (l.tenant_id OPERATOR(pg_catalog.=) ''::pg_catalog.text OR l.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
     AND l.valid_from OPERATOR(pg_catalog.<=) NEW.created_at AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) NEW.created_at)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0::bigint OR l.above_input_tokens OPERATOR(pg_catalog.<) NEW.input_tokens)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window(NEW.created_at, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_read IS NOT NULL OR (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint
                                       AND (r_cache_read_audio IS NOT NULL OR coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)))
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (coalesce(l_unit OPERATOR(pg_catalog.=) NEW.unit, l_unit IS NULL AND NEW.unit IS NULL)
          OR coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 0::numeric) THEN
    NEW.cost_micros := pg_catalog.ceil(l_factor OPERATOR(pg_catalog.*) (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_read_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_read_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read_audio, r_cache_read, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_write_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_write_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write_1h, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_input_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (NEW.audio_input_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_audio_input, 0::numeric)
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_output_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.audio_output_tokens::numeric OPERATOR(pg_catalog.*) r_audio_output ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.units OPERATOR(pg_catalog.>) 0::numeric THEN NEW.units OPERATOR(pg_catalog.*) r_unit OPERATOR(pg_catalog.*) 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.computed_cost_micros := NEW.cost_micros;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost_internal.price_call_slowly(ROW(NEW.*)::ai_cost.calls);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND u.last_id
$$;

CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_hour CONSTANT timestamptz := date_trunc('hour', since, 'UTC')
    + CASE WHEN date_trunc('hour', since, 'UTC') = since THEN interval '0' ELSE interval '1 hour' END;
  end_hour CONSTANT timestamptz := date_trunc('hour', until, 'UTC');
BEGIN
  -- Three statements of one function, which is STABLE: they read one
  -- snapshot, so a refresh is seen entirely or not at all, as in
  -- ai_cost.calls_hourly_live.
  RETURN QUERY
  SELECT h.* FROM ai_cost.calls_hourly h WHERE h.hour >= first_hour AND h.hour < end_hour;
  RETURN QUERY
  SELECT p.* FROM ai_cost_internal.calls_hourly_pending_between(first_hour, end_hour) p;
  RETURN QUERY
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, '') AS tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, first_hour)
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, nullif(tenant_id, ''), user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, end_hour, first_hour)
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
  calls_reader name;
BEGIN
  REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM PUBLIC;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    -- USAGE on ai_cost_internal lets the reader's functions (calls_between)
    -- name the internal ones granted below; it reads no internal table.
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_reader;
    -- Every table and view but the calls, their partitions and the months
    -- retention detached (reading one directly would bypass the column
    -- grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls' AND c.relname !~ '^calls_[0-9]{4}_[0-9]{2}$'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros,
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units)
       ON ai_cost.calls TO ai_cost_reader;
    -- The functions of the reporting views, and the histogram and price
    -- helpers a dashboard query may call itself.
    GRANT EXECUTE ON FUNCTION
      ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
      ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
      ai_cost.histogram_merge(bigint[]), ai_cost.price_at(text, text, timestamptz),
      ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint),
      ai_cost_internal.histogram(integer, integer),
      ai_cost_internal.dimension_values(text, text, text, text, text, text, text),
      ai_cost_internal.split_days(timestamptz, timestamptz[]),
      ai_cost_internal.calls_slices(timestamptz, timestamptz[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz)
      TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never what a call was about or whose it was.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts,
                    ai_cost.service_tiers
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb)
      TO ai_cost_writer;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_writer');
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost columns; the cost trigger recomputes them
    -- from the prices, so this cannot set an arbitrary cost either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers
       TO ai_cost_admin;
    -- Operators choose whether the refresh announces unpriced models.
    GRANT SELECT, UPDATE (enabled) ON ai_cost.unpriced_model_alert_settings TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION') THEN
        GRANT ai_cost_reader TO ai_cost_admin;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_tenant_reader;
    -- A tenant reader reads the calls and their rollups only while the
    -- policies below confine it to its tenants.
    SELECT c.relrowsecurity INTO isolated FROM pg_catalog.pg_class c WHERE c.oid = 'ai_cost.calls'::regclass;
    IF isolated THEN
      GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
    ELSE
      REVOKE SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly FROM ai_cost_tenant_reader;
    END IF;
  END IF;

  -- On a ledger distributed over Citus the calls' policies call these, as
  -- whoever reads the calls (145_distribution.sql).
  FOR calls_reader IN
    SELECT r.rolname FROM pg_catalog.pg_roles r
     WHERE r.rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader')
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION ai_cost_internal.is_tenant_reader(), ai_cost_internal.may_read_tenant(text) TO %I',
                   calls_reader);
  END LOOP;
END
$$;

COMMENT ON COLUMN ai_cost.calls.tenant_id IS 'Your customer or workspace the call was made for. NULL or '''': none (the rollups and reports count '''' as none; a ledger distributed over Citus stores none as '''').';

CREATE VIEW ai_cost_internal.calls_hourly_pending AS
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
       ai_cost_internal.histogram(total_ms, sign) AS total_ms_hist,
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed) AS ttft_ms_hist
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;
COMMENT ON VIEW ai_cost_internal.calls_hourly_pending IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly; ai_cost.calls_hourly_live adds them to it.';

CREATE FUNCTION ai_cost_internal.calls_hourly_pending_between(first_hour timestamptz, end_hour timestamptz)
RETURNS SETOF ai_cost.calls_hourly
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY SELECT p.* FROM ai_cost_internal.calls_hourly_pending p WHERE p.hour >= first_hour AND p.hour < end_hour;
END
$$;

COMMENT ON FUNCTION ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz) IS 'Internal: the changes since the last refresh in the shape of ai_cost.calls_hourly, for the hours from first_hour to end_hour (ai_cost.calls_between()).';

CREATE OR REPLACE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost_internal.calls_hourly_pending;

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_price() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.prices
     SET valid_to = NEW.valid_from
   WHERE provider = NEW.provider AND model = NEW.model
     AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
     AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id AND daily_from IS NOT DISTINCT FROM NEW.daily_from
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);

  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.prices
     WHERE provider = NEW.provider AND model = NEW.model
       AND service_tier = NEW.service_tier AND above_input_tokens = NEW.above_input_tokens
       AND tenant_id IS NOT DISTINCT FROM NEW.tenant_id AND daily_from IS NOT DISTINCT FROM NEW.daily_from
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.close_previous_service_tier() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE ai_cost.service_tiers
     SET valid_to = NEW.valid_from
   WHERE name = NEW.name AND provider IS NOT DISTINCT FROM NEW.provider AND model IS NOT DISTINCT FROM NEW.model
     AND valid_from < NEW.valid_from
     AND (valid_to IS NULL OR valid_to > NEW.valid_from);
  IF NEW.valid_to IS NULL THEN
    SELECT min(valid_from) INTO NEW.valid_to
      FROM ai_cost.service_tiers
     WHERE name = NEW.name AND provider IS NOT DISTINCT FROM NEW.provider AND model IS NOT DISTINCT FROM NEW.model
       AND valid_from > NEW.valid_from;
  END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.pattern_model(provider text, model text) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT r.candidate
    FROM ai_cost.model_patterns p
   CROSS JOIN LATERAL (SELECT regexp_replace($2, p.pattern, p.replacement) AS candidate) r
   WHERE p.provider = $1 AND $2 ~ p.pattern
     AND EXISTS (SELECT FROM ai_cost_internal.price_lookup l WHERE l.provider = $1 AND l.model = r.candidate)
   ORDER BY p.priority, p.id
   LIMIT 1
$$;

CREATE OR REPLACE FUNCTION ai_cost.insert_calls(calls jsonb) RETURNS bigint
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  inserted bigint;
BEGIN
  IF jsonb_typeof(calls) <> 'array' THEN
    RAISE EXCEPTION 'ai_cost.insert_calls() takes a JSON array of call objects, not a JSON %', jsonb_typeof(calls)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- On for this INSERT only. Not a SET clause of the function: PostgreSQL
  -- lets only a superuser store a custom setting there, and installs are
  -- often not superusers. If the INSERT fails, the transaction (or the
  -- caller's savepoint) is rolled back, and the setting with it.
  PERFORM set_config('ai_cost.inserting_priced_calls', 'on', true);
  INSERT INTO ai_cost.calls (
    created_at, provider, model, operation, status, service_tier,
    tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, cache_read_audio_tokens,
    image_input_tokens, image_output_tokens, video_input_tokens, units, unit, extra_units,
    provided_cost_micros, streamed, cached, ttft_ms, total_ms, error_message, cost_micros, computed_cost_micros, price_id,
    discount_id)
  SELECT
    c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier,
    c.tenant_id, c.user_id, c.feature, c.conversation_id, c.prompt_id, c.prompt_version, c.metadata, c.request_id,
    c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
    c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens, c.cache_read_audio_tokens,
    c.image_input_tokens, c.image_output_tokens, c.video_input_tokens, c.units, c.unit, c.extra_units,
    c.provided_cost_micros, c.streamed, c.cached, c.ttft_ms, c.total_ms, c.error_message, book.cost_micros, book.cost_micros,
    -- Only read with a cost beside them: the trigger sets its own otherwise.
    b.price_id, b.discount_id
  FROM (
    -- A key left out, or given as null, takes the column's default.
    SELECT coalesce(j.created_at, now()) AS created_at, j.provider, j.model,
           coalesce(j.operation, 'chat') AS operation, coalesce(j.status, 'success') AS status,
           coalesce(j.service_tier, 'standard') AS service_tier,
           j.tenant_id, j.user_id, j.feature, j.conversation_id, j.prompt_id, j.prompt_version,
           coalesce(j.metadata, '{}') AS metadata, j.request_id,
           j.input_tokens, j.output_tokens, j.cache_read_tokens, j.cache_write_tokens, j.reasoning_tokens,
           j.cache_write_1h_tokens, j.audio_input_tokens, j.audio_output_tokens, j.cache_read_audio_tokens,
           j.image_input_tokens, j.image_output_tokens, j.video_input_tokens, j.units, j.unit, j.extra_units,
           j.provided_cost_micros, coalesce(j.streamed, false) AS streamed, coalesce(j.cached, false) AS cached,
           j.ttft_ms, j.total_ms, j.error_message
      FROM jsonb_to_recordset(calls) AS j(
        created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
        tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
        metadata jsonb, request_id text,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
        reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
        cache_read_audio_tokens bigint, image_input_tokens bigint, image_output_tokens bigint, video_input_tokens bigint,
        units numeric, unit text, extra_units jsonb, provided_cost_micros bigint,
        streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text)
  ) c
  -- The book is hashed once per batch; each call probes it once.
  LEFT JOIN ai_cost_internal.price_book_entries() AS b
    ON b.provider = c.provider AND b.service_tier = c.service_tier AND b.model = c.model
  -- The cost trigger's test and sum (price_call below), once per call for
  -- both cost columns. The test's shifts are ORed into one comparison: each
  -- t >> b is 0 exactly when the trigger's t & -(2^b) is (a negative t
  -- stays negative). The parentheses are needed: >> and | have the same
  -- precedence. Where the book does not apply the cost stays NULL, and the
  -- trigger prices the row.
  CROSS JOIN LATERAL (
    SELECT CASE WHEN c.units IS NULL AND c.extra_units IS NULL AND coalesce(c.input_tokens, c.output_tokens) IS NOT NULL
            AND NOT c.cached AND c.provided_cost_micros IS NULL
            -- The trigger's tolerance for created_at (price_call): a call dated
            -- later is left to the trigger, which refuses it.
            AND c.created_at <= now() + interval '1 day'
            AND NOT ai_cost_internal.price_book_has_tenant(c.tenant_id)
            AND b.valid_from <= c.created_at AND c.created_at < b.valid_to
            AND ((coalesce(c.input_tokens, 0::bigint) >> b.input_bits) | (coalesce(c.output_tokens, 0::bigint) >> b.output_bits)
                 | (coalesce(c.cache_read_tokens, 0::bigint) >> b.cache_read_bits)
                 | (coalesce(c.cache_write_tokens, 0::bigint) >> b.cache_write_bits)
                 | (coalesce(c.cache_write_1h_tokens, 0::bigint) >> b.cache_write_1h_bits)
                 | (coalesce(c.audio_input_tokens, 0::bigint) >> b.audio_input_bits)
                 | (coalesce(c.audio_output_tokens, 0::bigint) >> b.audio_output_bits)
                 | (coalesce(c.reasoning_tokens, 0::bigint) >> b.reasoning_bits)
                 | (coalesce(c.cache_read_audio_tokens, 0::bigint) >> b.cache_read_audio_bits)
                 | (coalesce(c.image_input_tokens, 0::bigint) >> b.image_input_bits)
                 | (coalesce(c.image_output_tokens, 0::bigint) >> b.image_output_bits)
                 | (coalesce(c.video_input_tokens, 0::bigint) >> b.video_input_bits)) = 0::bigint
      THEN CASE
        WHEN coalesce(c.cache_write_tokens, c.cache_write_1h_tokens, c.audio_input_tokens, c.audio_output_tokens,
                      c.image_input_tokens, c.image_output_tokens, c.video_input_tokens) IS NULL
             AND (coalesce(c.reasoning_tokens, 0::bigint) = 0::bigint OR b.reasoning_rate = b.output_rate)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.output_tokens, 0::bigint) * b.output_rate
              + coalesce(c.cache_read_tokens, 0::bigint) * b.cache_read_rate
              + 999999::bigint) / 1000000::bigint
        -- Parts beyond their whole (reasoning, audio and image output
        -- beyond the output; image and video beyond the rest of the input):
        -- the trigger prices them, with the text at 0 as priced() does.
        WHEN coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
             - coalesce(c.image_output_tokens, 0::bigint) >= 0::bigint
             AND (coalesce(c.image_input_tokens, c.video_input_tokens) IS NULL
                  OR coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                     - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                     - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint) >= 0::bigint)
        THEN (greatest(coalesce(c.input_tokens, 0::bigint) - coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_write_tokens, 0::bigint)
                       - (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint))
                       - coalesce(c.image_input_tokens, 0::bigint) - coalesce(c.video_input_tokens, 0::bigint), 0::bigint) * b.input_rate
              + coalesce(c.image_input_tokens, 0::bigint) * b.image_input_rate
              + coalesce(c.video_input_tokens, 0::bigint) * b.video_input_rate
              + (coalesce(c.output_tokens, 0::bigint) - coalesce(c.audio_output_tokens, 0::bigint) - coalesce(c.reasoning_tokens, 0::bigint)
                 - coalesce(c.image_output_tokens, 0::bigint)) * b.output_rate
              + coalesce(c.reasoning_tokens, 0::bigint) * b.reasoning_rate
              + coalesce(c.image_output_tokens, 0::bigint) * b.image_output_rate
              + (coalesce(c.cache_read_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.cache_read_rate
              + coalesce(c.cache_read_audio_tokens, 0::bigint) * b.cache_read_audio_rate
              + (coalesce(c.cache_write_tokens, 0::bigint) - coalesce(c.cache_write_1h_tokens, 0::bigint)) * b.cache_write_rate
              + coalesce(c.cache_write_1h_tokens, 0::bigint) * b.cache_write_1h_rate
              + (coalesce(c.audio_input_tokens, 0::bigint) - coalesce(c.cache_read_audio_tokens, 0::bigint)) * b.audio_input_rate
              + coalesce(c.audio_output_tokens, 0::bigint) * b.audio_output_rate
              + 999999::bigint) / 1000000::bigint
        END
      END AS cost_micros) AS book
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS inserted = ROW_COUNT;
  PERFORM set_config('ai_cost.inserting_priced_calls', 'off', true);
  RETURN inserted;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.price_call() RETURNS trigger
LANGUAGE plpgsql STABLE AS $$
DECLARE
  slot integer;
  l_price_id bigint; l_discount_id bigint; l_factor numeric; l_unit pg_catalog.text;
  r_input numeric; r_output numeric; r_cache_read numeric; r_cache_write numeric; r_cache_write_1h numeric;
  r_audio_input numeric; r_audio_output numeric; r_reasoning numeric; r_cache_read_audio numeric;
  r_image_input numeric; r_image_output numeric; r_video_input numeric; r_unit numeric;
BEGIN
  -- A plain call without cache writes, audio, image or video (most calls):
  -- three dimensions to check and sum. PL/pgSQL sets up each expression's state
  -- once per transaction, on its first use, so the rare case has statements
  -- of its own: a single-row INSERT does not pay for setting them up.
  -- Cached audio is audio input too, so a call with any is not plain.
  IF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND coalesce(NEW.cache_write_tokens, NEW.cache_write_1h_tokens, NEW.audio_input_tokens, NEW.audio_output_tokens,
                  NEW.image_input_tokens, NEW.image_output_tokens, NEW.video_input_tokens) IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Reasoning is output here, at the output rate; a call with reasoning at
    -- a price that bills it apart (Perplexity's Sonar Deep Research) takes
    -- the lookup.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.=) 0::bigint
            OR (ai_cost_internal.price_book_rates())[slot][9] OPERATOR(pg_catalog.=) (ai_cost_internal.price_book_rates())[slot][3]) THEN
      -- The same sum as priced()'s numeric one, in picodollars, rounded up once.
      -- Uncached input needs no clamp at 0 here: with no cache writes or audio
      -- it is negative only in a row the CHECK constraints refuse next, and
      -- the masks keep every count below 2^30, so nothing overflows first.
      -- OPERATOR(...) gives every operator the same precedence: each product is in parentheses.
      NEW.cost_micros := (((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint))
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      -- The book writes no discount as 0: NULL here is no discount, and 0 a
      -- read outside the book.
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      -- Each assignment is planned apart, and reads NULL (0 for the
      -- discount) where planned with another compile's book.
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      -- A read across two compiles: nothing of it is kept.
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  -- The same with cache writes, audio, image or video: all twelve dimensions.
  ELSIF NEW.units IS NULL AND NEW.extra_units IS NULL AND coalesce(NEW.input_tokens, NEW.output_tokens) IS NOT NULL
     AND NOT NEW.cached AND NEW.provided_cost_micros IS NULL
     AND NEW.created_at OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND NEW.unpriced_reason IS NULL
     AND NOT ai_cost_internal.price_book_has_tenant(NEW.tenant_id) THEN
    slot := ai_cost_internal.price_book_slot(NEW.provider OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.service_tier OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) NEW.model);
    -- Once the masks hold every count below 2^30, reasoning, audio and image
    -- output beyond the output, and image and video input beyond the rest of
    -- the input, are left to the lookup, which bills the text as 0 then: the
    -- sum below would bill the output negative, and image and video at the
    -- input rate where priced() leaves them in a text input of 0.
    IF slot IS NOT NULL
       AND (ai_cost_internal.price_book_windows())[slot][1] OPERATOR(pg_catalog.<=) NEW.created_at
       AND NEW.created_at OPERATOR(pg_catalog.<) (ai_cost_internal.price_book_windows())[slot][2]
       AND ((coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][14])
            OPERATOR(pg_catalog.|) (coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][15])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][16])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][17])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][18])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][19])
            OPERATOR(pg_catalog.|) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][20])
            OPERATOR(pg_catalog.|) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][21])
            OPERATOR(pg_catalog.|) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][22])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][23])
            OPERATOR(pg_catalog.|) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][24])
            OPERATOR(pg_catalog.|) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.&) (ai_cost_internal.price_book_rates())[slot][25]))
           OPERATOR(pg_catalog.=) 0::bigint
       AND coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
           OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint
       AND (coalesce(NEW.image_input_tokens, NEW.video_input_tokens) IS NULL
            OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
               OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
               OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.>=) 0::bigint) THEN
      -- Any other negative part can only come from a row the CHECK
      -- constraints refuse next (audio_output_tokens above output_tokens, say).
      -- Reasoning and image output are at the output rate, cached audio at
      -- the cache read rate, image and video input at the input rate where
      -- the price has no rate of their own (050_price_book.sql).
      NEW.cost_micros := ((greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_input_tokens, 0::bigint)
                                   OPERATOR(pg_catalog.-) coalesce(NEW.video_input_tokens, 0::bigint), 0::bigint)
                            OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][2])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][11])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.video_input_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][13])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.reasoning_tokens, 0::bigint)
                                                   OPERATOR(pg_catalog.-) coalesce(NEW.image_output_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][3])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][9])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][12])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][4])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][10])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][5])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][6])
                          OPERATOR(pg_catalog.+) ((coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint)) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][7])
                          OPERATOR(pg_catalog.+) (coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.*) (ai_cost_internal.price_book_rates())[slot][8])
                          OPERATOR(pg_catalog.+) 999999::bigint) OPERATOR(pg_catalog./) 1000000::bigint;
      NEW.price_id := (ai_cost_internal.price_book_rates())[slot][1];
      NEW.discount_id := CASE WHEN (ai_cost_internal.price_book_rates())[slot][26] OPERATOR(pg_catalog.=) 0::bigint THEN NULL
                              ELSE coalesce((ai_cost_internal.price_book_rates())[slot][26], 0::bigint) END;
      IF NEW.cost_micros IS NOT NULL AND NEW.price_id IS NOT NULL
         AND coalesce(NEW.discount_id OPERATOR(pg_catalog.>) 0::bigint, true) THEN
        NEW.computed_cost_micros := NEW.cost_micros;
        RETURN NEW;
      END IF;
      NEW.cost_micros := NULL; NEW.price_id := NULL; NEW.discount_id := NULL;
    END IF;
  END IF;

  -- A call dated more than a day ahead of the database clock is refused: a
  -- day absorbs clocks out of step; a later date is a mistake, or a choice of
  -- a future price, and would make partitions no one needs. The book paths
  -- above take only calls within the day; insert_calls has the same bound.
  -- (Infinity is left to the CHECK constraint that names it.)
  IF NEW.created_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.+) '1 day'::interval)
     AND pg_catalog.isfinite(NEW.created_at) THEN
    RAISE EXCEPTION 'created_at % is more than 1 day ahead of the database clock (%)', NEW.created_at, pg_catalog.now()
      USING ERRCODE = 'check_violation',
            HINT = 'Record the time the call was made: pg-ai-cost accepts calls dated at most 1 day ahead, for clocks out of step.';
  END IF;

  -- Not covered by the book: the lookup, as priced() does it.
  -- Out-of-range units (NaN, Infinity) are refused by a CHECK constraint
  -- whose message names them; computing with them first would fail with an
  -- obscure one.
  IF NOT (coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 1000000000000::numeric) THEN
    RETURN NEW;
  END IF;
  -- So are extra units that are not an object of numbers.
  IF NEW.extra_units IS NOT NULL
     AND (pg_catalog.jsonb_typeof(NEW.extra_units) OPERATOR(pg_catalog.<>) 'object'::pg_catalog.text
          OR pg_catalog.jsonb_path_exists(NEW.extra_units, '$.* ? (@.type() != "number")'::pg_catalog.jsonpath)) THEN
    RETURN NEW;
  END IF;
  -- App-cache hits, provider-reported costs, calls without usage and calls
  -- billed for further units (priced by priced(), one row per unit) have
  -- rules of their own.
  IF NEW.cached OR NEW.provided_cost_micros IS NOT NULL OR NEW.extra_units IS NOT NULL
     OR (NEW.input_tokens IS NULL AND NEW.output_tokens IS NULL AND NEW.units IS NULL) THEN
    RETURN ai_cost_internal.price_call_slowly(NEW);
  END IF;
  SELECT l.price_id, l.discount_id, l.factor, l.unit, l.input_per_mtok, l.output_per_mtok,
         l.cache_read_per_mtok, l.cache_write_per_mtok, l.cache_write_1h_per_mtok,
         l.audio_input_per_mtok, l.audio_output_per_mtok, l.reasoning_per_mtok, l.cache_read_audio_per_mtok,
         l.image_input_per_mtok, l.image_output_per_mtok, l.video_input_per_mtok, l.unit_price
    INTO l_price_id, l_discount_id, l_factor, l_unit, r_input, r_output,
         r_cache_read, r_cache_write, r_cache_write_1h, r_audio_input, r_audio_output, r_reasoning, r_cache_read_audio,
         r_image_input, r_image_output, r_video_input, r_unit
    FROM ai_cost_internal.price_lookup l
   WHERE l.provider OPERATOR(pg_catalog.=) NEW.provider AND l.model OPERATOR(pg_catalog.=) NEW.model AND l.service_tier OPERATOR(pg_catalog.=) NEW.service_tier
     AND (l.tenant_id OPERATOR(pg_catalog.=) ''::pg_catalog.text OR l.tenant_id OPERATOR(pg_catalog.=) NEW.tenant_id)
     AND l.valid_from OPERATOR(pg_catalog.<=) NEW.created_at AND (l.valid_to IS NULL OR l.valid_to OPERATOR(pg_catalog.>) NEW.created_at)
     AND (l.above_input_tokens OPERATOR(pg_catalog.=) 0::bigint OR l.above_input_tokens OPERATOR(pg_catalog.<) NEW.input_tokens)
     AND (l.daily_from IS NULL OR ai_cost_internal.in_daily_window(NEW.created_at, l.daily_from, l.daily_to, l.time_zone))
   ORDER BY l.provider, l.model, l.service_tier, l.rank, l.above_input_tokens DESC, (l.daily_from IS NULL)
   LIMIT 1;
  -- Every dimension the call used must have its rate (a part of 0 or less
  -- needs none); the slow path explains a missing one. The whole check and
  -- the whole sum are one expression each: every PL/pgSQL statement costs a
  -- few hundred nanoseconds, which is most of what is left to save here.
  IF FOUND
     AND (r_input IS NOT NULL OR coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                                 OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                                 OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                                 OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_output IS NOT NULL OR coalesce(NEW.output_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                                  OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                                  OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_read IS NOT NULL OR (coalesce(NEW.cache_read_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint
                                       AND (r_cache_read_audio IS NOT NULL OR coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)))
     AND (r_cache_write IS NOT NULL OR coalesce(NEW.cache_write_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_cache_write_1h IS NOT NULL OR coalesce(NEW.cache_write_1h_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_input IS NOT NULL OR coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (r_audio_output IS NOT NULL OR coalesce(NEW.audio_output_tokens, 0::bigint) OPERATOR(pg_catalog.<=) 0::bigint)
     AND (coalesce(l_unit OPERATOR(pg_catalog.=) NEW.unit, l_unit IS NULL AND NEW.unit IS NULL)
          OR coalesce(NEW.units, 0::numeric) OPERATOR(pg_catalog.<=) 0::numeric) THEN
    NEW.cost_micros := pg_catalog.ceil(l_factor OPERATOR(pg_catalog.*) (
        CASE WHEN r_input IS NULL THEN 0::numeric
             ELSE greatest(coalesce(NEW.input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_tokens, 0::bigint)
                           OPERATOR(pg_catalog.-) (coalesce(NEW.audio_input_tokens, 0::bigint) OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))
                           OPERATOR(pg_catalog.-) CASE WHEN r_image_input IS NULL THEN 0::bigint ELSE coalesce(NEW.image_input_tokens, 0::bigint) END
                           OPERATOR(pg_catalog.-) CASE WHEN r_video_input IS NULL THEN 0::bigint ELSE coalesce(NEW.video_input_tokens, 0::bigint) END, 0::bigint)::numeric
                  OPERATOR(pg_catalog.*) r_input END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.image_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_image_input IS NOT NULL
             THEN NEW.image_input_tokens::numeric OPERATOR(pg_catalog.*) r_image_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.video_input_tokens OPERATOR(pg_catalog.>) 0::bigint AND r_video_input IS NOT NULL
             THEN NEW.video_input_tokens::numeric OPERATOR(pg_catalog.*) r_video_input ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.output_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (greatest(NEW.output_tokens OPERATOR(pg_catalog.-) coalesce(NEW.audio_output_tokens, 0::bigint)
                            OPERATOR(pg_catalog.-) CASE WHEN r_reasoning IS NULL THEN 0::bigint ELSE coalesce(NEW.reasoning_tokens, 0::bigint) END
                            OPERATOR(pg_catalog.-) CASE WHEN r_image_output IS NULL THEN 0::bigint ELSE coalesce(NEW.image_output_tokens, 0::bigint) END, 0::bigint)::numeric
                     OPERATOR(pg_catalog.*) coalesce(r_output, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.reasoning_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_reasoning, 0::numeric))
                  OPERATOR(pg_catalog.+) (coalesce(NEW.image_output_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_image_output, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_read_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_read_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_read_audio_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_read_audio, r_cache_read, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.cache_write_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN ((NEW.cache_write_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_write_1h_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write, 0::numeric))
                OPERATOR(pg_catalog.+) (coalesce(NEW.cache_write_1h_tokens, 0::bigint)::numeric OPERATOR(pg_catalog.*) coalesce(r_cache_write_1h, 0::numeric))
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_input_tokens OPERATOR(pg_catalog.>) 0::bigint
             THEN (NEW.audio_input_tokens OPERATOR(pg_catalog.-) coalesce(NEW.cache_read_audio_tokens, 0::bigint))::numeric OPERATOR(pg_catalog.*) coalesce(r_audio_input, 0::numeric)
             ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.audio_output_tokens OPERATOR(pg_catalog.>) 0::bigint THEN NEW.audio_output_tokens::numeric OPERATOR(pg_catalog.*) r_audio_output ELSE 0::numeric END
      OPERATOR(pg_catalog.+) CASE WHEN NEW.units OPERATOR(pg_catalog.>) 0::numeric THEN NEW.units OPERATOR(pg_catalog.*) r_unit OPERATOR(pg_catalog.*) 1000000::numeric ELSE 0::numeric END))::bigint;
    NEW.computed_cost_micros := NEW.cost_micros;
    NEW.price_id := l_price_id;
    NEW.discount_id := l_discount_id;
    NEW.unpriced_reason := NULL;
    RETURN NEW;
  END IF;
  RETURN ai_cost_internal.price_call_slowly(NEW);
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.capture_call_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.call_changes
  SELECT -1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
         feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
         output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
    FROM old_calls;
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO ai_cost_internal.call_changes
    SELECT 1, created_at, provider, model, operation, status, service_tier, tenant_id, user_id,
           feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, id
      FROM new_calls;
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND u.last_id
$$;

CREATE OR REPLACE FUNCTION ai_cost.calls_between(since timestamptz, until timestamptz) RETURNS SETOF ai_cost.calls_hourly
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
  WITH bounds AS (
    SELECT date_trunc('hour', since, 'UTC') + CASE WHEN date_trunc('hour', since, 'UTC') = since
                                                  THEN interval '0' ELSE interval '1 hour' END AS first_hour,
           date_trunc('hour', until, 'UTC') AS end_hour
  )
  SELECT l.*
    FROM ai_cost.calls_hourly_live l
   WHERE l.hour >= (SELECT first_hour FROM bounds) AND l.hour < (SELECT end_hour FROM bounds)
  UNION ALL
  SELECT date_trunc('hour', c.created_at, 'UTC'), c.provider, c.model, c.operation, c.status,
         c.service_tier, c.tenant_id, c.user_id, c.feature, c.cached, c.unpriced_reason,
         count(*), count(*) FILTER (WHERE c.cost_micros IS NULL),
         coalesce(sum(c.cost_micros), 0)::bigint,
         coalesce(sum(c.input_tokens), 0)::bigint, coalesce(sum(c.output_tokens), 0)::bigint,
         coalesce(sum(c.cache_read_tokens), 0)::bigint, coalesce(sum(c.cache_write_tokens), 0)::bigint,
         coalesce(sum(c.reasoning_tokens), 0)::bigint,
         count(c.total_ms), coalesce(sum(c.total_ms), 0)::bigint, ai_cost_internal.histogram(c.total_ms, 1),
         count(c.ttft_ms) FILTER (WHERE c.streamed), coalesce(sum(c.ttft_ms) FILTER (WHERE c.streamed), 0)::bigint,
         ai_cost_internal.histogram(c.ttft_ms, 1) FILTER (WHERE c.streamed)
    -- Only the columns it reads: a BI login may read only some of them.
    FROM (SELECT id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= since AND created_at < least(until, (SELECT first_hour FROM bounds))
          UNION ALL
          SELECT id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
                 unpriced_reason, cost_micros, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                 reasoning_tokens, total_ms, streamed, ttft_ms
            FROM ai_cost.calls
           WHERE created_at >= greatest(since, (SELECT end_hour FROM bounds), (SELECT first_hour FROM bounds))
             AND created_at < until) AS c
   WHERE NOT EXISTS (SELECT FROM ai_cost.set_aside_calls s WHERE s.call_id = c.id)
   GROUP BY 1, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id, c.user_id,
            c.feature, c.cached, c.unpriced_reason
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.grant_roles() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  relation regclass;
  isolated boolean;
BEGIN
  REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA ai_cost, ai_cost_internal FROM PUBLIC;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
    -- USAGE on ai_cost_internal lets the reader's functions (calls_between)
    -- name the internal ones granted below; it reads no internal table.
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_reader;
    -- Every table and view but the calls, their partitions and the months
    -- retention detached (reading one directly would bypass the column
    -- grants below).
    FOR relation IN
      SELECT c.oid::regclass FROM pg_catalog.pg_class c
       WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
         AND NOT c.relispartition AND c.relname <> 'calls' AND c.relname !~ '^calls_[0-9]{4}_[0-9]{2}$'
    LOOP
      EXECUTE format('GRANT SELECT ON %s TO ai_cost_reader', relation);
    END LOOP;
    -- What a call was about (its error text, the application's metadata) is
    -- not for dashboards: every other column is.
    GRANT SELECT (id, created_at, provider, model, operation, status, service_tier, tenant_id, user_id, feature,
                  conversation_id, prompt_id, prompt_version, request_id, input_tokens, output_tokens,
                  cache_read_tokens, cache_write_tokens, reasoning_tokens, cache_write_1h_tokens,
                  audio_input_tokens, audio_output_tokens, units, unit, streamed, cached, ttft_ms, total_ms,
                  provided_cost_micros, cost_micros, price_id, unpriced_reason, discount_id, computed_cost_micros,
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units)
       ON ai_cost.calls TO ai_cost_reader;
    -- The functions of the reporting views, and the histogram and price
    -- helpers a dashboard query may call itself.
    GRANT EXECUTE ON FUNCTION
      ai_cost.calls_between(timestamptz, timestamptz), ai_cost.latency_bucket(integer),
      ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
      ai_cost.histogram_merge(bigint[]), ai_cost.price_at(text, text, timestamptz),
      ai_cost.cost_micros(ai_cost.prices, bigint, bigint, bigint, bigint),
      ai_cost_internal.histogram(integer, integer),
      ai_cost_internal.dimension_values(text, text, text, text, text, text, text),
      ai_cost_internal.split_days(timestamptz, timestamptz[]),
      ai_cost_internal.calls_slices(timestamptz, timestamptz[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls()
      TO ai_cost_reader;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_writer') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_writer;
    GRANT INSERT ON ai_cost.calls TO ai_cost_writer;
    -- ON CONFLICT (request_id) DO NOTHING reads the key it compares, and a
    -- writer reads back what it recorded (RETURNING id, cost_micros, ...):
    -- ids and costs, never what a call was about or whose it was.
    GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ai_cost_writer;
    GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                    ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts,
                    ai_cost.service_tiers
       TO ai_cost_writer;
    GRANT EXECUTE ON FUNCTION ai_cost.insert_calls(jsonb), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb)
      TO ai_cost_writer;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_writer');
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_admin') THEN
    GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ai_cost_admin;
    GRANT SELECT ON ai_cost.calls, ai_cost.budget_alerts, ai_cost.reprice_runs, ai_cost.reprice_audit
       TO ai_cost_admin;
    -- Repricing rewrites the cost columns; the cost trigger recomputes them
    -- from the prices, so this cannot set an arbitrary cost either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers
       TO ai_cost_admin;
    -- Operators choose whether the refresh announces unpriced models.
    GRANT SELECT, UPDATE (enabled) ON ai_cost.unpriced_model_alert_settings TO ai_cost_admin;
    -- A price change rebuilds the lookup the trigger reads and recompiles the
    -- price book, as the user who made it. The compiler is SECURITY DEFINER
    -- and locks the lookup, so a login that could run it could make a price
    -- change wait by holding its transaction open: only the admin runs it.
    GRANT SELECT, INSERT, DELETE, TRUNCATE ON ai_cost_internal.price_lookup TO ai_cost_admin;
    GRANT EXECUTE ON FUNCTION
      ai_cost_internal.rebuild_price_lookup(), ai_cost_internal.compile_price_book(),
      ai_cost_internal.price_book_entries(), ai_cost.price_at(text, text, timestamptz),
      ai_cost.explain_cost(bigint),
      ai_cost.explain_cost(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, bigint, bigint, numeric, text, text, text, bigint, bigint, bigint, bigint, bigint, jsonb),
      ai_cost.start_reprice(timestamptz, timestamptz, text, text, text, boolean), ai_cost.reprice_batch(bigint, integer),
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION') THEN
        GRANT ai_cost_reader TO ai_cost_admin;
      ELSE
        RAISE NOTICE 'ai_cost_admin was not made a member of ai_cost_reader: % lacks ADMIN OPTION on it; an administrator can run GRANT ai_cost_reader TO ai_cost_admin', current_user;
      END IF;
    END IF;
  END IF;

  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_tenant_reader') THEN
    GRANT USAGE ON SCHEMA ai_cost TO ai_cost_tenant_reader;
    GRANT EXECUTE ON FUNCTION ai_cost.latency_bucket_value(integer), ai_cost.histogram_percentile(bigint[], float8),
                              ai_cost.histogram_merge(bigint[])
       TO ai_cost_tenant_reader;
    -- A tenant reader reads the calls and their rollups only while the
    -- policies below confine it to its tenants.
    SELECT c.relrowsecurity INTO isolated FROM pg_catalog.pg_class c WHERE c.oid = 'ai_cost.calls'::regclass;
    IF isolated THEN
      GRANT SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly TO ai_cost_tenant_reader;
    ELSE
      REVOKE SELECT ON ai_cost.calls, ai_cost.calls_hourly, ai_cost.conversations_hourly FROM ai_cost_tenant_reader;
    END IF;
  END IF;
END
$$;

COMMENT ON COLUMN ai_cost.calls.tenant_id IS 'Your customer or workspace the call was made for.';

CREATE OR REPLACE VIEW ai_cost.calls_hourly_live AS
SELECT hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached,
       unpriced_reason, calls, unpriced_calls, cost_micros, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, total_ms_calls, total_ms_sum,
       total_ms_hist, ttft_ms_calls, ttft_ms_sum, ttft_ms_hist
  FROM ai_cost.calls_hourly
UNION ALL
SELECT date_trunc('hour', created_at, 'UTC'), provider, model, operation, status, service_tier,
       tenant_id, user_id, feature, cached, unpriced_reason,
       sum(sign)::bigint,
       coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint,
       coalesce(sum(sign * cost_micros), 0)::bigint,
       coalesce(sum(sign * input_tokens), 0)::bigint,
       coalesce(sum(sign * output_tokens), 0)::bigint,
       coalesce(sum(sign * cache_read_tokens), 0)::bigint,
       coalesce(sum(sign * cache_write_tokens), 0)::bigint,
       coalesce(sum(sign * reasoning_tokens), 0)::bigint,
       coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * total_ms), 0)::bigint,
       ai_cost_internal.histogram(total_ms, sign),
       coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint,
       coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint,
       ai_cost_internal.histogram(ttft_ms, sign) FILTER (WHERE streamed)
  FROM ai_cost_internal.pending_changes
 GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason;

DROP FUNCTION ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz);
DROP VIEW ai_cost_internal.calls_hourly_pending;
DROP FUNCTION ai_cost_internal.tenant_of_calls_without_one();
DROP FUNCTION ai_cost_internal.is_tenant_reader();
DROP FUNCTION ai_cost_internal.may_read_tenant(text);
DROP FUNCTION ai_cost_internal.refuse_call_changes();
DROP FUNCTION ai_cost_internal.node_local_table_ddl(regclass);
DROP FUNCTION ai_cost.distribute();
DROP FUNCTION ai_cost_internal.distribute_functions();

SELECT ai_cost_internal.grant_roles();
