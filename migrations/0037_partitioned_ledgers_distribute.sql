-- Up Migration
--
-- ai-cost distribute distributes a partitioned ledger: its request ids are
-- distributed beside the calls and claimed on the shards, the partitions
-- that maintenance adds later are distributed as they are attached, and
-- retention forgets the request ids of the calls it deletes from the default
-- partition by their date. ai_cost.partition_calls() refuses a ledger
-- already distributed in one line. Citus leaves a table's rows on the
-- coordinator's disk after copying them to the shards: distribute and
-- maintenance now remove them there (sql/ holds the definitions; this step
-- brings the schema there).

CREATE OR REPLACE FUNCTION ai_cost_internal.add_month_partition(month_start timestamp) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := ai_cost_internal.partition_name(month_start);
  range_start timestamptz := month_start AT TIME ZONE 'UTC';
  range_end timestamptz := (month_start + interval '1 month') AT TIME ZONE 'UTC';
  moved bigint;
BEGIN
  EXECUTE format('CREATE TABLE ai_cost.%I (LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)', name);
  EXECUTE format('WITH moved AS (DELETE FROM ai_cost.calls_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                  INSERT INTO ai_cost.%I SELECT * FROM moved', name)
    USING range_start, range_end;
  GET DIAGNOSTICS moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE ai_cost.calls ATTACH PARTITION ai_cost.%I FOR VALUES FROM (%L) TO (%L)',
                 name, range_start, range_end);
  IF ai_cost_internal.calls_are_distributed() THEN
    -- Attached to the distributed calls, the table was distributed beside
    -- them: Citus copied its rows to the shards and left them on the
    -- coordinator's disk too, out of sight. A partition has no TRUNCATE
    -- trigger, so this empties nothing else.
    PERFORM truncate_local_data_after_distributing_table(format('ai_cost.%I', name)::regclass);
  END IF;
  RETURN moved;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.add_month_partition(timestamp) IS 'Internal: creates and attaches the partition of one UTC month, taking over its rows from the default partition.';

