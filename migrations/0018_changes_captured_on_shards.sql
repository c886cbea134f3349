-- Up Migration
--
-- Updates and deletes of a distributed ledger's calls (sql/ holds each
-- definition; this step brings the schema there): captured on the shards,
-- into a change table distributed beside the calls, and moved into the
-- coordinator's change table by each refresh (145_distribution.sql), so a
-- distributed ledger takes updates, deletes and reprices as one server does.
-- A ledger distributed before this step, whose calls refused updates and
-- deletes, gets the capture here. ai_cost_internal.billing_of is PL/pgSQL:
-- a Citus coordinator cannot plan the SQL function for the calls of a
-- reprice.

SET LOCAL check_function_bodies = off;

-- On a Citus coordinator (a ledger distributed by ai_cost.distribute()):
-- the shards of ai_cost.calls are changed one after another, since Citus
-- cannot create functions on the workers after a parallel change in the
-- same transaction, and a trigger on a distributed table needs
-- citus.enable_unsafe_triggers (145_distribution.sql).
DO $citus$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
END
$citus$;

CREATE OR REPLACE FUNCTION ai_cost_internal.billing_of(
  call_tenant_id text, call_provider text, call_model text, call_price_id bigint, call_status text,
  call_created_at timestamptz, call_cost_micros bigint, call_input_tokens bigint, call_output_tokens bigint
) RETURNS TABLE (billed_micros bigint, markup_id bigint)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  SELECT ai_cost_internal.charge(call_cost_micros, call_status, call_input_tokens, call_output_tokens,
                                 m.percent, m.per_call, m.per_mtok),
         m.id
    FROM ai_cost.markups m
   WHERE call_cost_micros IS NOT NULL
     AND (m.tenant_id IS NULL OR m.tenant_id OPERATOR(pg_catalog.=) call_tenant_id)
     AND (m.provider IS NULL OR m.provider OPERATOR(pg_catalog.=) call_provider)
     AND (m.model IS NULL OR m.model OPERATOR(pg_catalog.=) call_model
          OR m.model OPERATOR(pg_catalog.=) (SELECT p.model FROM ai_cost.prices p WHERE p.id OPERATOR(pg_catalog.=) call_price_id))
     AND m.valid_from OPERATOR(pg_catalog.<=) call_created_at
     AND (m.valid_to IS NULL OR m.valid_to OPERATOR(pg_catalog.>) call_created_at)
   -- The tenant's own markups first, then those for every tenant; within
   -- each, a model's before a provider's before all calls'.
   ORDER BY m.tenant_id IS NULL, m.model IS NULL, m.provider IS NULL
   LIMIT 1;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint) IS 'Internal: what a call is billed by the ai_cost.markups row in force for it (billed_micros, markup_id); no row when its cost is unknown or no markup covers it.';

CREATE FUNCTION ai_cost_internal.shard_changes() RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE sql STABLE AS $$
  SELECT (NULL::ai_cost_internal.call_changes).* WHERE false
$$;
COMMENT ON FUNCTION ai_cost_internal.shard_changes() IS 'Internal: the call changes captured on the shards of a distributed ledger that no refresh has collected yet; none on one server.';

CREATE OR REPLACE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM (SELECT * FROM ai_cost_internal.call_changes UNION ALL SELECT * FROM ai_cost_internal.shard_changes()) c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));

CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  range_end bigint;
  open_writers text[];
  arrived_ids bigint[];
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
  BEGIN
    SELECT f.applied, f.set_aside, f.arrived_ids INTO applied, set_aside, arrived_ids
      FROM ai_cost_internal.fold_changes(NULL, range_end) AS f;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    arrived_ids := ai_cost_internal.stage_unfolded_calls(range_end);
    SELECT f.applied, f.set_aside INTO applied, set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
  END;
  PERFORM ai_cost_internal.record_unfolded_ids(range_end, open_writers, arrived_ids);

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

