-- Up Migration
--
-- On a distributed ledger, an update or delete of a call not folded yet,
-- committed while a refresh was between collecting the changes captured on
-- the shards and reading the calls, was counted twice: once in the version
-- of the call the fold read, and once more by the next refresh, which
-- collected it after the call was folded. The fold now reads each call with
-- whether a change of it waits on its shard, in one query on their node,
-- and holds such a call for the next refresh (sql/ holds the definitions;
-- this step brings the schema there).

DROP FUNCTION ai_cost_internal.unfolded_calls_through(bigint);

CREATE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint, mark_changed boolean DEFAULT false)
RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_ids bigint[];
  last_ids bigint[];
BEGIN
  range_end := least(range_end, ai_cost_internal.last_drawn_call_id());
  SELECT array_agg(r.first_id), array_agg(r.last_id) INTO first_ids, last_ids
    FROM (SELECT s.folded_through + 1 AS first_id, range_end AS last_id FROM ai_cost_internal.fold_state s
          UNION ALL
          SELECT u.first_id, least(u.last_id, range_end) FROM ai_cost_internal.unfolded_ids u) r
   WHERE r.first_id <= r.last_id;
  -- Asked only for the fold: the live views run while 110_windowed_views.sql
  -- installs, before the function this asks exists.
  IF mark_changed THEN
    mark_changed := ai_cost_internal.calls_are_distributed();
  END IF;
  IF first_ids IS NULL THEN
    RETURN;
  END IF;
  IF mark_changed THEN
    -- The table this names exists on a distributed ledger only.
    RETURN QUERY
    SELECT CASE WHEN w.call_id IS NULL THEN 1 ELSE 0 END::smallint, c.created_at, c.provider, c.model, c.operation,
           c.status, c.service_tier, nullif(c.tenant_id, ''), c.user_id, c.feature, c.conversation_id, c.cached,
           c.streamed, c.unpriced_reason, c.cost_micros, c.input_tokens, c.output_tokens, c.cache_read_tokens,
           c.cache_write_tokens, c.reasoning_tokens, c.ttft_ms, c.total_ms, coalesce(c.id, w.call_id), c.billed_micros
      FROM (SELECT a.* FROM ai_cost.calls a
              JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON a.id BETWEEN r.first_id AND r.last_id) c
      FULL JOIN (SELECT DISTINCT s.tenant_id, s.call_id FROM ai_cost_internal.shard_call_changes s
                   JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON s.call_id BETWEEN r.first_id AND r.last_id) w
        ON w.tenant_id = c.tenant_id AND w.call_id = c.id;
  ELSE
    RETURN QUERY
    SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.id, c.billed_micros
      FROM ai_cost.calls c
      JOIN unnest(first_ids, last_ids) AS r(first_id, last_id) ON c.id BETWEEN r.first_id AND r.last_id;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls_through(bigint, boolean) IS 'Internal: the calls visible now, with ids up to range_end, that ai_cost.refresh() has not folded into the rollups yet, as additions (+1); with mark_changed, on a distributed ledger, those with a change waiting on their shard as sign 0 (held for the next refresh).';

DROP FUNCTION ai_cost_internal.fold_changes(tid[], bigint);

