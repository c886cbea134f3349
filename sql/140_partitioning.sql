-- Opt-in monthly partitioning of ai_cost.calls, and retention of raw calls.
--
-- The install converts nothing: SELECT * FROM ai_cost.partition_calls() turns
-- ai_cost.calls into a table range-partitioned by created_at (one partition
-- per UTC month plus a default partition), when the owner chooses to. Why
-- opt-in (docs/scaling.md, "Partitioning on one server"):
--   - A unique constraint on a partitioned table must include the partition
--     key, so UNIQUE (request_id) cannot exist any more and
--     INSERT ... ON CONFLICT (request_id) DO NOTHING stops working: clients
--     write ON CONFLICT DO NOTHING (no target), which works in both modes.
--     Idempotency itself is kept: ai_cost_internal.request_ids, an
--     unpartitioned table keyed by request_id, is claimed by a BEFORE INSERT
--     trigger, and an insert whose request_id is already recorded is skipped
--     exactly as ON CONFLICT DO NOTHING would skip it.
--   - Converting rewrites the table under an exclusive lock: writers wait
--     for the copy (about 9 s per million calls on a small machine, see
--     docs/scaling.md). That is the owner's call to make, at a time of
--     their choosing.
--
-- Once partitioned, ai_cost.maintain_partitions() keeps a partition for
-- every month of a window: from the oldest partition (at most 60 months back,
-- never before the retention horizon) to months_ahead after the current one
-- (settings in ai_cost.partition_settings). Time and settings bound the
-- number of partitions; the dates in the rows never do: a call dated before
-- the window stays in the default partition, and one dated more than a day
-- ahead is refused on insert. It moves rows of a window month that landed in
-- the default partition into that month's partition, and applies the
-- retention setting: partitions older than retain_months, and default-
-- partition rows from before then, are dropped (or detached) only once no
-- call or change of their time range waits for the refresh
-- (ai_cost_internal.pending_changes), i.e. once the rollups hold them. Dropping a
-- partition fires no DELETE trigger, so the rollups keep the totals of the
-- dropped months: reports over them still work, drill-down to raw calls does
-- not. ai_cost.refresh() runs the maintenance once a day through a trigger on
-- its state table, so whatever schedules the refresh (the pg_cron job of
-- 160_schedule.sql, or your own scheduler) also keeps the partitions ahead.

CREATE TABLE ai_cost.partition_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  months_ahead integer NOT NULL DEFAULT 3,
  retain_months integer,
  retention text NOT NULL DEFAULT 'drop',
  CONSTRAINT "months_ahead must be from 1 to 24" CHECK (months_ahead BETWEEN 1 AND 24),
  CONSTRAINT "retain_months must be at least 1 (NULL keeps raw calls forever)" CHECK (retain_months >= 1),
  CONSTRAINT "retention must be drop or detach" CHECK (retention IN ('drop', 'detach'))
);

INSERT INTO ai_cost.partition_settings DEFAULT VALUES;
COMMENT ON TABLE ai_cost.partition_settings IS 'Settings for a partitioned ai_cost.calls (see ai_cost.partition_calls()): one row, change it with UPDATE. Read by ai_cost.maintain_partitions().';
COMMENT ON COLUMN ai_cost.partition_settings.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN ai_cost.partition_settings.months_ahead IS 'How many months after the current UTC month have a partition ready.';
COMMENT ON COLUMN ai_cost.partition_settings.retain_months IS 'Raw calls kept: the current UTC month and this many months before it. Older partitions are dropped or detached once the rollups hold them. NULL (default): keep every raw call.';
COMMENT ON COLUMN ai_cost.partition_settings.retention IS 'What happens to a partition past retain_months: drop (gone; the rollups keep its totals) or detach (it becomes a plain table, e.g. ai_cost.calls_2025_01, for you to archive and drop).';

CREATE TABLE ai_cost_internal.partition_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  maintained_at timestamptz,
  attempted_at timestamptz,
  last_error text
);

INSERT INTO ai_cost_internal.partition_state DEFAULT VALUES;
COMMENT ON TABLE ai_cost_internal.partition_state IS 'Internal: when partition maintenance last succeeded and last ran, and its last error.';