CREATE OR REPLACE FUNCTION ai_cost.reprice_batch(run_id bigint, batch_size integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ai_cost.reprice_runs;
  examined integer;
  changed integer;
  delta numeric;
  last_created_at timestamptz;
  last_id bigint;
BEGIN
  SELECT * INTO run FROM ai_cost.reprice_runs r WHERE r.id = run_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no reprice run with id %', run_id USING ERRCODE = 'no_data_found';
  END IF;
  IF run.finished_at IS NOT NULL THEN
    RETURN 0;
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- On a ledger distributed over Citus the batch cannot be read FOR UPDATE
  -- (Citus locks rows of one shard only), and the update joins the calls on
  -- their distribution column. The cost and billing triggers recompute what
  -- the update writes from the row it updates, so a change made meanwhile
  -- is never overwritten with a stale cost; only the audit's old values may
  -- then be older than the row.
  EXECUTE format($batch$
  WITH batch AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= $2 AND c.created_at < $3
       AND ($5 IS NULL OR (c.created_at, c.id) > ($4, $5))
       AND ($6 IS NULL OR c.provider = $6)
       AND ($7 IS NULL OR c.model = $7)
       AND (NOT $8 OR c.cost_micros IS NULL)
     ORDER BY c.created_at, c.id
     LIMIT $9
     %s
  ),
  repriced AS (
    SELECT b.id, b.tenant_id, b.created_at, b.cost_micros AS old_cost, b.price_id AS old_price,
           b.unpriced_reason AS old_reason, b.discount_id AS old_discount, b.billed_micros AS old_billed,
           b.markup_id AS old_markup, n.*, m.billed_micros, m.markup_id
      FROM batch b CROSS JOIN LATERAL ai_cost_internal.cost_of(b) n
      LEFT JOIN LATERAL ai_cost_internal.billing_of(b.tenant_id, b.provider, b.model, n.price_id, b.status, b.created_at,
                                                    n.cost_micros, b.input_tokens, b.output_tokens) m ON true
  ),
  updated AS (
    UPDATE ai_cost.calls c
       SET cost_micros = r.cost_micros, price_id = r.price_id, discount_id = r.discount_id,
           unpriced_reason = r.unpriced_reason, billed_micros = r.billed_micros, markup_id = r.markup_id
      FROM repriced r
     WHERE %s
       AND (r.cost_micros IS DISTINCT FROM r.old_cost OR r.price_id IS DISTINCT FROM r.old_price
            OR r.discount_id IS DISTINCT FROM r.old_discount OR r.unpriced_reason IS DISTINCT FROM r.old_reason
            OR r.billed_micros IS DISTINCT FROM r.old_billed OR r.markup_id IS DISTINCT FROM r.old_markup)
       AND ($10 IS NULL
            OR EXISTS (SELECT FROM ai_cost.prices p WHERE p.id = r.price_id AND p.catalog IS NOT NULL))
    RETURNING c.id, c.cost_micros, c.price_id, c.unpriced_reason, c.billed_micros
  ),
  audited AS (
    INSERT INTO ai_cost.reprice_audit (run_id, call_id, old_cost_micros, new_cost_micros, old_price_id, new_price_id,
                                       old_unpriced_reason, new_unpriced_reason, reason, old_billed_micros, new_billed_micros)
    SELECT $1, u.id, r.old_cost, u.cost_micros, r.old_price, u.price_id, r.old_reason, u.unpriced_reason, $11,
           r.old_billed, u.billed_micros
      FROM updated u JOIN repriced r USING (id)
    RETURNING new_cost_micros - old_cost_micros AS delta
  )
  SELECT (SELECT count(*) FROM repriced),
         (SELECT count(*) FROM audited),
         (SELECT coalesce(sum(a.delta), 0) FROM audited a),
         last_row.created_at, last_row.id
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (SELECT r.created_at, r.id FROM repriced r ORDER BY r.created_at DESC, r.id DESC LIMIT 1) last_row ON true
  $batch$,
    CASE WHEN ai_cost_internal.calls_are_distributed() THEN '' ELSE 'FOR UPDATE' END,
    CASE WHEN ai_cost_internal.calls_are_distributed() THEN 'c.tenant_id = r.tenant_id AND c.id = r.id' ELSE 'c.id = r.id' END)
    INTO examined, changed, delta, last_created_at, last_id
    USING run.id, run.from_time, run.to_time, run.cursor_created_at, run.cursor_id, run.provider, run.model,
          run.only_unpriced, batch_size, run.catalog, run.reason;

  UPDATE ai_cost.reprice_runs r
     SET cursor_created_at = coalesce(last_created_at, r.cursor_created_at),
         cursor_id = coalesce(last_id, r.cursor_id),
         calls_done = r.calls_done + examined,
         calls_changed = r.calls_changed + changed,
         delta_micros = r.delta_micros + delta,
         updated_at = now(),
         finished_at = CASE WHEN examined < batch_size THEN now() END
   WHERE r.id = run.id;
  RETURN examined;