CREATE OR REPLACE FUNCTION ai_cost.maintain_partitions()
RETURNS TABLE (action text, partition_name text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  cutoff timestamptz;
  month_start timestamp;
  moved bigint;
  pending bigint;
  old record;
  locked boolean := false;
  waiting boolean := false;
BEGIN
  IF NOT ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is not partitioned: nothing to maintain (see ai_cost.partition_calls())';
    RETURN;
  END IF;
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- Every month of the window has its partition; a call of one that had
  -- none (maintenance did not run for months, say) moves there from the
  -- default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT min(p.range_start) AT TIME ZONE 'UTC' FROM ai_cost.call_partitions p WHERE NOT p.is_default),
        this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    IF NOT EXISTS (SELECT FROM ai_cost.call_partitions p WHERE p.range_start = month_start AT TIME ZONE 'UTC') THEN
      moved := ai_cost_internal.add_month_partition(month_start);
      action := 'created';
      partition_name := 'ai_cost.' || ai_cost_internal.partition_name(month_start);
      detail := CASE WHEN moved > 0 THEN moved || ' calls moved from ai_cost.calls_default' END;
      RETURN NEXT;
    END IF;
  END LOOP;

  IF settings.retain_months IS NOT NULL THEN
    cutoff := (this_month - make_interval(months => settings.retain_months)) AT TIME ZONE 'UTC';
    FOR old IN
      SELECT p.partition, p.range_start, p.range_end FROM ai_cost.call_partitions p
       WHERE NOT p.is_default AND p.range_end <= cutoff ORDER BY p.range_start
    LOOP
      IF NOT locked THEN
        -- Inserts in flight finish first; their changes are then visible below.
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c
       WHERE c.created_at >= old.range_start AND c.created_at < old.range_end;
      partition_name := old.partition::text;
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
        waiting := true;
      ELSE
        DELETE FROM ai_cost_internal.request_ids r
         WHERE r.created_at >= old.range_start AND r.created_at < old.range_end;
        IF settings.retention = 'drop' THEN
          EXECUTE format('DROP TABLE %s', old.partition);
          action := 'dropped';
        ELSE
          EXECUTE format('ALTER TABLE ai_cost.calls DETACH PARTITION %s', old.partition);
          action := 'detached';
        END IF;
        detail := format('calls from %s to %s; their totals stay in the rollups', old.range_start, old.range_end);
      END IF;
      RETURN NEXT;
    END LOOP;

    -- Calls in the default partition from before the horizon (dated before
    -- the window, or written after their month's partition went): the same
    -- rule for the rows themselves, taken once every partition before the
    -- horizon has gone. Then they are the only calls dated before it, so
    -- the request ids dated before it are theirs (on a distributed ledger
    -- too, where a request id is known by its tenant as well). Detached,
    -- they are kept together in ai_cost_internal.calls_default_detached,
    -- out of the readers' reach.
    IF EXISTS (SELECT 1 FROM ai_cost.calls_default d WHERE d.created_at < cutoff) THEN
      IF NOT locked THEN
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c WHERE c.created_at < cutoff;
      partition_name := 'ai_cost.calls_default';
      IF pending > 0 OR waiting THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      -- Deleted from the partition itself: no statement trigger of
      -- ai_cost.calls fires, so the rollups keep these calls' totals.
      ELSIF settings.retention = 'drop' THEN
        DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff;
        GET DIAGNOSTICS moved = ROW_COUNT;
        DELETE FROM ai_cost_internal.request_ids r WHERE r.created_at < cutoff;
        action := 'deleted';
        detail := format('%s calls from before %s; their totals stay in the rollups', moved, cutoff);
      ELSE
        IF to_regclass('ai_cost_internal.calls_default_detached') IS NULL THEN
          CREATE TABLE ai_cost_internal.calls_default_detached (LIKE ai_cost.calls);
        END IF;
        WITH gone AS (
          DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff RETURNING d.*
        )
        INSERT INTO ai_cost_internal.calls_default_detached SELECT * FROM gone;
        GET DIAGNOSTICS moved = ROW_COUNT;
        DELETE FROM ai_cost_internal.request_ids r WHERE r.created_at < cutoff;
        action := 'detached';
        detail := format('%s calls from before %s moved to ai_cost_internal.calls_default_detached; their totals stay in the rollups',
                         moved, cutoff);
      END IF;
      RETURN NEXT;
    END IF;
  END IF;

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
END
$$;
COMMENT ON FUNCTION ai_cost.maintain_partitions() IS 'For a partitioned ai_cost.calls: creates the partitions of every month from the oldest partition (at most 60 months back) to months_ahead ahead, moving their rows out of the default partition, and drops or detaches partitions past retain_months, and default-partition calls from before then, once the rollups hold them (ai_cost.partition_settings). Returns one row per action. ai_cost.refresh() runs it once a day.';

CREATE OR REPLACE FUNCTION ai_cost.partition_calls(
  OUT partitions integer, OUT calls_copied bigint, OUT duration_ms numeric
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started timestamptz := clock_timestamp();
  old_table oid;
  old_type oid;
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  month_start timestamp;
  sequence_name text;
  sequence_last bigint;
  sequence_called boolean;
  table_comment text;
  table_acl aclitem[];
  table_owner oid;
  rls record;
  item record;
  saved_indexes text[];
  saved_constraints text[];
  saved_triggers text[];
  saved_policies text[];
  saved_column_acls jsonb;
  saved_functions jsonb;
  statement text;
BEGIN
  IF ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is already partitioned: nothing to do';
    partitions := (SELECT count(*) FROM ai_cost.call_partitions);
    calls_copied := 0;
    duration_ms := 0;
    RETURN;
  END IF;
  IF ai_cost_internal.calls_are_distributed() THEN
    RAISE EXCEPTION 'ai_cost.calls is distributed over Citus, and a distributed ledger cannot be partitioned: partition a ledger before distributing it';
  END IF;
  LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
  old_table := 'ai_cost.calls'::regclass;
  SELECT reltype, relowner, relacl INTO old_type, table_owner, table_acl FROM pg_class WHERE oid = old_table;
  SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced INTO rls FROM pg_class WHERE oid = old_table;
  table_comment := obj_description(old_table, 'pg_class');
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- A unique index that is not a constraint cannot be given created_at
  -- without knowing what it is for: refuse rather than guess.
  IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = old_table)) THEN
    RAISE EXCEPTION 'cannot partition ai_cost.calls: it has a unique index that is not a constraint (%)',
      (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique)
      USING HINT = 'Drop it or make it a UNIQUE constraint, then run ai_cost.partition_calls() again.';
  END IF;

  -- Save what is recreated on the new table, as SQL that names
  -- ai_cost.calls, which the new table will be called by then.
  saved_indexes := ARRAY(
    SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
     WHERE i.indrelid = old_table AND NOT i.indisunique ORDER BY i.indexrelid);
  saved_constraints := ARRAY(
    SELECT format('ALTER TABLE ai_cost.calls ADD CONSTRAINT %I %s (%s)', c.conname,
                  CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)
                     FROM unnest(c.conkey || CASE WHEN 'created_at' = ANY (
                            SELECT attname FROM pg_attribute WHERE attrelid = old_table AND attnum = ANY (c.conkey))
                          THEN '{}'::int2[] ELSE ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = old_table AND attname = 'created_at')] END)
                          WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = old_table AND a.attnum = k.attnum))
      FROM pg_constraint c WHERE c.conrelid = old_table AND c.contype IN ('p', 'u') ORDER BY c.contype, c.oid);
  saved_triggers := ARRAY(
    SELECT s.sql FROM (
      SELECT 1 AS pass, t.tgname, pg_get_triggerdef(t.oid) AS sql
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal
      UNION ALL
      SELECT 2, t.tgname, format('COMMENT ON TRIGGER %I ON ai_cost.calls IS %L', t.tgname, obj_description(t.oid, 'pg_trigger'))
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NOT NULL
    ) AS s ORDER BY pass, tgname);
  saved_column_acls := coalesce((
    SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'acl', a.attacl))
      FROM pg_attribute a WHERE a.attrelid = old_table AND a.attnum > 0 AND a.attacl IS NOT NULL), '[]');
  saved_policies := ARRAY(
    SELECT format('CREATE POLICY %I ON ai_cost.calls AS %s FOR %s TO %s%s%s', p.policyname, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
      FROM pg_policies p WHERE p.schemaname = 'ai_cost' AND p.tablename = 'calls');
  -- Functions that take or return a calls row depend on the old row type:
  -- they are dropped with it and created again for the new one.
  saved_functions := coalesce((
    SELECT jsonb_agg(jsonb_build_object('definition', pg_get_functiondef(p.oid), 'signature', p.oid::regprocedure::text,
                                        'comment', obj_description(p.oid, 'pg_proc'), 'owner', p.proowner, 'acl', p.proacl))
      FROM pg_proc p
     WHERE p.oid IN (SELECT d.objid FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass
                        AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid = old_type)
                          OR (d.refclassid = 'pg_class'::regclass AND d.refobjid = old_table)))), '[]');

  sequence_name := pg_get_serial_sequence('ai_cost.calls', 'id');
  EXECUTE format('SELECT last_value, is_called FROM %s', sequence_name) INTO sequence_last, sequence_called;

  CREATE TABLE ai_cost.calls_being_partitioned (
    LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED
                       INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS
  ) PARTITION BY RANGE (created_at);
  CREATE TABLE ai_cost.calls_default PARTITION OF ai_cost.calls_being_partitioned DEFAULT;
  -- The window of months (ai_cost_internal.first_partition_month) from the
  -- month of the oldest call: older calls go to the default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT date_trunc('month', min(created_at) AT TIME ZONE 'UTC') FROM ai_cost.calls), this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    EXECUTE format('CREATE TABLE ai_cost.%I PARTITION OF ai_cost.calls_being_partitioned FOR VALUES FROM (%L) TO (%L)',
                   ai_cost_internal.partition_name(month_start), month_start AT TIME ZONE 'UTC',
                   (month_start + interval '1 month') AT TIME ZONE 'UTC');
  END LOOP;

  -- No trigger on the new table yet: rows keep their cost, and the change
  -- capture does not see them again.
  INSERT INTO ai_cost.calls_being_partitioned OVERRIDING SYSTEM VALUE SELECT * FROM ai_cost.calls;
  GET DIAGNOSTICS calls_copied = ROW_COUNT;
  TRUNCATE ai_cost_internal.request_ids;
  INSERT INTO ai_cost_internal.request_ids (request_id, created_at)
  SELECT request_id, created_at FROM ai_cost.calls WHERE request_id IS NOT NULL;

  -- Swap. DROP without CASCADE: anything else that still depends on the old
  -- table (a view, say) stops the conversion here, naming itself.
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(signature text) LOOP
    EXECUTE format('DROP FUNCTION %s', item.signature);
  END LOOP;
  DROP TABLE ai_cost.calls;
  ALTER TABLE ai_cost.calls_being_partitioned RENAME TO calls;
  EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence('ai_cost.calls', 'id'), 'calls_id_seq');
  -- The sequence as it was, drawn or not: the refresh reads the last id
  -- drawn from it (ai_cost_internal.last_drawn_call_id), which a sequence
  -- set but not drawn from does not tell.
  PERFORM setval('ai_cost.calls_id_seq', sequence_last, sequence_called);
  EXECUTE format('ALTER TABLE ai_cost.calls OWNER TO %s', table_owner::regrole);
  EXECUTE format('COMMENT ON TABLE ai_cost.calls IS %L', table_comment);
  PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, table_acl);
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_column_acls) AS c(name text, acl aclitem[]) LOOP
    PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, item.acl, item.name);
  END LOOP;

  FOREACH statement IN ARRAY saved_constraints || saved_indexes LOOP
    EXECUTE statement;
  END LOOP;
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(definition text, signature text, comment text, owner oid, acl aclitem[]) LOOP
    EXECUTE item.definition;
    EXECUTE format('ALTER FUNCTION %s OWNER TO %s', item.signature, item.owner::regrole);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', item.signature, item.comment);
    PERFORM ai_cost_internal.restore_acl('FUNCTION', item.signature, item.owner, item.acl);
  END LOOP;
  FOREACH statement IN ARRAY saved_triggers || saved_policies LOOP
    EXECUTE statement;
  END LOOP;
  IF rls.enabled THEN
    ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  END IF;
  IF rls.forced THEN
    ALTER TABLE ai_cost.calls FORCE ROW LEVEL SECURITY;
  END IF;

  -- Idempotency by ai_cost_internal.request_ids (see the top of this file).
  -- tg_calls__claim_request_id sorts before tg_calls__price_call, so a
  -- duplicate is skipped before it is priced.
  CREATE TRIGGER tg_calls__claim_request_id
    BEFORE INSERT ON ai_cost.calls
    FOR EACH ROW WHEN (NEW.request_id IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.claim_request_id();
  CREATE TRIGGER tg_calls__move_request_id
    BEFORE UPDATE OF request_id, created_at ON ai_cost.calls
    FOR EACH ROW WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_cost_internal.move_request_id();
  CREATE TRIGGER tg_calls__end_request_id_move
    AFTER UPDATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.end_request_id_move();
  CREATE TRIGGER tg_calls__release_request_ids
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();
  CREATE TRIGGER tg_calls__truncate_request_ids
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
  partitions := (SELECT count(*) FROM ai_cost.call_partitions);
  duration_ms := round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;
COMMENT ON FUNCTION ai_cost.partition_calls() IS 'Converts ai_cost.calls into a table partitioned by UTC month of created_at (opt-in; see docs/scaling.md): same columns, constraints, triggers, grants and rollups; idempotency by request_id kept. Locks ai_cost.calls for the duration of the copy. Write ON CONFLICT DO NOTHING (no target) afterwards. Does nothing if already partitioned.';

CREATE OR REPLACE FUNCTION ai_cost_internal.request_id_shard(tenant_id text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN format('ai_cost_internal.%I', 'request_ids_' || get_shard_id_for_distribution_column('ai_cost_internal.request_ids', tenant_id));
END
$$;
COMMENT ON FUNCTION ai_cost_internal.request_id_shard(text) IS 'Internal: the shard of ai_cost_internal.request_ids that holds a tenant''s request ids on a distributed partitioned ledger.';

CREATE OR REPLACE FUNCTION ai_cost_internal.claim_shard_request_id() RETURNS trigger
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

CREATE OR REPLACE FUNCTION ai_cost_internal.move_shard_request_id() RETURNS trigger
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

CREATE OR REPLACE FUNCTION ai_cost_internal.release_shard_request_ids() RETURNS trigger
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

CREATE OR REPLACE FUNCTION ai_cost_internal.distribute_request_ids() RETURNS void
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

CREATE OR REPLACE FUNCTION ai_cost_internal.cluster_function_settings(OUT function regprocedure, OUT setting text, OUT value text)
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

-- Down Migration

-- The release before this step cannot run a distributed partitioned ledger.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_trigger
              WHERE tgfoid = 'ai_cost_internal.claim_shard_request_id()'::pg_catalog.regprocedure) THEN
    RAISE EXCEPTION 'ai_cost.calls is partitioned and distributed, which the release before 0037_partitioned_ledgers_distribute cannot run: it cannot be stepped down';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION ai_cost_internal.add_month_partition(month_start timestamp) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  name text := ai_cost_internal.partition_name(month_start);
  range_start timestamptz := month_start AT TIME ZONE 'UTC';
  range_end timestamptz := (month_start + interval '1 month') AT TIME ZONE 'UTC';
  moved bigint;
BEGIN
  EXECUTE format('CREATE TABLE ai_cost.%I (LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)', name);
  EXECUTE format('WITH moved AS (DELETE FROM ai_cost.calls_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                  INSERT INTO ai_cost.%I SELECT * FROM moved', name)
    USING range_start, range_end;
  GET DIAGNOSTICS moved = ROW_COUNT;
  EXECUTE format('ALTER TABLE ai_cost.calls ATTACH PARTITION ai_cost.%I FOR VALUES FROM (%L) TO (%L)',
                 name, range_start, range_end);
  RETURN moved;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.add_month_partition(timestamp) IS 'Internal: creates and attaches the partition of one UTC month, taking over its rows from the default partition.';

CREATE OR REPLACE FUNCTION ai_cost.maintain_partitions()
RETURNS TABLE (action text, partition_name text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET lock_timeout = '2s' AS $$
DECLARE
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  cutoff timestamptz;
  month_start timestamp;
  moved bigint;
  pending bigint;
  old record;
  locked boolean := false;
BEGIN
  IF NOT ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is not partitioned: nothing to maintain (see ai_cost.partition_calls())';
    RETURN;
  END IF;
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- Every month of the window has its partition; a call of one that had
  -- none (maintenance did not run for months, say) moves there from the
  -- default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT min(p.range_start) AT TIME ZONE 'UTC' FROM ai_cost.call_partitions p WHERE NOT p.is_default),
        this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    IF NOT EXISTS (SELECT FROM ai_cost.call_partitions p WHERE p.range_start = month_start AT TIME ZONE 'UTC') THEN
      moved := ai_cost_internal.add_month_partition(month_start);
      action := 'created';
      partition_name := 'ai_cost.' || ai_cost_internal.partition_name(month_start);
      detail := CASE WHEN moved > 0 THEN moved || ' calls moved from ai_cost.calls_default' END;
      RETURN NEXT;
    END IF;
  END LOOP;

  IF settings.retain_months IS NOT NULL THEN
    cutoff := (this_month - make_interval(months => settings.retain_months)) AT TIME ZONE 'UTC';
    FOR old IN
      SELECT p.partition, p.range_start, p.range_end FROM ai_cost.call_partitions p
       WHERE NOT p.is_default AND p.range_end <= cutoff ORDER BY p.range_start
    LOOP
      IF NOT locked THEN
        -- Inserts in flight finish first; their changes are then visible below.
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c
       WHERE c.created_at >= old.range_start AND c.created_at < old.range_end;
      partition_name := old.partition::text;
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      ELSE
        DELETE FROM ai_cost_internal.request_ids r
         WHERE r.created_at >= old.range_start AND r.created_at < old.range_end;
        IF settings.retention = 'drop' THEN
          EXECUTE format('DROP TABLE %s', old.partition);
          action := 'dropped';
        ELSE
          EXECUTE format('ALTER TABLE ai_cost.calls DETACH PARTITION %s', old.partition);
          action := 'detached';
        END IF;
        detail := format('calls from %s to %s; their totals stay in the rollups', old.range_start, old.range_end);
      END IF;
      RETURN NEXT;
    END LOOP;

    -- Calls in the default partition from before the horizon (dated before
    -- the window, or written after their month's partition went): the same
    -- rule for the rows themselves. Detached, they are kept together in
    -- ai_cost_internal.calls_default_detached, out of the readers' reach.
    IF EXISTS (SELECT FROM ai_cost.calls_default d WHERE d.created_at < cutoff) THEN
      IF NOT locked THEN
        LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
        locked := true;
      END IF;
      SELECT count(*) INTO pending FROM ai_cost_internal.pending_changes c WHERE c.created_at < cutoff;
      partition_name := 'ai_cost.calls_default';
      IF pending > 0 THEN
        action := 'waiting';
        detail := pending || ' changes are not in the rollups yet: run ai_cost.refresh(), then this again';
      -- Deleted from the partition itself: no statement trigger of
      -- ai_cost.calls fires, so the rollups keep these calls' totals.
      ELSIF settings.retention = 'drop' THEN
        WITH gone AS (
          DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff RETURNING d.request_id
        ), ids AS (
          DELETE FROM ai_cost_internal.request_ids r USING gone g WHERE r.request_id = g.request_id
        )
        SELECT count(*) INTO moved FROM gone;
        action := 'deleted';
        detail := format('%s calls from before %s; their totals stay in the rollups', moved, cutoff);
      ELSE
        IF to_regclass('ai_cost_internal.calls_default_detached') IS NULL THEN
          CREATE TABLE ai_cost_internal.calls_default_detached (LIKE ai_cost.calls);
        END IF;
        WITH gone AS (
          DELETE FROM ai_cost.calls_default d WHERE d.created_at < cutoff RETURNING d.*
        ), kept AS (
          INSERT INTO ai_cost_internal.calls_default_detached SELECT * FROM gone
        ), ids AS (
          DELETE FROM ai_cost_internal.request_ids r USING gone g WHERE r.request_id = g.request_id
        )
        SELECT count(*) INTO moved FROM gone;
        action := 'detached';
        detail := format('%s calls from before %s moved to ai_cost_internal.calls_default_detached; their totals stay in the rollups',
                         moved, cutoff);
      END IF;
      RETURN NEXT;
    END IF;
  END IF;

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
END
$$;
COMMENT ON FUNCTION ai_cost.maintain_partitions() IS 'For a partitioned ai_cost.calls: creates the partitions of every month from the oldest partition (at most 60 months back) to months_ahead ahead, moving their rows out of the default partition, and drops or detaches partitions past retain_months, and default-partition calls from before then, once the rollups hold them (ai_cost.partition_settings). Returns one row per action. ai_cost.refresh() runs it once a day.';

CREATE OR REPLACE FUNCTION ai_cost.partition_calls(
  OUT partitions integer, OUT calls_copied bigint, OUT duration_ms numeric
)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  started timestamptz := clock_timestamp();
  old_table oid;
  old_type oid;
  settings ai_cost.partition_settings;
  this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  month_start timestamp;
  sequence_name text;
  sequence_last bigint;
  sequence_called boolean;
  table_comment text;
  table_acl aclitem[];
  table_owner oid;
  rls record;
  item record;
  saved_indexes text[];
  saved_constraints text[];
  saved_triggers text[];
  saved_policies text[];
  saved_column_acls jsonb;
  saved_functions jsonb;
  statement text;
BEGIN
  IF ai_cost_internal.calls_partitioned() THEN
    RAISE NOTICE 'ai_cost.calls is already partitioned: nothing to do';
    partitions := (SELECT count(*) FROM ai_cost.call_partitions);
    calls_copied := 0;
    duration_ms := 0;
    RETURN;
  END IF;
  LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE;
  old_table := 'ai_cost.calls'::regclass;
  SELECT reltype, relowner, relacl INTO old_type, table_owner, table_acl FROM pg_class WHERE oid = old_table;
  SELECT relrowsecurity AS enabled, relforcerowsecurity AS forced INTO rls FROM pg_class WHERE oid = old_table;
  table_comment := obj_description(old_table, 'pg_class');
  SELECT * INTO settings FROM ai_cost.partition_settings;

  -- A unique index that is not a constraint cannot be given created_at
  -- without knowing what it is for: refuse rather than guess.
  IF EXISTS (SELECT FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = old_table)) THEN
    RAISE EXCEPTION 'cannot partition ai_cost.calls: it has a unique index that is not a constraint (%)',
      (SELECT string_agg(i.indexrelid::regclass::text, ', ') FROM pg_index i WHERE i.indrelid = old_table AND i.indisunique)
      USING HINT = 'Drop it or make it a UNIQUE constraint, then run ai_cost.partition_calls() again.';
  END IF;

  -- Save what is recreated on the new table, as SQL that names
  -- ai_cost.calls, which the new table will be called by then.
  saved_indexes := ARRAY(
    SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
     WHERE i.indrelid = old_table AND NOT i.indisunique ORDER BY i.indexrelid);
  saved_constraints := ARRAY(
    SELECT format('ALTER TABLE ai_cost.calls ADD CONSTRAINT %I %s (%s)', c.conname,
                  CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.n)
                     FROM unnest(c.conkey || CASE WHEN 'created_at' = ANY (
                            SELECT attname FROM pg_attribute WHERE attrelid = old_table AND attnum = ANY (c.conkey))
                          THEN '{}'::int2[] ELSE ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = old_table AND attname = 'created_at')] END)
                          WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = old_table AND a.attnum = k.attnum))
      FROM pg_constraint c WHERE c.conrelid = old_table AND c.contype IN ('p', 'u') ORDER BY c.contype, c.oid);
  saved_triggers := ARRAY(
    SELECT s.sql FROM (
      SELECT 1 AS pass, t.tgname, pg_get_triggerdef(t.oid) AS sql
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal
      UNION ALL
      SELECT 2, t.tgname, format('COMMENT ON TRIGGER %I ON ai_cost.calls IS %L', t.tgname, obj_description(t.oid, 'pg_trigger'))
        FROM pg_trigger t WHERE t.tgrelid = old_table AND NOT t.tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NOT NULL
    ) AS s ORDER BY pass, tgname);
  saved_column_acls := coalesce((
    SELECT jsonb_agg(jsonb_build_object('name', a.attname, 'acl', a.attacl))
      FROM pg_attribute a WHERE a.attrelid = old_table AND a.attnum > 0 AND a.attacl IS NOT NULL), '[]');
  saved_policies := ARRAY(
    SELECT format('CREATE POLICY %I ON ai_cost.calls AS %s FOR %s TO %s%s%s', p.policyname, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE quote_ident(r) END, ', ') FROM unnest(p.roles) AS r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
      FROM pg_policies p WHERE p.schemaname = 'ai_cost' AND p.tablename = 'calls');
  -- Functions that take or return a calls row depend on the old row type:
  -- they are dropped with it and created again for the new one.
  saved_functions := coalesce((
    SELECT jsonb_agg(jsonb_build_object('definition', pg_get_functiondef(p.oid), 'signature', p.oid::regprocedure::text,
                                        'comment', obj_description(p.oid, 'pg_proc'), 'owner', p.proowner, 'acl', p.proacl))
      FROM pg_proc p
     WHERE p.oid IN (SELECT d.objid FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass
                        AND ((d.refclassid = 'pg_type'::regclass AND d.refobjid = old_type)
                          OR (d.refclassid = 'pg_class'::regclass AND d.refobjid = old_table)))), '[]');

  sequence_name := pg_get_serial_sequence('ai_cost.calls', 'id');
  EXECUTE format('SELECT last_value, is_called FROM %s', sequence_name) INTO sequence_last, sequence_called;

  CREATE TABLE ai_cost.calls_being_partitioned (
    LIKE ai_cost.calls INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY INCLUDING GENERATED
                       INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS
  ) PARTITION BY RANGE (created_at);
  CREATE TABLE ai_cost.calls_default PARTITION OF ai_cost.calls_being_partitioned DEFAULT;
  -- The window of months (ai_cost_internal.first_partition_month) from the
  -- month of the oldest call: older calls go to the default partition.
  FOR month_start IN
    SELECT m FROM generate_series(
      ai_cost_internal.first_partition_month(
        (SELECT date_trunc('month', min(created_at) AT TIME ZONE 'UTC') FROM ai_cost.calls), this_month, settings),
      this_month + make_interval(months => settings.months_ahead), interval '1 month') AS m
  LOOP
    EXECUTE format('CREATE TABLE ai_cost.%I PARTITION OF ai_cost.calls_being_partitioned FOR VALUES FROM (%L) TO (%L)',
                   ai_cost_internal.partition_name(month_start), month_start AT TIME ZONE 'UTC',
                   (month_start + interval '1 month') AT TIME ZONE 'UTC');
  END LOOP;

  -- No trigger on the new table yet: rows keep their cost, and the change
  -- capture does not see them again.
  INSERT INTO ai_cost.calls_being_partitioned OVERRIDING SYSTEM VALUE SELECT * FROM ai_cost.calls;
  GET DIAGNOSTICS calls_copied = ROW_COUNT;
  TRUNCATE ai_cost_internal.request_ids;
  INSERT INTO ai_cost_internal.request_ids (request_id, created_at)
  SELECT request_id, created_at FROM ai_cost.calls WHERE request_id IS NOT NULL;

  -- Swap. DROP without CASCADE: anything else that still depends on the old
  -- table (a view, say) stops the conversion here, naming itself.
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(signature text) LOOP
    EXECUTE format('DROP FUNCTION %s', item.signature);
  END LOOP;
  DROP TABLE ai_cost.calls;
  ALTER TABLE ai_cost.calls_being_partitioned RENAME TO calls;
  EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', pg_get_serial_sequence('ai_cost.calls', 'id'), 'calls_id_seq');
  -- The sequence as it was, drawn or not: the refresh reads the last id
  -- drawn from it (ai_cost_internal.last_drawn_call_id), which a sequence
  -- set but not drawn from does not tell.
  PERFORM setval('ai_cost.calls_id_seq', sequence_last, sequence_called);
  EXECUTE format('ALTER TABLE ai_cost.calls OWNER TO %s', table_owner::regrole);
  EXECUTE format('COMMENT ON TABLE ai_cost.calls IS %L', table_comment);
  PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, table_acl);
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_column_acls) AS c(name text, acl aclitem[]) LOOP
    PERFORM ai_cost_internal.restore_acl('TABLE', 'ai_cost.calls', table_owner, item.acl, item.name);
  END LOOP;

  FOREACH statement IN ARRAY saved_constraints || saved_indexes LOOP
    EXECUTE statement;
  END LOOP;
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(definition text, signature text, comment text, owner oid, acl aclitem[]) LOOP
    EXECUTE item.definition;
    EXECUTE format('ALTER FUNCTION %s OWNER TO %s', item.signature, item.owner::regrole);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', item.signature, item.comment);
    PERFORM ai_cost_internal.restore_acl('FUNCTION', item.signature, item.owner, item.acl);
  END LOOP;
  FOREACH statement IN ARRAY saved_triggers || saved_policies LOOP
    EXECUTE statement;
  END LOOP;
  IF rls.enabled THEN
    ALTER TABLE ai_cost.calls ENABLE ROW LEVEL SECURITY;
  END IF;
  IF rls.forced THEN
    ALTER TABLE ai_cost.calls FORCE ROW LEVEL SECURITY;
  END IF;

  -- Idempotency by ai_cost_internal.request_ids (see the top of this file).
  -- tg_calls__claim_request_id sorts before tg_calls__price_call, so a
  -- duplicate is skipped before it is priced.
  CREATE TRIGGER tg_calls__claim_request_id
    BEFORE INSERT ON ai_cost.calls
    FOR EACH ROW WHEN (NEW.request_id IS NOT NULL) EXECUTE FUNCTION ai_cost_internal.claim_request_id();
  CREATE TRIGGER tg_calls__move_request_id
    BEFORE UPDATE OF request_id, created_at ON ai_cost.calls
    FOR EACH ROW WHEN (OLD.request_id IS DISTINCT FROM NEW.request_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION ai_cost_internal.move_request_id();
  CREATE TRIGGER tg_calls__end_request_id_move
    AFTER UPDATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.end_request_id_move();
  CREATE TRIGGER tg_calls__release_request_ids
    AFTER DELETE ON ai_cost.calls REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();
  CREATE TRIGGER tg_calls__truncate_request_ids
    AFTER TRUNCATE ON ai_cost.calls
    FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.release_request_ids();

  UPDATE ai_cost_internal.partition_state SET maintained_at = now(), attempted_at = now(), last_error = NULL;
  partitions := (SELECT count(*) FROM ai_cost.call_partitions);
  duration_ms := round(extract(epoch FROM clock_timestamp() - started) * 1000, 1);
END
$$;
COMMENT ON FUNCTION ai_cost.partition_calls() IS 'Converts ai_cost.calls into a table partitioned by UTC month of created_at (opt-in; see docs/scaling.md): same columns, constraints, triggers, grants and rollups; idempotency by request_id kept. Locks ai_cost.calls for the duration of the copy. Write ON CONFLICT DO NOTHING (no target) afterwards. Does nothing if already partitioned.';

CREATE OR REPLACE FUNCTION ai_cost_internal.cluster_function_settings(OUT function regprocedure, OUT setting text, OUT value text)
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
    ('ai_cost_internal.capture_shard_call_changes()'::regprocedure, 'citus.enable_manual_changes_to_shards', 'on')
$$;
COMMENT ON FUNCTION ai_cost_internal.cluster_function_settings() IS 'Internal: the Citus setting each function of a distributed ledger needs, which ai_cost.distribute() gives it.';

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
    -- triggers of the table.
    DROP TRIGGER tg_calls__capture_updates ON ai_cost.calls;
    DROP TRIGGER tg_calls__capture_deletes ON ai_cost.calls;
    DROP TRIGGER tg_calls__truncate_rollups ON ai_cost.calls;
    PERFORM ai_cost_internal.create_shard_capture_triggers();
    EXECUTE 'SELECT create_distributed_table(''ai_cost.calls'', ''tenant_id'')';
    PERFORM ai_cost_internal.capture_changes_on_shards();
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

DROP FUNCTION ai_cost_internal.distribute_request_ids();
DROP FUNCTION ai_cost_internal.release_shard_request_ids();
DROP FUNCTION ai_cost_internal.move_shard_request_id();
DROP FUNCTION ai_cost_internal.claim_shard_request_id();
DROP FUNCTION ai_cost_internal.request_id_shard(tenant_id text);