-- Every request_id of a partitioned ai_cost.calls, with its call's
-- created_at (so retention can forget the ids of the months it drops; a
-- BRIN index serves that range delete: ids arrive in time order, and the
-- index is a few pages where a btree would be as large as the table).
-- Empty and unused while ai_cost.calls is not partitioned.
CREATE TABLE ai_cost_internal.request_ids (
  request_id text PRIMARY KEY,
  created_at timestamptz NOT NULL
);

CREATE INDEX request_ids_created_at_idx ON ai_cost_internal.request_ids USING brin (created_at);
COMMENT ON TABLE ai_cost_internal.request_ids IS 'Internal: the request_id of every call of a partitioned ai_cost.calls, which cannot have UNIQUE (request_id) itself.';

-- BEFORE INSERT on a partitioned ai_cost.calls: claims the call's
-- request_id, or skips the row (RETURN NULL) when another call has it, as
-- ON CONFLICT (request_id) DO NOTHING did. A concurrent insert of the same id
-- waits on the primary key until the first commits, then is skipped. An
-- UPDATE that moves a call to another partition re-inserts it there; the
-- BEFORE UPDATE trigger below marks that id as moving, so it is not skipped.
-- SECURITY DEFINER: writers of calls need no rights on the internal table.
CREATE FUNCTION ai_cost_internal.claim_request_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO ai_cost_internal.request_ids (request_id, created_at)
  VALUES (NEW.request_id, NEW.created_at)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    RETURN NEW;
  END IF;
  IF current_setting('ai_cost.moving_request_id', true) = NEW.request_id THEN
    PERFORM set_config('ai_cost.moving_request_id', '', true);
    RETURN NEW;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.claim_request_id() IS 'Trigger: records the request_id of a call inserted into a partitioned ai_cost.calls, or skips the call when its request_id is already recorded.';

-- BEFORE UPDATE OF request_id, created_at: keeps the claim in step. A new
-- request_id that another call holds fails as UNIQUE (request_id) did.
CREATE FUNCTION ai_cost_internal.move_request_id() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF OLD.request_id IS NOT DISTINCT FROM NEW.request_id THEN
    UPDATE ai_cost_internal.request_ids SET created_at = NEW.created_at WHERE request_id = NEW.request_id;
  ELSE
    DELETE FROM ai_cost_internal.request_ids WHERE request_id = OLD.request_id;
    IF NEW.request_id IS NOT NULL THEN
      BEGIN
        INSERT INTO ai_cost_internal.request_ids (request_id, created_at) VALUES (NEW.request_id, NEW.created_at);
      EXCEPTION WHEN unique_violation THEN
        RAISE EXCEPTION 'duplicate key value violates unique constraint "calls_request_id_key"'
          USING ERRCODE = 'unique_violation', CONSTRAINT = 'calls_request_id_key', TABLE = 'calls',
                SCHEMA = 'ai_cost', DETAIL = format('Key (request_id)=(%s) already exists.', NEW.request_id);
      END;
    END IF;
  END IF;
  -- If the new created_at belongs to another partition, PostgreSQL deletes
  -- the row here and inserts it there, running the BEFORE INSERT trigger.
  PERFORM set_config('ai_cost.moving_request_id', coalesce(NEW.request_id, ''), true);
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.move_request_id() IS 'Trigger: follows a change of request_id or created_at of a call in a partitioned ai_cost.calls.';

-- After each UPDATE statement: forget the moving mark, so a later insert of
-- the same request_id in this transaction is a duplicate again.
CREATE FUNCTION ai_cost_internal.end_request_id_move() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM set_config('ai_cost.moving_request_id', '', true);
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.end_request_id_move() IS 'Trigger: clears the mark of a request_id being moved between partitions at the end of an UPDATE.';

-- After DELETE (statement, transition table): the deleted calls' ids are free again.
CREATE FUNCTION ai_cost_internal.release_request_ids() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    TRUNCATE ai_cost_internal.request_ids;
  ELSE
    DELETE FROM ai_cost_internal.request_ids r USING old_calls o WHERE r.request_id = o.request_id;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.release_request_ids() IS 'Trigger: frees the request_ids of calls deleted from (or truncated in) a partitioned ai_cost.calls.';