END
$$;
COMMENT ON FUNCTION ai_cost.reprice_batch(bigint, integer) IS 'Reprices the next batch_size calls of a run, updating and auditing only calls whose cost or charge changed; returns the number examined (0 once the run is finished). Call it in a loop, one transaction per call.';

CREATE FUNCTION ai_cost_internal.calls_are_distributed() RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT false
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_are_distributed() IS 'Internal: whether ai_cost.calls is distributed over Citus (ai_cost.distribute() makes it true).';

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

CREATE FUNCTION ai_cost_internal.collect_shard_changes() RETURNS void
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

CREATE FUNCTION ai_cost_internal.capture_changes_on_shards() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  CREATE TABLE ai_cost_internal.shard_call_changes (LIKE ai_cost_internal.call_changes);
  ALTER TABLE ai_cost_internal.shard_call_changes ALTER tenant_id SET NOT NULL;
  COMMENT ON TABLE ai_cost_internal.shard_call_changes IS 'Internal: versions of a distributed ledger''s calls removed (-1) and added (+1) by updates and deletes, captured on the shards; moved into ai_cost_internal.call_changes by the next ai_cost.refresh().';
  PERFORM create_distributed_table('ai_cost_internal.shard_call_changes', 'tenant_id', colocate_with => 'ai_cost.calls');
  -- The capture writes the change shard beside the calls' shard directly,
  -- which Citus allows only where asked.
  ALTER FUNCTION ai_cost_internal.capture_shard_call_changes() SET citus.enable_manual_changes_to_shards = on;
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
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__set_billed,
                              DISABLE TRIGGER tg_calls__capture_updates;
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
    -- Updates and deletes are captured on the shards, which carry the
    -- triggers of the table; Citus runs no TRUNCATE trigger there.
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    PERFORM ai_cost_internal.create_shard_capture_triggers();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    PERFORM ai_cost_internal.capture_changes_on_shards();
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

-- A ledger distributed before this step: its calls refused updates and
-- deletes; from here they are captured on the shards.
DO $citus$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_trigger
              WHERE tgname = 'tg_calls__refuse_changes' AND tgrelid = 'ai_cost.calls'::regclass) THEN
    EXECUTE 'DROP TRIGGER tg_calls__refuse_changes ON ai_cost.calls';
    PERFORM ai_cost_internal.create_shard_capture_triggers();
    PERFORM ai_cost_internal.capture_changes_on_shards();
    PERFORM ai_cost_internal.distribute_functions();
  END IF;
  EXECUTE 'DROP FUNCTION ai_cost_internal.refuse_call_changes()';
END
$citus$;

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
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units,
                  billed_micros, markup_id)
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
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables(), ai_cost_internal.shard_changes()
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
                    ai_cost.service_tiers, ai_cost.markups
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
    -- Repricing rewrites the cost and charge columns; the cost and billing
    -- triggers recompute them from the prices and markups, so this cannot
    -- set an arbitrary cost or charge either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason, billed_micros, markup_id) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers, ai_cost.markups
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
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers(),
      ai_cost_internal.calls_are_distributed()
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
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

