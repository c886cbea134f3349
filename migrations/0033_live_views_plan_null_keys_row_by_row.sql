-- Up Migration
--
-- The NOT EXISTS inside an OR of the live dimension and per-user views,
-- which finds the pending keys with a NULL value that no rollup row has,
-- gets OFFSET 0: PostgreSQL then plans it row by row only, instead of
-- planning it hashed too and leaving out the plan it does not use. A
-- statement that read those views and the distributed calls together had
-- Citus 13.2.2's planner read that left-out plan and crash the coordinator
-- (sql/ holds the definitions; this step brings the schema there).

CREATE OR REPLACE VIEW ai_cost_internal.dimensions_daily_live AS
WITH pending AS (
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, v.dimension, v.value,
         sum(c.sign)::bigint AS calls,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'success'), 0)::bigint AS successes,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'error'), 0)::bigint AS errors,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'cancelled'), 0)::bigint AS cancelled,
         coalesce(sum(c.sign * c.cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(c.sign * c.cost_micros) FILTER (WHERE c.status = 'success'), 0)::bigint AS success_cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL AND c.status = 'success'), 0)::bigint AS unpriced_successes,
         coalesce(sum(c.sign * c.input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(c.sign * c.output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                        c.tenant_id, c.user_id, c.feature) AS v
   GROUP BY 1, v.dimension, v.value
)
SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.dimension, r.value,
       r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
       r.errors + coalesce(p.errors, 0) AS errors, r.cancelled + coalesce(p.cancelled, 0) AS cancelled,
       r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
       r.success_cost_micros + coalesce(p.success_cost_micros, 0) AS success_cost_micros,
       r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
       r.unpriced_successes + coalesce(p.unpriced_successes, 0) AS unpriced_successes,
       r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
       r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
  FROM ai_cost_internal.dimensions_daily r
  LEFT JOIN pending p
    ON p.day = r.day AND p.dimension = r.dimension AND coalesce(p.value, '') = coalesce(r.value, '')
   AND (p.value IS NULL) = (r.value IS NULL)
 WHERE r.calls + coalesce(p.calls, 0) <> 0
UNION ALL
SELECT (p.day AT TIME ZONE 'UTC')::date, p.dimension, p.value, p.calls, p.successes, p.errors, p.cancelled,
       p.cost_micros, p.success_cost_micros, p.unpriced_calls, p.unpriced_successes, p.input_tokens, p.output_tokens
  FROM pending p
 WHERE p.calls <> 0
   AND NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                    WHERE r.day = p.day AND r.dimension = p.dimension AND r.value = p.value)
   AND (p.value IS NOT NULL
        OR NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                        WHERE r.day = p.day AND r.dimension = p.dimension AND r.value IS NULL OFFSET 0));

CREATE OR REPLACE VIEW ai_cost.spend_daily_by_user AS
WITH pending AS (
  SELECT date_trunc('day', created_at, 'UTC') AS day, tenant_id, user_id,
         sum(sign)::bigint AS calls,
         coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
         coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes
   GROUP BY 1, tenant_id, user_id
)
SELECT day, tenant_id, user_id, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.tenant_id, r.user_id,
               r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
               r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
               r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
               r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
               r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
          FROM ai_cost_internal.users_daily r
          LEFT JOIN pending p
            ON p.day = r.day AND coalesce(p.tenant_id, '') = coalesce(r.tenant_id, '')
           AND (p.tenant_id IS NULL) = (r.tenant_id IS NULL)
           AND coalesce(p.user_id, '') = coalesce(r.user_id, '') AND (p.user_id IS NULL) = (r.user_id IS NULL)
        UNION ALL
        SELECT (p.day AT TIME ZONE 'UTC')::date, p.tenant_id, p.user_id, p.calls, p.successes, p.cost_micros,
               p.unpriced_calls, p.input_tokens, p.output_tokens
          FROM pending p
         WHERE NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                            WHERE r.day = p.day AND r.user_id = p.user_id AND r.tenant_id = p.tenant_id)
           AND (p.tenant_id IS NOT NULL AND p.user_id IS NOT NULL
                OR NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                                WHERE r.day = p.day AND r.user_id IS NOT DISTINCT FROM p.user_id
                                  AND r.tenant_id IS NOT DISTINCT FROM p.tenant_id OFFSET 0))) AS u
 WHERE calls <> 0;

-- Down Migration