-- True when ai_cost.calls is range-partitioned.
CREATE FUNCTION ai_cost_internal.calls_partitioned() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce((SELECT relkind = 'p' FROM pg_catalog.pg_class WHERE oid = to_regclass('ai_cost.calls')), false)
$$;
COMMENT ON FUNCTION ai_cost_internal.calls_partitioned() IS 'Internal: whether ai_cost.calls is partitioned (ai_cost.partition_calls() was run).';

-- The rows and bytes of each partition of ai_cost.calls. On one server
-- the catalog has them. On a distributed ledger the coordinator's partitions
-- hold no rows and the shards hold the calls, so every node is asked once
-- for its shards of the calls (in one round, in parallel) and each
-- partition sums its shards; NULL when a node did not answer. PL/pgSQL, whose
-- body is read when it runs: a server without Citus lacks what the cluster's
-- branch names.
CREATE FUNCTION ai_cost_internal.partition_footprints(OUT partition regclass, OUT estimated_rows bigint,
                                                      OUT total_bytes bigint)
RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT ai_cost_internal.calls_are_distributed() THEN
    RETURN QUERY
    SELECT i.inhrelid::regclass, greatest(c.reltuples, 0)::bigint, pg_total_relation_size(i.inhrelid)
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = to_regclass('ai_cost.calls');
    RETURN;
  END IF;
  RETURN QUERY
  WITH answers AS (
    SELECT r.success, r.result
      FROM pg_catalog.run_command_on_all_nodes($node$
             SELECT coalesce(pg_catalog.jsonb_object_agg(pg_catalog.format('%I.%I', 'ai_cost', c.relname),
                               pg_catalog.jsonb_build_array(greatest(c.reltuples, 0)::bigint,
                                                            pg_catalog.pg_total_relation_size(c.oid))), '{}')
               FROM pg_catalog.pg_class c
              WHERE c.relnamespace OPERATOR(pg_catalog.=) 'ai_cost'::pg_catalog.regnamespace
                AND c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relname OPERATOR(pg_catalog.~~) 'calls\_%'
           $node$) r
  ), shards AS (
    SELECT s.key AS shard, (s.value ->> 0)::bigint AS estimated_rows, (s.value ->> 1)::bigint AS total_bytes
      FROM answers a CROSS JOIN LATERAL jsonb_each(a.result::jsonb) s
     WHERE a.success
  )
  SELECT i.inhrelid::regclass,
         CASE WHEN (SELECT bool_and(a.success) FROM answers a) THEN coalesce(sum(f.estimated_rows), 0)::bigint END,
         CASE WHEN (SELECT bool_and(a.success) FROM answers a) THEN coalesce(sum(f.total_bytes), 0)::bigint END
    FROM pg_catalog.pg_inherits i
    LEFT JOIN pg_catalog.pg_dist_shard d ON d.logicalrelid = i.inhrelid
    LEFT JOIN shards f ON f.shard = pg_catalog.shard_name(d.logicalrelid, d.shardid)
   WHERE i.inhparent = to_regclass('ai_cost.calls')
   GROUP BY i.inhrelid;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.partition_footprints() IS 'Internal: estimated rows and bytes on disk of each partition of ai_cost.calls, summed over its shards on a distributed ledger.';

-- The partitions of ai_cost.calls with their ranges, read from the catalog.
-- to_regclass at run time, not a regclass constant: converting replaces the
-- table, and a constant would keep pointing at the old one. The rows and
-- bytes are joined so that the planner drops the join from a query that
-- does not read them (as maintenance does, which must not ask the nodes of
-- a cluster for them from inside its transaction): one row per partition,
-- which the grouping proves. Listed by month, the default partition first.
CREATE VIEW ai_cost.call_partitions AS
SELECT c.oid::regclass AS partition,
       b.range_start,
       b.range_end,
       b.range_start IS NULL AS is_default,
       f.estimated_rows,
       f.total_bytes,
       CASE WHEN b.range_start IS NULL THEN 'default'
            WHEN s.retain_months IS NOT NULL
             AND b.range_end <= (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => s.retain_months)) AT TIME ZONE 'UTC'
            THEN 'past retention'
            ELSE 'kept' END AS retention
  FROM pg_catalog.pg_inherits i
  JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
 CROSS JOIN ai_cost.partition_settings s
  LEFT JOIN LATERAL (
    SELECT m[1]::timestamptz AS range_start, m[2]::timestamptz AS range_end
      FROM regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS m
  ) b ON true
  LEFT JOIN (SELECT p.partition, max(p.estimated_rows) AS estimated_rows, max(p.total_bytes) AS total_bytes
               FROM ai_cost_internal.partition_footprints() p
              GROUP BY p.partition) f ON f.partition = c.oid
 WHERE i.inhparent = to_regclass('ai_cost.calls')
 ORDER BY b.range_start NULLS FIRST;