-- On a Citus coordinator (a ledger distributed by ai_cost.distribute()):
-- the shards of ai_cost.calls are changed one after another, since Citus
-- cannot create functions on the workers after a parallel change in the
-- same transaction, and a trigger on a distributed table needs
-- citus.enable_unsafe_triggers (145_distribution.sql).
DO $citus$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  END IF;
END
$citus$;

CREATE FUNCTION ai_cost_internal.refuse_call_changes() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'calls of a distributed ledger cannot be updated or deleted yet (call %)', OLD.id
    USING ERRCODE = 'feature_not_supported',
          HINT = 'The rollups capture updates and deletes on one server only; see docs/scaling.md.';
END
$$;
COMMENT ON FUNCTION ai_cost_internal.refuse_call_changes() IS 'Trigger on the calls of a distributed ledger: refuses UPDATE and DELETE, which the rollups cannot capture there.';

-- A distributed ledger: the changes captured on the shards go to the
-- change table for the next refresh, and its calls refuse updates and
-- deletes again.
DO $citus$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    PERFORM ai_cost_internal.collect_shard_changes();
    EXECUTE 'DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls';
    EXECUTE 'DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls';
    EXECUTE 'CREATE TRIGGER tg_calls__refuse_changes BEFORE UPDATE OR DELETE ON ai_cost.calls
               FOR EACH ROW EXECUTE FUNCTION ai_cost_internal.refuse_call_changes()';
    EXECUTE 'DROP TABLE ai_cost_internal.shard_call_changes';
  END IF;
END
$citus$;

CREATE OR REPLACE FUNCTION ai_cost_internal.billing_of(
  call_tenant_id text, call_provider text, call_model text, call_price_id bigint, call_status text,
  call_created_at timestamptz, call_cost_micros bigint, call_input_tokens bigint, call_output_tokens bigint
) RETURNS TABLE (billed_micros bigint, markup_id bigint)
LANGUAGE sql STABLE AS $$
  SELECT ai_cost_internal.charge(call_cost_micros, call_status, call_input_tokens, call_output_tokens,
                                 m.percent, m.per_call, m.per_mtok),
         m.id
    FROM ai_cost.markups m
   WHERE call_cost_micros IS NOT NULL
     AND (m.tenant_id IS NULL OR m.tenant_id OPERATOR(pg_catalog.=) call_tenant_id)
     AND (m.provider IS NULL OR m.provider OPERATOR(pg_catalog.=) call_provider)
     AND (m.model IS NULL OR m.model OPERATOR(pg_catalog.=) call_model
          OR m.model OPERATOR(pg_catalog.=) (SELECT p.model FROM ai_cost.prices p WHERE p.id OPERATOR(pg_catalog.=) call_price_id))
     AND m.valid_from OPERATOR(pg_catalog.<=) call_created_at
     AND (m.valid_to IS NULL OR m.valid_to OPERATOR(pg_catalog.>) call_created_at)
   -- The tenant's own markups first, then those for every tenant; within
   -- each, a model's before a provider's before all calls'.
   ORDER BY m.tenant_id IS NULL, m.model IS NULL, m.provider IS NULL
   LIMIT 1
$$;
COMMENT ON FUNCTION ai_cost_internal.billing_of(text, text, text, bigint, text, timestamptz, bigint, bigint, bigint) IS 'Internal: what a call is billed by the ai_cost.markups row in force for it (billed_micros, markup_id); no row when its cost is unknown or no markup covers it.';

CREATE OR REPLACE VIEW ai_cost_internal.pending_changes AS
SELECT u.* FROM ai_cost_internal.unfolded_calls() u
UNION ALL
SELECT c.* FROM ai_cost_internal.call_changes c
 WHERE c.call_id IS NULL
    OR (c.call_id <= (SELECT s.folded_through FROM ai_cost_internal.fold_state s)
        AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE c.call_id BETWEEN u.first_id AND u.last_id));

CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  range_end bigint;
  open_writers text[];
  arrived_ids bigint[];