CREATE OR REPLACE VIEW ai_cost_internal.dimensions_daily_live AS
WITH pending AS (
  SELECT date_trunc('day', c.created_at, 'UTC') AS day, v.dimension, v.value,
         sum(c.sign)::bigint AS calls,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'success'), 0)::bigint AS successes,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'error'), 0)::bigint AS errors,
         coalesce(sum(c.sign) FILTER (WHERE c.status = 'cancelled'), 0)::bigint AS cancelled,
         coalesce(sum(c.sign * c.cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(c.sign * c.cost_micros) FILTER (WHERE c.status = 'success'), 0)::bigint AS success_cost_micros,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(c.sign) FILTER (WHERE c.cost_micros IS NULL AND c.status = 'success'), 0)::bigint AS unpriced_successes,
         coalesce(sum(c.sign * c.input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(c.sign * c.output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes c
   CROSS JOIN LATERAL ai_cost_internal.dimension_values(c.provider, c.model, c.operation, c.service_tier,
                                                        c.tenant_id, c.user_id, c.feature) AS v
   GROUP BY 1, v.dimension, v.value
)
SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.dimension, r.value,
       r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
       r.errors + coalesce(p.errors, 0) AS errors, r.cancelled + coalesce(p.cancelled, 0) AS cancelled,
       r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
       r.success_cost_micros + coalesce(p.success_cost_micros, 0) AS success_cost_micros,
       r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
       r.unpriced_successes + coalesce(p.unpriced_successes, 0) AS unpriced_successes,
       r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
       r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
  FROM ai_cost_internal.dimensions_daily r
  LEFT JOIN pending p
    ON p.day = r.day AND p.dimension = r.dimension AND coalesce(p.value, '') = coalesce(r.value, '')
   AND (p.value IS NULL) = (r.value IS NULL)
 WHERE r.calls + coalesce(p.calls, 0) <> 0
UNION ALL
SELECT (p.day AT TIME ZONE 'UTC')::date, p.dimension, p.value, p.calls, p.successes, p.errors, p.cancelled,
       p.cost_micros, p.success_cost_micros, p.unpriced_calls, p.unpriced_successes, p.input_tokens, p.output_tokens
  FROM pending p
 WHERE p.calls <> 0
   AND NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                    WHERE r.day = p.day AND r.dimension = p.dimension AND r.value = p.value)
   AND (p.value IS NOT NULL
        OR NOT EXISTS (SELECT FROM ai_cost_internal.dimensions_daily r
                        WHERE r.day = p.day AND r.dimension = p.dimension AND r.value IS NULL));

CREATE OR REPLACE VIEW ai_cost.spend_daily_by_user AS
WITH pending AS (
  SELECT date_trunc('day', created_at, 'UTC') AS day, tenant_id, user_id,
         sum(sign)::bigint AS calls,
         coalesce(sum(sign) FILTER (WHERE status = 'success'), 0)::bigint AS successes,
         coalesce(sum(sign) FILTER (WHERE cost_micros IS NULL), 0)::bigint AS unpriced_calls,
         coalesce(sum(sign * cost_micros), 0)::bigint AS cost_micros,
         coalesce(sum(sign * input_tokens), 0)::bigint AS input_tokens,
         coalesce(sum(sign * output_tokens), 0)::bigint AS output_tokens
    FROM ai_cost_internal.pending_changes
   GROUP BY 1, tenant_id, user_id
)
SELECT day, tenant_id, user_id, calls, successes,
       CASE WHEN calls <> unpriced_calls THEN cost_micros END AS cost_micros,
       unpriced_calls, input_tokens, output_tokens
  FROM (SELECT (r.day AT TIME ZONE 'UTC')::date AS day, r.tenant_id, r.user_id,
               r.calls + coalesce(p.calls, 0) AS calls, r.successes + coalesce(p.successes, 0) AS successes,
               r.cost_micros + coalesce(p.cost_micros, 0) AS cost_micros,
               r.unpriced_calls + coalesce(p.unpriced_calls, 0) AS unpriced_calls,
               r.input_tokens + coalesce(p.input_tokens, 0) AS input_tokens,
               r.output_tokens + coalesce(p.output_tokens, 0) AS output_tokens
          FROM ai_cost_internal.users_daily r
          LEFT JOIN pending p
            ON p.day = r.day AND coalesce(p.tenant_id, '') = coalesce(r.tenant_id, '')
           AND (p.tenant_id IS NULL) = (r.tenant_id IS NULL)
           AND coalesce(p.user_id, '') = coalesce(r.user_id, '') AND (p.user_id IS NULL) = (r.user_id IS NULL)
        UNION ALL
        SELECT (p.day AT TIME ZONE 'UTC')::date, p.tenant_id, p.user_id, p.calls, p.successes, p.cost_micros,
               p.unpriced_calls, p.input_tokens, p.output_tokens
          FROM pending p
         WHERE NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                            WHERE r.day = p.day AND r.user_id = p.user_id AND r.tenant_id = p.tenant_id)
           AND (p.tenant_id IS NOT NULL AND p.user_id IS NOT NULL
                OR NOT EXISTS (SELECT FROM ai_cost_internal.users_daily r
                                WHERE r.day = p.day AND r.user_id IS NOT DISTINCT FROM p.user_id
                                  AND r.tenant_id IS NOT DISTINCT FROM p.tenant_id))) AS u
 WHERE calls <> 0;