COMMENT ON VIEW ai_cost.call_partitions IS 'Partitions of ai_cost.calls (empty until ai_cost.partition_calls() is run): the UTC month each holds, estimated rows, size on disk, and whether it is past the retention of ai_cost.partition_settings.';
COMMENT ON COLUMN ai_cost.call_partitions.partition IS 'The partition table, e.g. ai_cost.calls_2025_01 (not readable by BI logins: read ai_cost.calls).';
COMMENT ON COLUMN ai_cost.call_partitions.range_start IS 'First instant of the UTC month the partition holds (inclusive); NULL for the default partition.';
COMMENT ON COLUMN ai_cost.call_partitions.range_end IS 'First instant of the next UTC month (exclusive); NULL for the default partition.';
COMMENT ON COLUMN ai_cost.call_partitions.is_default IS 'True for the default partition, which holds calls outside every month range.';
COMMENT ON COLUMN ai_cost.call_partitions.estimated_rows IS 'Rows, as estimated by the planner statistics (0 before the first ANALYZE), summed over the shards on a distributed ledger; NULL when a node of the cluster did not answer.';
COMMENT ON COLUMN ai_cost.call_partitions.total_bytes IS 'Size on disk in bytes, indexes and TOAST included, summed over the shards on a distributed ledger; NULL when a node of the cluster did not answer.';
COMMENT ON COLUMN ai_cost.call_partitions.retention IS 'kept, past retention (older than ai_cost.partition_settings.retain_months: dropped or detached by ai_cost.maintain_partitions()), or default.';

-- Name of the partition of the UTC month starting at month_start.
CREATE FUNCTION ai_cost_internal.partition_name(month_start timestamp) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'calls_' || to_char(month_start, 'YYYY_MM')
$$;
COMMENT ON FUNCTION ai_cost_internal.partition_name(timestamp) IS 'Internal: calls_YYYY_MM, the name of a month''s partition.';

-- The first month of the window of months that have a partition of their
-- own; the window ends months_ahead after this one. It starts at `oldest`
-- (the month of the oldest partition, or of the oldest call when converting)
-- but never more than 60 months back, nor before the retention horizon. So
-- time and the settings bound how many partitions exist, never the dates of
-- rows: a call dated before the window waits in ai_cost.calls_default, and
-- retention removes it there once it is past the horizon. (Calls dated more
-- than a day ahead are refused on insert, 060_cost.sql.)
CREATE FUNCTION ai_cost_internal.first_partition_month(
  oldest timestamp, this_month timestamp, settings ai_cost.partition_settings
) RETURNS timestamp
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT greatest(least(coalesce(oldest, this_month), this_month),
                  this_month - interval '60 months',
                  this_month - make_interval(months => settings.retain_months))
$$;
COMMENT ON FUNCTION ai_cost_internal.first_partition_month(timestamp, timestamp, ai_cost.partition_settings) IS 'Internal: the first UTC month that gets a partition of its own: the oldest one given, at most 60 months back and not before the retention horizon.';

-- Adds the partition of one UTC month to the partitioned ai_cost.calls and
-- returns how many rows it took over from the default partition. The table
-- is built on its own, filled with that month's rows from the default
-- partition (deleted there directly: no statement trigger of ai_cost.calls
-- fires, so the rollups see no change, which is right: the calls stay), and
-- attached. ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on ai_cost.calls,
-- so inserts go on meanwhile. On a distributed ledger the attach distributes
-- it beside the calls, rows and all.
CREATE FUNCTION ai_cost_internal.add_month_partition(month_start timestamp) RETURNS bigint
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