BEGIN
  IF (SELECT q.seqcache FROM pg_catalog.pg_sequence q
       WHERE q.seqrelid = pg_get_serial_sequence('ai_cost.calls', 'id')::regclass) > 1 THEN
    RAISE EXCEPTION 'the id sequence of ai_cost.calls caches ids (CACHE > 1), so the rollups cannot tell which calls are still to come'
      USING HINT = format('ALTER SEQUENCE %s CACHE 1', pg_get_serial_sequence('ai_cost.calls', 'id'));
  END IF;
  range_end := ai_cost_internal.last_drawn_call_id();
  open_writers := ai_cost_internal.call_writers();
  -- A REPEATABLE READ or SERIALIZABLE snapshot was taken when the transaction
  -- began, before both: a writer that ended in between is not among
  -- open_writers, yet its calls are not visible. Every range read is then
  -- kept for the next refresh to read again.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    open_writers := open_writers || 'next refresh'::text;
  END IF;
  BEGIN
    SELECT f.applied, f.set_aside, f.arrived_ids INTO applied, set_aside, arrived_ids
      FROM ai_cost_internal.fold_changes(NULL, range_end) AS f;
  EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
    arrived_ids := ai_cost_internal.stage_unfolded_calls(range_end);
    SELECT f.applied, f.set_aside INTO applied, set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
  END;
  PERFORM ai_cost_internal.record_unfolded_ids(range_end, open_writers, arrived_ids);

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

CREATE OR REPLACE FUNCTION ai_cost.reprice_batch(run_id bigint, batch_size integer DEFAULT 5000) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  run ai_cost.reprice_runs;
  examined integer;
  changed integer;
  delta numeric;
  last_created_at timestamptz;
  last_id bigint;
BEGIN
  SELECT * INTO run FROM ai_cost.reprice_runs r WHERE r.id = run_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no reprice run with id %', run_id USING ERRCODE = 'no_data_found';
  END IF;
  IF run.finished_at IS NOT NULL THEN
    RETURN 0;
  END IF;
  IF batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1, not %', batch_size USING ERRCODE = 'invalid_parameter_value';
  END IF;

  WITH batch AS (
    SELECT c.* FROM ai_cost.calls c
     WHERE c.created_at >= run.from_time AND c.created_at < run.to_time
       AND (run.cursor_id IS NULL OR (c.created_at, c.id) > (run.cursor_created_at, run.cursor_id))
       AND (run.provider IS NULL OR c.provider = run.provider)
       AND (run.model IS NULL OR c.model = run.model)
       AND (NOT run.only_unpriced OR c.cost_micros IS NULL)
     ORDER BY c.created_at, c.id
     LIMIT batch_size
     FOR UPDATE
  ),
  repriced AS (
    SELECT b.id, b.created_at, b.cost_micros AS old_cost, b.price_id AS old_price,
           b.unpriced_reason AS old_reason, b.discount_id AS old_discount, b.billed_micros AS old_billed,
           b.markup_id AS old_markup, n.*, m.billed_micros, m.markup_id
      FROM batch b CROSS JOIN LATERAL ai_cost_internal.cost_of(b) n
      LEFT JOIN LATERAL ai_cost_internal.billing_of(b.tenant_id, b.provider, b.model, n.price_id, b.status, b.created_at,
                                                    n.cost_micros, b.input_tokens, b.output_tokens) m ON true
  ),
  updated AS (
    UPDATE ai_cost.calls c
       SET cost_micros = r.cost_micros, price_id = r.price_id, discount_id = r.discount_id,
           unpriced_reason = r.unpriced_reason, billed_micros = r.billed_micros, markup_id = r.markup_id
      FROM repriced r
     WHERE c.id = r.id
       AND (r.cost_micros IS DISTINCT FROM r.old_cost OR r.price_id IS DISTINCT FROM r.old_price
            OR r.discount_id IS DISTINCT FROM r.old_discount OR r.unpriced_reason IS DISTINCT FROM r.old_reason
            OR r.billed_micros IS DISTINCT FROM r.old_billed OR r.markup_id IS DISTINCT FROM r.old_markup)
       AND (run.catalog IS NULL
            OR EXISTS (SELECT FROM ai_cost.prices p WHERE p.id = r.price_id AND p.catalog IS NOT NULL))
    RETURNING c.id, c.cost_micros, c.price_id, c.unpriced_reason, c.billed_micros
  ),
  audited AS (
    INSERT INTO ai_cost.reprice_audit (run_id, call_id, old_cost_micros, new_cost_micros, old_price_id, new_price_id,
                                       old_unpriced_reason, new_unpriced_reason, reason, old_billed_micros, new_billed_micros)
    SELECT run.id, u.id, r.old_cost, u.cost_micros, r.old_price, u.price_id, r.old_reason, u.unpriced_reason, run.reason,
           r.old_billed, u.billed_micros
      FROM updated u JOIN repriced r USING (id)
    RETURNING new_cost_micros - old_cost_micros AS delta
  )
  SELECT (SELECT count(*) FROM repriced),
         (SELECT count(*) FROM audited),
         (SELECT coalesce(sum(a.delta), 0) FROM audited a),
         last_row.created_at, last_row.id
    INTO examined, changed, delta, last_created_at, last_id
    FROM (SELECT NULL) one
    LEFT JOIN LATERAL (SELECT r.created_at, r.id FROM repriced r ORDER BY r.created_at DESC, r.id DESC LIMIT 1) last_row ON true;

  UPDATE ai_cost.reprice_runs r
     SET cursor_created_at = coalesce(last_created_at, r.cursor_created_at),
         cursor_id = coalesce(last_id, r.cursor_id),
         calls_done = r.calls_done + examined,
         calls_changed = r.calls_changed + changed,
         delta_micros = r.delta_micros + delta,
         updated_at = now(),
         finished_at = CASE WHEN examined < batch_size THEN now() END
   WHERE r.id = run.id;
  RETURN examined;
