-- Up Migration
--
-- On a distributed ledger, the updates and deletes a refresh folded stayed
-- on the shards for every transaction open at the next refresh, though only
-- one holding a snapshot then can miss them: a transaction idle in READ
-- COMMITTED kept them too, up to ten collections. They are now kept only
-- for transactions that hold a snapshot. And ai_cost.refresh_status says
-- which open transactions keep them, and since when, so that ai-cost doctor
-- can point at them; a collection kept from before this step is dated by
-- it. (sql/ holds the definitions; this step brings the schema there.)

CREATE FUNCTION ai_cost_internal.shard_changes_kept(OUT kept_since timestamptz, OUT kept_for_pids integer[])
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT NULL::timestamptz, NULL::integer[]
$$;
COMMENT ON FUNCTION ai_cost_internal.shard_changes_kept() IS 'Internal: since when updates and deletes already folded are kept on the shards of a distributed ledger for open transactions, and their backends; NULL on one server and when none are kept for one.';

CREATE FUNCTION ai_cost_internal.transactions_holding_snapshots(OUT virtualxid text, OUT pid integer)
RETURNS SETOF record
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT l.virtualxid, l.pid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'virtualxid' AND l.mode = 'ExclusiveLock' AND l.granted
     AND a.datname = current_database() AND a.backend_xmin IS NOT NULL
$$;
COMMENT ON FUNCTION ai_cost_internal.transactions_holding_snapshots() IS 'Internal: the virtual transaction ids and backends of this database''s open transactions that hold a snapshot, which keep the changes of the collections they may not see on the shards of a distributed ledger.';

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

CREATE OR REPLACE FUNCTION ai_cost_internal.create_shard_collections_kept() RETURNS void
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

CREATE OR REPLACE FUNCTION ai_cost_internal.stamp_collected_shard_changes() RETURNS void
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

CREATE OR REPLACE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.pending_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes,
       (SELECT min(u.held_since) FROM ai_cost_internal.unfolded_ids u) AS held_back_since,
       (SELECT array_agg(DISTINCT l.pid ORDER BY l.pid) FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL
           AND l.virtualxid IN (SELECT unnest(u.writers) FROM ai_cost_internal.unfolded_ids u)) AS held_back_by_pids,
       k.kept_since AS shard_changes_kept_since,
       k.kept_for_pids AS shard_changes_kept_for_pids
  FROM ai_cost_internal.refresh_state s
 CROSS JOIN ai_cost_internal.shard_changes_kept() k;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many wait for the next run, how many it set aside (ai_cost.set_aside_calls), which open transactions hold calls back, and on a distributed ledger which keep folded changes on the shards.';
COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';
COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';
COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';
COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'New calls, updates and deletes the last refresh of the rollups folded in.';
COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'New calls, updates and deletes waiting for the next refresh (the live views already count them).';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded. On a distributed ledger a call updated or deleted while a refresh read it waits too, for the next refresh.';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_by_pids IS 'Process ids (pg_stat_activity.pid) of the open transactions that hold call ids back, as of the last refresh; their calls are folded by the first refresh after they end. NULL when none.';
COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';
COMMENT ON COLUMN ai_cost.refresh_status.shard_changes_kept_since IS 'On a distributed ledger: since when (the refresh that folded them) updates and deletes already folded have stayed on the shards for transactions still open, whose live views may still count them; every live view and refresh reads past them until those end, for ten refreshes that fold changes at most. NULL when none are kept for an open transaction, and on one server.';
COMMENT ON COLUMN ai_cost.refresh_status.shard_changes_kept_for_pids IS 'On a distributed ledger: process ids (pg_stat_activity.pid) of the open transactions for which folded updates and deletes stay on the shards. NULL when none.';

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
      ai_cost_internal.day_reading(timestamptz, timestamptz, timestamptz[]),
      ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables(), ai_cost_internal.cluster_function_settings(),
      ai_cost_internal.shard_changes(), ai_cost_internal.shard_changes_kept(), ai_cost_internal.partition_footprints(),
      ai_cost_internal.calls_are_distributed()
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
    -- On a ledger distributed over Citus, a reprice batch's audit rows are
    -- written by a statement over the distributed calls, and Citus draws
    -- their ids with nextval(), which needs USAGE on the sequence.
    GRANT USAGE ON SEQUENCE ai_cost.reprice_audit_id_seq TO ai_cost_admin;
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
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean),
      ai_cost_internal.reprice_preview_rows(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers(),
      ai_cost_internal.calls_are_distributed()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so. Before
    -- PostgreSQL 16, CREATEROLE grants membership in any role that is not a
    -- superuser instead, and gives no ADMIN OPTION on the roles it creates.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION')
         OR (pg_catalog.current_setting('server_version_num')::integer < 160000
             AND (SELECT r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
        -- Once: granting it again is a NOTICE on every migrate up.
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                        WHERE m.roleid = 'ai_cost_reader'::regrole AND m.member = 'ai_cost_admin'::regrole) THEN
          GRANT ai_cost_reader TO ai_cost_admin;
        END IF;
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

DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    ALTER TABLE ai_cost_internal.shard_collections_kept ADD COLUMN collected_at timestamptz NOT NULL DEFAULT now();
    COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.collected_at IS 'When the refresh that made the collection started.';
    COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.open_transactions IS 'Virtual transaction ids of the transactions that held a snapshot at the first refresh after the collection, NULL until then: every transaction whose snapshot may not see it. Its changes are deleted once none of them is open.';
    COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted once no transaction open is one that may hold a snapshot older than that collection (ai_cost_internal.shard_collections_kept).';
    PERFORM ai_cost_internal.create_shard_changes_kept_reader();
  END IF;
END
$$;

SELECT ai_cost_internal.grant_roles();

-- Down Migration

DO $$
BEGIN
  IF ai_cost_internal.calls_are_distributed() THEN
    ALTER TABLE ai_cost_internal.shard_collections_kept DROP COLUMN collected_at;
    COMMENT ON COLUMN ai_cost_internal.shard_collections_kept.open_transactions IS 'Virtual transaction ids of the transactions open at the first refresh after the collection, NULL until then: every transaction whose snapshot may not see it. Its changes are deleted once none of them is open.';
    COMMENT ON COLUMN ai_cost_internal.shard_call_changes.collected_by IS 'The collection that copied the change into ai_cost_internal.call_changes (ai_cost_internal.shard_changes_collected), NULL while it waits; deleted once no transaction that was open when that collection committed is (ai_cost_internal.shard_collections_kept).';
  END IF;
END
$$;

DROP VIEW ai_cost.refresh_status;
CREATE VIEW ai_cost.refresh_status AS
SELECT s.refreshed_at, s.views_refreshed_at, s.duration_ms, s.changes_applied,
       (SELECT count(*) FROM ai_cost_internal.pending_changes) AS pending_changes,
       (SELECT count(*) FROM ai_cost_internal.set_aside_changes) AS set_aside_changes,
       (SELECT min(u.held_since) FROM ai_cost_internal.unfolded_ids u) AS held_back_since,
       (SELECT array_agg(DISTINCT l.pid ORDER BY l.pid) FROM pg_catalog.pg_locks l
         WHERE l.locktype = 'virtualxid' AND l.pid IS NOT NULL
           AND l.virtualxid IN (SELECT unnest(u.writers) FROM ai_cost_internal.unfolded_ids u)) AS held_back_by_pids
  FROM ai_cost_internal.refresh_state s;
COMMENT ON VIEW ai_cost.refresh_status IS 'When ai_cost.refresh() last refreshed the rollups and the materialized views, how long the last run took, how many call changes it applied, how many wait for the next run, how many it set aside (ai_cost.set_aside_calls), and which open transactions hold calls back.';
COMMENT ON COLUMN ai_cost.refresh_status.refreshed_at IS 'When ai_cost.refresh() last brought the rollups up to date (NULL: never). The plain views are exact whatever this says.';
COMMENT ON COLUMN ai_cost.refresh_status.views_refreshed_at IS 'When ai_cost.refresh() last rebuilt the materialized views (mv_* and the views over them: spend_share, error_rate_by_model, error_rate_by_feature, latency_by_model, top_spenders, spend_trends); their figures are as of this instant. NULL: never.';
COMMENT ON COLUMN ai_cost.refresh_status.duration_ms IS 'How long the last ai_cost.refresh() took, in ms.';
COMMENT ON COLUMN ai_cost.refresh_status.changes_applied IS 'New calls, updates and deletes the last refresh of the rollups folded in.';
COMMENT ON COLUMN ai_cost.refresh_status.pending_changes IS 'New calls, updates and deletes waiting for the next refresh (the live views already count them).';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded. On a distributed ledger a call updated or deleted while a refresh read it waits too, for the next refresh.';
COMMENT ON COLUMN ai_cost.refresh_status.held_back_by_pids IS 'Process ids (pg_stat_activity.pid) of the open transactions that hold call ids back, as of the last refresh; their calls are folded by the first refresh after they end. NULL when none.';
COMMENT ON COLUMN ai_cost.refresh_status.set_aside_changes IS 'Call changes a refresh could not fold and set aside: left out of every rollup and report until retried (ai_cost.set_aside_calls).';

CREATE OR REPLACE FUNCTION ai_cost_internal.create_shard_collections_kept() RETURNS void
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
      ai_cost_internal.day_reading(timestamptz, timestamptz, timestamptz[]),
      ai_cost_internal.dimension_slices(timestamptz, timestamptz[], text[]),
      ai_cost_internal.user_slices(timestamptz, timestamptz[]),
      ai_cost_internal.unfolded_calls(), ai_cost_internal.calls_hourly_pending_between(timestamptz, timestamptz),
      ai_cost_internal.reference_tables(), ai_cost_internal.cluster_function_settings(),
      ai_cost_internal.shard_changes(), ai_cost_internal.partition_footprints(),
      ai_cost_internal.calls_are_distributed()
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
    -- On a ledger distributed over Citus, a reprice batch's audit rows are
    -- written by a statement over the distributed calls, and Citus draws
    -- their ids with nextval(), which needs USAGE on the sequence.
    GRANT USAGE ON SEQUENCE ai_cost.reprice_audit_id_seq TO ai_cost_admin;
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
      ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean),
      ai_cost_internal.reprice_preview_rows(timestamptz, timestamptz, text, text, boolean), ai_cost.backfill_unpriced(text),
      ai_cost_internal.wait_for_call_writers(), ai_cost_internal.call_writers(),
      ai_cost_internal.calls_are_distributed()
      TO ai_cost_admin;
    GRANT EXECUTE ON PROCEDURE
      ai_cost.reprice(timestamptz, timestamptz, text, text, text, boolean, integer), ai_cost.resume_reprice(bigint, integer)
      TO ai_cost_admin;
    PERFORM ai_cost_internal.grant_pricing_functions('ai_cost_admin');
    -- Membership needs ADMIN OPTION on the role, which a database owner that
    -- did not create it lacks (as on managed PostgreSQL): then say so. Before
    -- PostgreSQL 16, CREATEROLE grants membership in any role that is not a
    -- superuser instead, and gives no ADMIN OPTION on the roles it creates.
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'ai_cost_reader') THEN
      IF pg_catalog.pg_has_role('ai_cost_reader', 'USAGE WITH ADMIN OPTION')
         OR (pg_catalog.current_setting('server_version_num')::integer < 160000
             AND (SELECT r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
        -- Once: granting it again is a NOTICE on every migrate up.
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members m
                        WHERE m.roleid = 'ai_cost_reader'::regrole AND m.member = 'ai_cost_admin'::regrole) THEN
          GRANT ai_cost_reader TO ai_cost_admin;
        END IF;
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

DROP FUNCTION ai_cost_internal.create_shard_changes_kept_reader();
DROP FUNCTION ai_cost_internal.shard_changes_kept();
DROP FUNCTION ai_cost_internal.transactions_holding_snapshots();

SELECT ai_cost_internal.grant_roles();