-- Creates the missing partitions of the window of months (see
-- ai_cost_internal.first_partition_month), moving their rows out of the
-- default partition, and applies the retention of
-- ai_cost.partition_settings. One row per action taken. A partition past
-- retention is dropped or detached only when ai_cost_internal.pending_changes
-- holds no call or change of its time range (every one of its calls is in the
-- rollups); otherwise it is reported as waiting, and the next run (after
-- ai_cost.refresh()) takes it. Retention locks ai_cost.calls exclusively for
-- a moment; lock_timeout keeps a long query on calls from making inserts
-- queue behind that lock: the run fails instead and the next one retries.
CREATE FUNCTION ai_cost.maintain_partitions()
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

-- Re-applies a saved ACL (relacl, attacl or proacl) to a recreated table,
-- one of its columns, or a function. NULL means the default privileges,
-- which the new object has already.
CREATE FUNCTION ai_cost_internal.restore_acl(kind text, object text, owner oid, acl aclitem[], column_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  item record;
BEGIN
  IF acl IS NULL THEN
    RETURN;
  END IF;
  IF column_name IS NULL THEN
    EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', kind, object);
  END IF;
  FOR item IN SELECT * FROM aclexplode(acl) WHERE grantee <> owner LOOP
    EXECUTE format('GRANT %s%s ON %s %s TO %s%s', item.privilege_type,
                   CASE WHEN column_name IS NOT NULL THEN format(' (%I)', column_name) ELSE '' END, kind, object,
                   CASE WHEN item.grantee = 0 THEN 'PUBLIC' ELSE item.grantee::regrole::text END,
                   CASE WHEN item.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.restore_acl(text, text, oid, aclitem[], text) IS 'Internal: grants a saved access control list again on a recreated table, column or function.';

-- Converts ai_cost.calls into a table range-partitioned by month of
-- created_at (UTC), keeping everything clients and the rest of pg-ai-cost
-- rely on: columns, defaults, identity (ids continue), CHECK constraints,
-- comments, indexes, triggers (the cost trigger, the change capture of the
-- rollups), grants, row-level security policies, and the functions that take
-- a calls row. Primary key and unique constraints gain created_at, which a
-- partitioned table requires; UNIQUE (request_id) is replaced by
-- ai_cost_internal.request_ids and its triggers. Partitions: every month
-- from the oldest call's (at most 60 months back) to months_ahead after the
-- current one, and calls_default for any other time. Rows are copied as they are: costs are not recomputed and the
-- rollups see no change. One transaction under an exclusive lock on
-- ai_cost.calls: writers and readers wait until it commits. Run it as the
-- owner of ai_cost.calls.
CREATE FUNCTION ai_cost.partition_calls(
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

-- ai_cost.refresh() records each run in ai_cost_internal.refresh_state; this
-- trigger on it runs the partition maintenance when a day has passed since
-- the last success (10 minutes after a failure). So whatever runs the
-- refresh, the pg_cron job of 160_schedule.sql or your own scheduler, also keeps the
-- partitions ahead and applies retention, without a second schedule to set
-- up. A failure (a lock not granted within lock_timeout, say) is a WARNING
-- kept in the state, never a failed refresh.
CREATE FUNCTION ai_cost_internal.maintain_partitions_when_due() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF ai_cost_internal.calls_partitioned()
     AND EXISTS (SELECT FROM ai_cost_internal.partition_state s
                  WHERE (s.maintained_at IS NULL OR s.maintained_at < now() - interval '1 day')
                    AND (s.attempted_at IS NULL OR s.attempted_at < now() - interval '10 minutes')) THEN
    BEGIN
      PERFORM ai_cost.maintain_partitions();
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'ai_cost partition maintenance failed: %', SQLERRM
        USING HINT = 'It is retried in 10 minutes; run SELECT * FROM ai_cost.maintain_partitions() to see it.';
      UPDATE ai_cost_internal.partition_state SET attempted_at = now(), last_error = SQLERRM;
    END;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.maintain_partitions_when_due() IS 'Trigger: runs ai_cost.maintain_partitions() from ai_cost.refresh() once a day when ai_cost.calls is partitioned.';

CREATE TRIGGER tg_refresh_state__maintain_partitions
  AFTER UPDATE ON ai_cost_internal.refresh_state
  FOR EACH STATEMENT EXECUTE FUNCTION ai_cost_internal.maintain_partitions_when_due();

