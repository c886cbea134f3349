-- Up Migration
--
-- A dry run of a reprice shows what it would change in the charges to
-- tenants too, and counts every call a reprice would update (sql/ holds the
-- definition; this step brings the schema there). Its result gains columns,
-- so the function is created again, and granted again.

SET LOCAL check_function_bodies = off;

DROP FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean);

CREATE FUNCTION ai_cost.reprice_preview(
  from_time timestamptz, to_time timestamptz,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint, old_unpriced_calls bigint, new_unpriced_calls bigint,
                 rebilled bigint, billed_delta_micros numeric, newly_billed bigint, newly_billed_micros numeric,
                 no_longer_billed bigint, no_longer_billed_micros numeric)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.provider, c.model, count(*),
         -- What ai_cost.reprice_batch updates: a change of cost, price row,
         -- discount, reason or charge.
         count(*) FILTER (WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id
                             OR n.discount_id IS DISTINCT FROM c.discount_id
                             OR n.unpriced_reason IS DISTINCT FROM c.unpriced_reason
                             OR b.billed_micros IS DISTINCT FROM c.billed_micros OR b.markup_id IS DISTINCT FROM c.markup_id),
         sum(c.cost_micros), sum(n.cost_micros),
         coalesce(sum(n.cost_micros - c.cost_micros), 0),
         count(*) FILTER (WHERE c.cost_micros IS NULL AND n.cost_micros IS NOT NULL),
         count(*) FILTER (WHERE c.cost_micros IS NOT NULL AND n.cost_micros IS NULL),
         count(*) FILTER (WHERE c.cost_micros IS NULL), count(*) FILTER (WHERE n.cost_micros IS NULL),
         count(*) FILTER (WHERE b.billed_micros <> c.billed_micros),
         coalesce(sum(b.billed_micros - c.billed_micros), 0),
         count(*) FILTER (WHERE c.billed_micros IS NULL AND b.billed_micros IS NOT NULL),
         coalesce(sum(b.billed_micros) FILTER (WHERE c.billed_micros IS NULL), 0),
         count(*) FILTER (WHERE c.billed_micros IS NOT NULL AND b.billed_micros IS NULL),
         coalesce(sum(c.billed_micros) FILTER (WHERE b.billed_micros IS NULL), 0)
    FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
    LEFT JOIN LATERAL ai_cost_internal.billing_of(c.tenant_id, c.provider, c.model, n.price_id, c.status, c.created_at,
                                                  n.cost_micros, c.input_tokens, c.output_tokens) b ON true
   WHERE c.created_at >= reprice_preview.from_time AND c.created_at < reprice_preview.to_time
     AND (reprice_preview.provider IS NULL OR c.provider = reprice_preview.provider)
     AND (reprice_preview.model IS NULL OR c.model = reprice_preview.model)
     AND (NOT reprice_preview.only_unpriced OR c.cost_micros IS NULL)
   GROUP BY c.provider, c.model
   ORDER BY c.provider, c.model
$$;
COMMENT ON FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean) IS 'Dry run of a reprice: per provider/model, calls examined and changed (cost, price row, discount, reason or charge, as a reprice updates them); old and new cost, each the sum over the calls priced then (NULL when none is), with the unpriced calls counted beside them; delta over the calls priced both before and after; calls newly priced and newly unpriced; and the charges to tenants (billed_micros): calls re-billed with the delta, newly billed with what they would be charged, no longer billed with what they were. Writes nothing.';

SELECT ai_cost_internal.grant_roles();

-- Down Migration

SET LOCAL check_function_bodies = off;

DROP FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean);

CREATE FUNCTION ai_cost.reprice_preview(
  from_time timestamptz, to_time timestamptz,
  provider text DEFAULT NULL, model text DEFAULT NULL, only_unpriced boolean DEFAULT false
) RETURNS TABLE (provider text, model text, calls bigint, calls_changed bigint,
                 old_cost_micros numeric, new_cost_micros numeric, delta_micros numeric,
                 newly_priced bigint, newly_unpriced bigint, old_unpriced_calls bigint, new_unpriced_calls bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT c.provider, c.model, count(*),
         count(*) FILTER (WHERE n.cost_micros IS DISTINCT FROM c.cost_micros OR n.price_id IS DISTINCT FROM c.price_id),
         sum(c.cost_micros), sum(n.cost_micros),
         coalesce(sum(n.cost_micros - c.cost_micros), 0),
         count(*) FILTER (WHERE c.cost_micros IS NULL AND n.cost_micros IS NOT NULL),
         count(*) FILTER (WHERE c.cost_micros IS NOT NULL AND n.cost_micros IS NULL),
         count(*) FILTER (WHERE c.cost_micros IS NULL), count(*) FILTER (WHERE n.cost_micros IS NULL)
    FROM ai_cost.calls c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n
   WHERE c.created_at >= reprice_preview.from_time AND c.created_at < reprice_preview.to_time
     AND (reprice_preview.provider IS NULL OR c.provider = reprice_preview.provider)
     AND (reprice_preview.model IS NULL OR c.model = reprice_preview.model)
     AND (NOT reprice_preview.only_unpriced OR c.cost_micros IS NULL)
   GROUP BY c.provider, c.model
   ORDER BY c.provider, c.model
$$;
COMMENT ON FUNCTION ai_cost.reprice_preview(timestamptz, timestamptz, text, text, boolean) IS 'Dry run of a reprice: per provider/model, calls examined and changed; old and new cost, each the sum over the calls priced then (NULL when none is), with the unpriced calls counted beside them; delta over the calls priced both before and after; calls newly priced and newly unpriced. Writes nothing.';

SELECT ai_cost_internal.grant_roles();
