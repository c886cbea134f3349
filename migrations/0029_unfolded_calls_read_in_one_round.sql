-- Up Migration
--
-- ai_cost_internal.unfolded_calls_through() reads each range of ids by a
-- query of its own with its bounds as parameters, and no id above the last
-- one drawn: on a distributed ledger the live views ask the shards in one
-- round, where a query joining the local tables sent them to every worker
-- first, and nothing is read when no id was drawn since the last fold
-- (sql/090_rollups.sql holds the definition; this step brings the schema
-- there).

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint) RETURNS SETOF ai_cost_internal.call_changes
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

-- Down Migration

CREATE OR REPLACE FUNCTION ai_cost_internal.unfolded_calls_through(range_end bigint) RETURNS SETOF ai_cost_internal.call_changes
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  RETURN QUERY
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id, c.billed_micros
    FROM ai_cost.calls c
   WHERE c.id > (SELECT s.folded_through FROM ai_cost_internal.fold_state s) AND c.id <= range_end
  UNION ALL
  SELECT 1::smallint, c.created_at, c.provider, c.model, c.operation, c.status, c.service_tier, nullif(c.tenant_id, ''),
         c.user_id, c.feature, c.conversation_id, c.cached, c.streamed, c.unpriced_reason, c.cost_micros,
         c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens,
         c.ttft_ms, c.total_ms, c.id, c.billed_micros
    FROM ai_cost_internal.unfolded_ids u
    JOIN ai_cost.calls c ON c.id BETWEEN u.first_id AND least(u.last_id, range_end);
END
$$;