CREATE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint, OUT applied bigint,
                                              OUT set_aside bigint, OUT arrived_ids bigint[], OUT held_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  emptied_hourly tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end, true) u WHERE only_changes IS NULL
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived WHERE sign <> 0
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), delta AS (
    -- The hourly groups, each histogram built from the buckets of its changes.
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
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)) AS total_ms_hist,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL)) AS ttft_ms_hist,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, sum(sign),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0), coalesce(sum(sign * total_ms), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL))
      FROM folded
     GROUP BY 1, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    -- One pass over the hourly groups into a group per day and value of each
    -- dimension (GROUPING SETS), the pairs ai_cost_internal.dimension_values names.
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'),
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN 'provider' WHEN 31 THEN 'model' WHEN 111 THEN 'operation' WHEN 119 THEN 'service_tier'
                WHEN 123 THEN 'tenant' WHEN 125 THEN 'user' WHEN 95 THEN 'model_id' ELSE 'feature' END,
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN provider WHEN 31 THEN provider || '/' || model WHEN 111 THEN operation
                WHEN 119 THEN service_tier WHEN 123 THEN tenant_id WHEN 125 THEN user_id WHEN 95 THEN model
                ELSE feature END,
           sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta
     GROUP BY date_trunc('day', hour, 'UTC'),
              GROUPING SETS ((provider), (provider, model), (operation), (service_tier), (tenant_id), (user_id), (feature),
                            (model))
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM folded
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed) - (SELECT count(*) FROM aside),
         (SELECT count(*) FROM aside),
         (SELECT array_agg(a.call_id) FROM arrived a WHERE a.sign <> 0),
         (SELECT array_agg(a.call_id) FROM arrived a WHERE a.sign = 0),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, held_ids, emptied_hourly, emptied_users, emptied_conversations, emptied_models,
         emptied_features, emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls folded and of those held for the next refresh; run by ai_cost_internal.refresh_rollups().';

DROP FUNCTION ai_cost_internal.stage_unfolded_calls(bigint);

CREATE FUNCTION ai_cost_internal.stage_unfolded_calls(range_end bigint, OUT staged_ids bigint[], OUT held_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH dropped AS (
    DELETE FROM ai_cost_internal.call_changes t
     WHERE t.call_id > previous_through
        OR EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id)
  ), unfolded AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end, true) u
  ), staged AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT u.* FROM unfolded u WHERE u.sign <> 0
    RETURNING call_id
  )
  SELECT (SELECT array_agg(t.call_id) FROM staged t), (SELECT array_agg(u.call_id) FROM unfolded u WHERE u.sign = 0)
    INTO staged_ids, held_ids;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stage_unfolded_calls(bigint) IS 'Internal: copies the unfolded calls up to range_end into the change table for a fold part by part, dropping the changes of calls not folded yet; returns their ids, and those of the calls held for the next refresh.';

DROP FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[]);

CREATE FUNCTION ai_cost_internal.record_unfolded_ids(range_end bigint, open_writers text[], arrived_ids bigint[],
                                                     held_ids bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH spans AS (
    SELECT previous_through + 1 AS first_id, range_end AS last_id, open_writers AS writers, now() AS held_since
     WHERE range_end > previous_through AND cardinality(open_writers) > 0
    UNION ALL
    SELECT u.first_id, u.last_id, w.writers, u.held_since
      FROM ai_cost_internal.unfolded_ids u
     CROSS JOIN LATERAL (SELECT ARRAY(SELECT unnest(u.writers || 'next refresh'::text) INTERSECT SELECT unnest(open_writers)) AS writers) w
     WHERE cardinality(w.writers) > 0
  ), seen AS (
    -- The ids seen in each range, between its two edges.
    SELECT s.first_id AS span, a.id FROM spans s
      JOIN unnest(arrived_ids || held_ids) AS a(id) ON a.id BETWEEN s.first_id AND s.last_id
    UNION ALL
    SELECT s.first_id, s.first_id - 1 FROM spans s
    UNION ALL
    SELECT s.first_id, s.last_id + 1 FROM spans s
  ), holes AS (
    SELECT n.span, n.id + 1 AS first_id, n.next_id - 1 AS last_id
      FROM (SELECT e.span, e.id, lead(e.id) OVER (PARTITION BY e.span ORDER BY e.id) AS next_id FROM seen e) n
     WHERE n.next_id > n.id + 1
  ), held AS (
    SELECT min(r.id) AS first_id, max(r.id) AS last_id
      FROM (SELECT h.id, h.id - row_number() OVER (ORDER BY h.id) AS run FROM unnest(held_ids) AS h(id)) r
     GROUP BY r.run
  ), cleared AS (
    DELETE FROM ai_cost_internal.unfolded_ids
  )
  INSERT INTO ai_cost_internal.unfolded_ids (first_id, last_id, writers, held_since)
  SELECT h.first_id, h.last_id, s.writers, s.held_since FROM holes h JOIN spans s ON s.first_id = h.span
  UNION ALL
  SELECT h.first_id, h.last_id, ARRAY['next refresh'], now() FROM held h;
  UPDATE ai_cost_internal.fold_state SET folded_through = greatest(previous_through, range_end);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[], bigint[]) IS 'Internal: after a fold, records the ids it passed unseen that open writers may still fill and those of the calls it held, and moves folded_through to range_end.';

CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  fold_part_calls CONSTANT bigint :=
    greatest(coalesce(nullif(current_setting('ai_cost.fold_part_calls', true), '')::bigint, 1000000), 1);
  range_end bigint;
  part_end bigint;
  open_writers text[];
  arrived_ids bigint[];
  held_ids bigint[];
  part_applied bigint;
  part_set_aside bigint;
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
  applied := 0;
  set_aside := 0;
  LOOP
    part_end := range_end;
    IF range_end - (SELECT s.folded_through FROM ai_cost_internal.fold_state s) > fold_part_calls THEN
      -- From the lowest id above folded_through, so that a gap in the ids
      -- (a sequence moved on) is passed in one step.
      part_end := least(range_end, (SELECT min(c.id) FROM ai_cost.calls c
                                     WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s))
                                   + fold_part_calls - 1);
    END IF;
    BEGIN
      SELECT f.applied, f.set_aside, f.arrived_ids, f.held_ids INTO part_applied, part_set_aside, arrived_ids, held_ids
        FROM ai_cost_internal.fold_changes(NULL, part_end) AS f;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      SELECT s.staged_ids, s.held_ids INTO arrived_ids, held_ids FROM ai_cost_internal.stage_unfolded_calls(part_end) AS s;
      SELECT f.applied, f.set_aside INTO part_applied, part_set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
    END;
    PERFORM ai_cost_internal.record_unfolded_ids(part_end, open_writers, arrived_ids, held_ids);
    applied := applied + part_applied;
    set_aside := set_aside + part_set_aside;
    EXIT WHEN part_end >= range_end;
  END LOOP;

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

COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded. On a distributed ledger a call updated or deleted while a refresh read it waits too, for the next refresh.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

DROP FUNCTION ai_cost_internal.unfolded_calls_through(bigint, boolean);

CREATE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint) RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  first_ids bigint[];
  last_ids bigint[];
BEGIN
  range_end := least(range_end, ai_cost_internal.last_drawn_call_id());
  SELECT array_agg(r.first_id), array_agg(r.last_id) INTO first_ids, last_ids
    FROM (SELECT s.folded_through + 1 AS first_id, range_end AS last_id FROM ai_cost_internal.fold_state s
          UNION ALL
          SELECT u.first_id, least(u.last_id, range_end) FROM ai_cost_internal.unfolded_ids u) r
   WHERE r.first_id <= r.last_id;
  FOR range_number IN 1 .. coalesce(cardinality(first_ids), 0) LOOP
    RETURN QUERY
    SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.id, c.billed_micros
      FROM ai_cost.calls c
     WHERE c.id BETWEEN first_ids[range_number] AND last_ids[range_number];
  END LOOP;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.unfolded_calls_through(bigint) IS 'Internal: the calls visible now, with ids up to range_end, that ai_cost.refresh() has not folded into the rollups yet, as additions (+1).';

DROP FUNCTION ai_cost_internal.fold_changes(tid[], bigint);

CREATE FUNCTION ai_cost_internal.fold_changes(only_changes tid[], range_end bigint,
                                              OUT applied bigint, OUT set_aside bigint, OUT arrived_ids bigint[])
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET plan_cache_mode = force_custom_plan
                 SET work_mem = '64MB' SET enable_sort = off AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  emptied_hourly tid[];
  emptied_users tid[];
  emptied_conversations tid[];
  emptied_models tid[];
  emptied_features tid[];
  emptied_activity tid[];
  emptied_unpriced tid[];
  emptied_dimensions tid[];