END
$$;
COMMENT ON FUNCTION ai_cost.reprice_batch(bigint, integer) IS 'Reprices the next batch_size calls of a run, updating and auditing only calls whose cost or charge changed; returns the number examined (0 once the run is finished). Call it in a loop, one transaction per call.';

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
    ALTER TABLE ai_cost.calls DISABLE TRIGGER tg_calls__price_call, DISABLE TRIGGER tg_calls__set_billed,
                              DISABLE TRIGGER tg_calls__capture_updates;
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
                  cache_read_audio_tokens, image_input_tokens, image_output_tokens, video_input_tokens, extra_units,
                  billed_micros, markup_id)
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
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables()
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
                    ai_cost.service_tiers, ai_cost.markups
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
    -- Repricing rewrites the cost and charge columns; the cost and billing
    -- triggers recompute them from the prices and markups, so this cannot
    -- set an arbitrary cost or charge either.
    GRANT UPDATE (cost_micros, price_id, discount_id, unpriced_reason, billed_micros, markup_id) ON ai_cost.calls TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE ON ai_cost.prices, ai_cost.reprice_runs TO ai_cost_admin;
    GRANT INSERT ON ai_cost.reprice_audit TO ai_cost_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ai_cost.model_aliases, ai_cost.model_patterns,
                                           ai_cost.tenant_discounts, ai_cost.providers, ai_cost.budgets,
                                           ai_cost.tenant_access, ai_cost.service_tiers, ai_cost.markups
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
COMMENT ON FUNCTION ai_cost_internal.grant_roles() IS 'Internal: grants each existing ai_cost_* role its rights (idempotent); run by every ai-cost migrate up.';

DO $citus$
BEGIN
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.shard_changes()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.calls_are_distributed()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.capture_shard_call_changes()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.create_shard_capture_triggers()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.collect_shard_changes()$ddl$;
  EXECUTE $ddl$DROP FUNCTION ai_cost_internal.capture_changes_on_shards()$ddl$;
END
$citus$;

SELECT ai_cost_internal.grant_roles();
