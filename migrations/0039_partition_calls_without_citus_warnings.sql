-- Up Migration
--
-- ai_cost.partition_calls() on a Citus coordinator, before the calls are
-- distributed, printed a Citus WARNING for each function that takes a calls
-- row as it created it again. It now creates them with DDL propagation off,
-- which keeps them on the coordinator as before, without the warnings (sql/
-- holds the definitions; this step brings the schema there).

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
  ddl_propagation text;
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
  -- On a Citus coordinator these functions stay on this node, as the
  -- install made them, since the calls are not distributed yet; with DDL
  -- propagation on, Citus would say so in a WARNING for each.
  ddl_propagation := current_setting('citus.enable_ddl_propagation', true);
  IF ddl_propagation IS NOT NULL THEN
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
  END IF;
  FOR item IN SELECT * FROM jsonb_to_recordset(saved_functions) AS f(definition text, signature text, comment text, owner oid, acl aclitem[]) LOOP
    EXECUTE item.definition;
    EXECUTE format('ALTER FUNCTION %s OWNER TO %s', item.signature, item.owner::regrole);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', item.signature, item.comment);
    PERFORM ai_cost_internal.restore_acl('FUNCTION', item.signature, item.owner, item.acl);
  END LOOP;
  IF ddl_propagation IS NOT NULL THEN
    PERFORM set_config('citus.enable_ddl_propagation', ddl_propagation, true);
  END IF;
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

-- Down Migration

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
