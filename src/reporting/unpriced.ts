import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';
import { filterCondition, resolveFilters, windowRows, type ReportFilters } from './filters.js';

export interface UnpricedModel {
  provider: string;
  model: string;
  serviceTier: string;
  /** Why the earliest of these calls has no cost, e.g. no price for the model in force at its time. */
  unpricedReason: string;
  /** How many other reasons the rest gave (a reason names the time a price was missing for). */
  otherReasons: number;
  unpricedCalls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** The UTC hours of the first and last such call in the window. */
  firstHour: Date;
  lastHour: Date;
}

/**
 * The models that left calls of the window without a cost: what
 * ai_cost.unpriced_models lists, bounded to a window and the report filters
 * so a period's list adds up to its unpriced call count, and one row per
 * provider, model and tier rather than per reason. Most calls first.
 */
export async function unpricedModels(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<UnpricedModel[]> {
  const f = resolveFilters(filters);
  const rows = await db.any(sql.type(z.object({
    provider: z.string(), model: z.string(), service_tier: z.string(), unpriced_reason: z.string(), other_reasons: z.number(),
    unpriced_calls: z.bigint(), input_tokens: z.bigint(), output_tokens: z.bigint(), first_hour: z.date(), last_hour: z.date(),
  }))`
    SELECT provider, model, service_tier,
           (pg_catalog.array_agg(unpriced_reason ORDER BY hour, unpriced_reason))[1] AS unpriced_reason,
           (pg_catalog.count(DISTINCT unpriced_reason) OPERATOR(pg_catalog.-) 1)::integer AS other_reasons,
           pg_catalog.sum(unpriced_calls)::bigint AS unpriced_calls,
           pg_catalog.sum(input_tokens)::bigint AS input_tokens,
           pg_catalog.sum(output_tokens)::bigint AS output_tokens,
           pg_catalog.min(hour) AS first_hour, pg_catalog.max(hour) AS last_hour
      FROM (SELECT r.hour, r.provider, r.model, r.service_tier, r.unpriced_reason,
                   pg_catalog.sum(r.unpriced_calls) AS unpriced_calls,
                   pg_catalog.sum(r.input_tokens) AS input_tokens, pg_catalog.sum(r.output_tokens) AS output_tokens
              FROM ${windowRows(f)}
             WHERE r.unpriced_reason IS NOT NULL AND ${filterCondition(f)}
             GROUP BY 1, 2, 3, 4, 5
            -- Pending changes hold a call's old reason with -1 until a refresh nets them out.
            HAVING pg_catalog.sum(r.unpriced_calls) OPERATOR(pg_catalog.<>) 0) AS h
     GROUP BY 1, 2, 3
     ORDER BY unpriced_calls DESC, provider, model, service_tier
  `);
  return rows.map((row) => ({
    provider: row.provider, model: row.model, serviceTier: row.service_tier, unpricedReason: row.unpriced_reason, otherReasons: row.other_reasons,
    unpricedCalls: row.unpriced_calls, inputTokens: row.input_tokens, outputTokens: row.output_tokens,
    firstHour: row.first_hour, lastHour: row.last_hour,
  }));
}