BEGIN
  -- Only calls and changes committed before this statement started are
  -- visible, hence read; later ones stay for the next run. Every part sees
  -- the same rows.
  WITH taken AS (
    DELETE FROM ai_cost_internal.call_changes c
     WHERE only_changes IS NULL OR c.ctid = ANY (only_changes)
    RETURNING c.*
  ), arrived AS MATERIALIZED (
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end) u WHERE only_changes IS NULL
  ), changes AS (
    -- The same rule as ai_cost_internal.pending_changes: a change counts
    -- only for a call already folded.
    SELECT t.* FROM taken t
     WHERE only_changes IS NOT NULL OR t.call_id IS NULL
        OR (t.call_id <= previous_through
            AND NOT EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id))
    UNION ALL
    SELECT * FROM arrived
  ), consumed AS (
    SELECT c.*,
           CASE WHEN c.sign > 0 AND NOT (coalesce(c.cost_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.billed_micros, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.input_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.output_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_read_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.cache_write_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.reasoning_tokens, 0) BETWEEN 0 AND 10000000000
                                         AND coalesce(c.ttft_ms, 0) >= 0 AND coalesce(c.total_ms, 0) >= 0)
                THEN ai_cost_internal.ceiling_breach(ROW(c.*)::ai_cost_internal.call_changes) END AS refusal
      FROM changes c
  ), refused_calls AS (
    -- Calls with a change refused in this run or set aside in an earlier one:
    -- all their changes wait together. The set-aside table is looked at only when not empty.
    SELECT call_id FROM consumed WHERE refusal IS NOT NULL AND call_id IS NOT NULL
    UNION
    SELECT c.call_id FROM consumed c
     WHERE EXISTS (SELECT FROM ai_cost_internal.set_aside_changes)
       AND EXISTS (SELECT FROM ai_cost_internal.set_aside_changes s WHERE s.call_id = c.call_id)
  ), aside AS (
    INSERT INTO ai_cost_internal.set_aside_changes (sign, created_at, provider, model, operation, status, service_tier,
           tenant_id, user_id, feature, conversation_id, cached, streamed, unpriced_reason, cost_micros, input_tokens,
           output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, ttft_ms, total_ms, call_id,
           billed_micros, reason)
    SELECT c.sign, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, c.tenant_id,
           c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
           c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
           c.ttft_ms, c.total_ms, c.call_id, c.billed_micros,
           coalesce(c.refusal, format('call %s has another change set aside, to be folded with it', c.call_id))
      FROM consumed c
     WHERE c.refusal IS NOT NULL OR c.call_id IN (SELECT r.call_id FROM refused_calls r)
    RETURNING 1
  ), folded AS NOT MATERIALIZED (
    SELECT * FROM consumed c
     WHERE c.refusal IS NULL AND NOT EXISTS (SELECT FROM refused_calls r WHERE r.call_id = c.call_id)
  ), delta AS (
    -- The hourly groups, each histogram built from the buckets of its changes.
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
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)) AS total_ms_hist,
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0)::bigint AS ttft_ms_calls,
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0)::bigint AS ttft_ms_sum,
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL)) AS ttft_ms_hist,
           coalesce(sum(sign * billed_micros), 0)::bigint AS billed_micros,
           coalesce(sum(sign) FILTER (WHERE billed_micros IS NULL), 0)::bigint AS unbilled_calls
      FROM folded
     GROUP BY 1, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason
  ), hourly AS (
    INSERT INTO ai_cost.calls_hourly AS h
    SELECT * FROM delta
    ON CONFLICT (hour, provider, model, operation, status, service_tier, tenant_id, user_id, feature, cached, unpriced_reason)
    DO UPDATE SET
      calls = h.calls + excluded.calls,
      unpriced_calls = h.unpriced_calls + excluded.unpriced_calls,
      cost_micros = h.cost_micros + excluded.cost_micros,
      input_tokens = h.input_tokens + excluded.input_tokens,
      output_tokens = h.output_tokens + excluded.output_tokens,
      cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
      cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
      reasoning_tokens = h.reasoning_tokens + excluded.reasoning_tokens,
      total_ms_calls = h.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = h.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(h.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = h.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = h.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(h.ttft_ms_hist, excluded.ttft_ms_hist),
      billed_micros = h.billed_micros + excluded.billed_micros,
      unbilled_calls = h.unbilled_calls + excluded.unbilled_calls
    RETURNING h.ctid, h.calls
  ), users AS (
    INSERT INTO ai_cost_internal.users_daily AS u
    SELECT date_trunc('day', hour, 'UTC'), tenant_id, user_id, sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls), sum(cost_micros),
           sum(input_tokens), sum(output_tokens)
      FROM delta
     GROUP BY 1, tenant_id, user_id
    ON CONFLICT (day, user_id, tenant_id)
    DO UPDATE SET
      calls = u.calls + excluded.calls,
      successes = u.successes + excluded.successes,
      unpriced_calls = u.unpriced_calls + excluded.unpriced_calls,
      cost_micros = u.cost_micros + excluded.cost_micros,
      input_tokens = u.input_tokens + excluded.input_tokens,
      output_tokens = u.output_tokens + excluded.output_tokens
    RETURNING u.ctid, u.calls
  ), models AS (
    INSERT INTO ai_cost_internal.models_hourly AS m
    SELECT date_trunc('hour', created_at, 'UTC'), provider, model, status, cached, sum(sign),
           coalesce(sum(sign) FILTER (WHERE total_ms IS NOT NULL), 0), coalesce(sum(sign * total_ms), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(total_ms)) FILTER (WHERE total_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE total_ms IS NOT NULL)),
           coalesce(sum(sign) FILTER (WHERE streamed AND ttft_ms IS NOT NULL), 0),
           coalesce(sum(sign * ttft_ms) FILTER (WHERE streamed), 0),
           ai_cost_internal.histogram_apply(NULL,
             array_agg(ai_cost.latency_bucket(ttft_ms)) FILTER (WHERE streamed AND ttft_ms IS NOT NULL),
             array_agg(sign::bigint) FILTER (WHERE streamed AND ttft_ms IS NOT NULL))
      FROM folded
     GROUP BY 1, provider, model, status, cached
    ON CONFLICT (hour, provider, model, status, cached)
    DO UPDATE SET
      calls = m.calls + excluded.calls,
      total_ms_calls = m.total_ms_calls + excluded.total_ms_calls,
      total_ms_sum = m.total_ms_sum + excluded.total_ms_sum,
      total_ms_hist = ai_cost_internal.histogram_add(m.total_ms_hist, excluded.total_ms_hist),
      ttft_ms_calls = m.ttft_ms_calls + excluded.ttft_ms_calls,
      ttft_ms_sum = m.ttft_ms_sum + excluded.ttft_ms_sum,
      ttft_ms_hist = ai_cost_internal.histogram_add(m.ttft_ms_hist, excluded.ttft_ms_hist)
    RETURNING m.ctid, m.calls
  ), features AS (
    INSERT INTO ai_cost_internal.features_hourly AS f
    SELECT hour, feature, status, sum(calls) FROM delta GROUP BY hour, feature, status
    ON CONFLICT (hour, feature, status) DO UPDATE SET calls = f.calls + excluded.calls
    RETURNING f.ctid, f.calls
  ), activity AS (
    INSERT INTO ai_cost_internal.activity_hourly AS a
    SELECT hour, status, cached, sum(calls), sum(cost_micros), sum(input_tokens), sum(output_tokens),
           sum(unpriced_calls)
      FROM delta GROUP BY hour, status, cached
    ON CONFLICT (hour, status, cached)
    DO UPDATE SET
      calls = a.calls + excluded.calls,
      cost_micros = a.cost_micros + excluded.cost_micros,
      input_tokens = a.input_tokens + excluded.input_tokens,
      output_tokens = a.output_tokens + excluded.output_tokens,
      unpriced_calls = a.unpriced_calls + excluded.unpriced_calls
    RETURNING a.ctid, a.calls
  ), unpriced AS (
    -- Unpriced calls carry their reason in the key, so these groups hold
    -- unpriced calls only: calls here counts unpriced calls.
    INSERT INTO ai_cost_internal.unpriced_hourly AS n
    SELECT hour, provider, model, service_tier, unpriced_reason, sum(unpriced_calls), sum(input_tokens), sum(output_tokens)
      FROM delta WHERE unpriced_reason IS NOT NULL
     GROUP BY hour, provider, model, service_tier, unpriced_reason
    ON CONFLICT (hour, provider, model, service_tier, unpriced_reason)
    DO UPDATE SET
      calls = n.calls + excluded.calls,
      input_tokens = n.input_tokens + excluded.input_tokens,
      output_tokens = n.output_tokens + excluded.output_tokens
    RETURNING n.ctid, n.calls
  ), dimensions AS (
    -- One pass over the hourly groups into a group per day and value of each
    -- dimension (GROUPING SETS), the pairs ai_cost_internal.dimension_values names.
    INSERT INTO ai_cost_internal.dimensions_daily AS x
    SELECT date_trunc('day', hour, 'UTC'),
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN 'provider' WHEN 31 THEN 'model' WHEN 111 THEN 'operation' WHEN 119 THEN 'service_tier'
                WHEN 123 THEN 'tenant' WHEN 125 THEN 'user' WHEN 95 THEN 'model_id' ELSE 'feature' END,
           CASE GROUPING(provider, model, operation, service_tier, tenant_id, user_id, feature)
                WHEN 63 THEN provider WHEN 31 THEN provider || '/' || model WHEN 111 THEN operation
                WHEN 119 THEN service_tier WHEN 123 THEN tenant_id WHEN 125 THEN user_id WHEN 95 THEN model
                ELSE feature END,
           sum(calls),
           coalesce(sum(calls) FILTER (WHERE status = 'success'), 0), coalesce(sum(calls) FILTER (WHERE status = 'error'), 0),
           coalesce(sum(calls) FILTER (WHERE status = 'cancelled'), 0), sum(cost_micros),
           coalesce(sum(cost_micros) FILTER (WHERE status = 'success'), 0), sum(unpriced_calls),
           sum(input_tokens), sum(output_tokens),
           coalesce(sum(unpriced_calls) FILTER (WHERE status = 'success'), 0)
      FROM delta
     GROUP BY date_trunc('day', hour, 'UTC'),
              GROUPING SETS ((provider), (provider, model), (operation), (service_tier), (tenant_id), (user_id), (feature),
                            (model))
    ON CONFLICT (day, dimension, value)
    DO UPDATE SET
      calls = x.calls + excluded.calls,
      successes = x.successes + excluded.successes,
      errors = x.errors + excluded.errors,
      cancelled = x.cancelled + excluded.cancelled,
      cost_micros = x.cost_micros + excluded.cost_micros,
      success_cost_micros = x.success_cost_micros + excluded.success_cost_micros,
      unpriced_calls = x.unpriced_calls + excluded.unpriced_calls,
      input_tokens = x.input_tokens + excluded.input_tokens,
      output_tokens = x.output_tokens + excluded.output_tokens,
      unpriced_successes = x.unpriced_successes + excluded.unpriced_successes
    RETURNING x.ctid, x.calls
  ), conversations AS (
    INSERT INTO ai_cost.conversations_hourly AS c
    SELECT date_trunc('hour', created_at, 'UTC'), conversation_id, tenant_id, user_id,
           sum(sign), coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0),
           coalesce(sum(sign * cost_micros), 0), coalesce(sum(sign * input_tokens), 0),
           coalesce(sum(sign * output_tokens), 0)
      FROM folded
     WHERE conversation_id IS NOT NULL
     GROUP BY 1, conversation_id, tenant_id, user_id
    ON CONFLICT (hour, conversation_id, tenant_id, user_id)
    DO UPDATE SET
      calls = c.calls + excluded.calls,
      unpriced_calls = c.unpriced_calls + excluded.unpriced_calls,
      cost_micros = c.cost_micros + excluded.cost_micros,
      input_tokens = c.input_tokens + excluded.input_tokens,
      output_tokens = c.output_tokens + excluded.output_tokens
    RETURNING c.ctid, c.calls
  )
  SELECT (SELECT count(*) FROM consumed) - (SELECT count(*) FROM aside),
         (SELECT count(*) FROM aside),
         (SELECT array_agg(a.call_id) FROM arrived a),
         (SELECT array_agg(ctid) FROM hourly WHERE calls = 0),
         (SELECT array_agg(ctid) FROM users WHERE calls = 0),
         (SELECT array_agg(ctid) FROM conversations WHERE calls = 0),
         (SELECT array_agg(ctid) FROM models WHERE calls = 0),
         (SELECT array_agg(ctid) FROM features WHERE calls = 0),
         (SELECT array_agg(ctid) FROM activity WHERE calls = 0),
         (SELECT array_agg(ctid) FROM unpriced WHERE calls = 0),
         (SELECT array_agg(ctid) FROM dimensions WHERE calls = 0)
    INTO applied, set_aside, arrived_ids, emptied_hourly, emptied_users, emptied_conversations, emptied_models, emptied_features,
         emptied_activity, emptied_unpriced, emptied_dimensions;

  -- The addresses stay valid: this transaction updated those rows last and
  -- holds their locks, and the refresh lock keeps other refreshes out.
  IF emptied_hourly IS NOT NULL THEN
    DELETE FROM ai_cost.calls_hourly WHERE ctid = ANY (emptied_hourly) AND calls = 0;
  END IF;
  IF emptied_users IS NOT NULL THEN
    DELETE FROM ai_cost_internal.users_daily WHERE ctid = ANY (emptied_users) AND calls = 0;
  END IF;
  IF emptied_conversations IS NOT NULL THEN
    DELETE FROM ai_cost.conversations_hourly WHERE ctid = ANY (emptied_conversations) AND calls = 0;
  END IF;
  IF emptied_models IS NOT NULL THEN
    DELETE FROM ai_cost_internal.models_hourly WHERE ctid = ANY (emptied_models) AND calls = 0;
  END IF;
  IF emptied_features IS NOT NULL THEN
    DELETE FROM ai_cost_internal.features_hourly WHERE ctid = ANY (emptied_features) AND calls = 0;
  END IF;
  IF emptied_activity IS NOT NULL THEN
    DELETE FROM ai_cost_internal.activity_hourly WHERE ctid = ANY (emptied_activity) AND calls = 0;
  END IF;
  IF emptied_unpriced IS NOT NULL THEN
    DELETE FROM ai_cost_internal.unpriced_hourly WHERE ctid = ANY (emptied_unpriced) AND calls = 0;
  END IF;
  IF emptied_dimensions IS NOT NULL THEN
    DELETE FROM ai_cost_internal.dimensions_daily WHERE ctid = ANY (emptied_dimensions) AND calls = 0;
  END IF;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.fold_changes(tid[], bigint) IS 'Internal: folds the unfolded calls up to range_end and the changes of folded calls (or the changes at the given addresses) into the rollups, sets aside those that must not be folded, and returns the ids of the calls read; run by ai_cost_internal.refresh_rollups().';

DROP FUNCTION ai_cost_internal.stage_unfolded_calls(bigint);

CREATE FUNCTION ai_cost_internal.stage_unfolded_calls(range_end bigint) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
  staged_ids bigint[];
BEGIN
  WITH dropped AS (
    DELETE FROM ai_cost_internal.call_changes t
     WHERE t.call_id > previous_through
        OR EXISTS (SELECT FROM ai_cost_internal.unfolded_ids u WHERE t.call_id BETWEEN u.first_id AND u.last_id)
  ), staged AS (
    INSERT INTO ai_cost_internal.call_changes
    SELECT u.* FROM ai_cost_internal.unfolded_calls_through(range_end) u
    RETURNING call_id
  )
  SELECT array_agg(call_id) INTO staged_ids FROM staged;
  RETURN staged_ids;
END
$$;
COMMENT ON FUNCTION ai_cost_internal.stage_unfolded_calls(bigint) IS 'Internal: copies the unfolded calls up to range_end into the change table for a fold part by part, dropping the changes of calls not folded yet; returns their ids.';

DROP FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[], bigint[]);

CREATE FUNCTION ai_cost_internal.record_unfolded_ids(range_end bigint, open_writers text[], arrived_ids bigint[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  previous_through bigint := (SELECT s.folded_through FROM ai_cost_internal.fold_state s);
BEGIN
  WITH spans AS (
    SELECT previous_through + 1 AS first_id, range_end AS last_id, open_writers AS writers, now() AS held_since
     WHERE range_end > previous_through AND cardinality(open_writers) > 0
    UNION ALL
    SELECT u.first_id, u.last_id, w.writers, u.held_since
      FROM ai_cost_internal.unfolded_ids u
     CROSS JOIN LATERAL (SELECT ARRAY(SELECT unnest(u.writers || 'next refresh'::text) INTERSECT SELECT unnest(open_writers)) AS writers) w
     WHERE cardinality(w.writers) > 0
  ), seen AS (
    -- The ids seen in each range, between its two edges.
    SELECT s.first_id AS span, a.id FROM spans s JOIN unnest(arrived_ids) AS a(id) ON a.id BETWEEN s.first_id AND s.last_id
    UNION ALL
    SELECT s.first_id, s.first_id - 1 FROM spans s
    UNION ALL
    SELECT s.first_id, s.last_id + 1 FROM spans s
  ), holes AS (
    SELECT n.span, n.id + 1 AS first_id, n.next_id - 1 AS last_id
      FROM (SELECT e.span, e.id, lead(e.id) OVER (PARTITION BY e.span ORDER BY e.id) AS next_id FROM seen e) n
     WHERE n.next_id > n.id + 1
  ), cleared AS (
    DELETE FROM ai_cost_internal.unfolded_ids
  )
  INSERT INTO ai_cost_internal.unfolded_ids (first_id, last_id, writers, held_since)
  SELECT h.first_id, h.last_id, s.writers, s.held_since FROM holes h JOIN spans s ON s.first_id = h.span;
  UPDATE ai_cost_internal.fold_state SET folded_through = greatest(previous_through, range_end);
END
$$;
COMMENT ON FUNCTION ai_cost_internal.record_unfolded_ids(bigint, text[], bigint[]) IS 'Internal: after a fold, records the ids it passed unseen that open writers may still fill, and moves folded_through to range_end.';

CREATE OR REPLACE FUNCTION ai_cost_internal.refresh_rollups(OUT applied bigint, OUT set_aside bigint, OUT alerts bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  fold_part_calls CONSTANT bigint :=
    greatest(coalesce(nullif(current_setting('ai_cost.fold_part_calls', true), '')::bigint, 1000000), 1);
  range_end bigint;
  part_end bigint;
  open_writers text[];
  arrived_ids bigint[];
  part_applied bigint;
  part_set_aside bigint;
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
  applied := 0;
  set_aside := 0;
  LOOP
    part_end := range_end;
    IF range_end - (SELECT s.folded_through FROM ai_cost_internal.fold_state s) > fold_part_calls THEN
      -- From the lowest id above folded_through, so that a gap in the ids
      -- (a sequence moved on) is passed in one step.
      part_end := least(range_end, (SELECT min(c.id) FROM ai_cost.calls c
                                     WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s))
                                   + fold_part_calls - 1);
    END IF;
    BEGIN
      SELECT f.applied, f.set_aside, f.arrived_ids INTO part_applied, part_set_aside, arrived_ids
        FROM ai_cost_internal.fold_changes(NULL, part_end) AS f;
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
      arrived_ids := ai_cost_internal.stage_unfolded_calls(part_end);
      SELECT f.applied, f.set_aside INTO part_applied, part_set_aside FROM ai_cost_internal.fold_changes_apart() AS f;
    END;
    PERFORM ai_cost_internal.record_unfolded_ids(part_end, open_writers, arrived_ids);
    applied := applied + part_applied;
    set_aside := set_aside + part_set_aside;
    EXIT WHEN part_end >= range_end;
  END LOOP;

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

COMMENT ON COLUMN ai_cost.refresh_status.held_back_since IS 'Since when (the refresh that first passed them) call ids have waited for transactions that were writing calls and could still commit some there; NULL when nothing waits. Only those transactions'' own calls wait: every call committed around them is folded. On a distributed ledger a call updated or deleted while a refresh read it waits too, for the next refresh.';

SELECT ai_cost_internal.grant_roles();
