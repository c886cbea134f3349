import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';
import { filterCondition, resolveFilters, type ReportFilters } from './reporting/filters.js';

export { DAY_MS } from './reporting/filters.js';

export interface ReportWindow {
  /** Inclusive start; default: 30 days before `until`. */
  since?: Date;
  /** Exclusive end; default: now. */
  until?: Date;
}

const spendRowSchema = z.object({
  provider: z.string(),
  model: z.string(),
  calls: z.bigint(),
  failed_calls: z.bigint(),
  input_tokens: z.bigint(),
  output_tokens: z.bigint(),
  cost_micros: z.bigint(),
  unpriced_calls: z.bigint(),
});

export interface ModelSpend {
  provider: string;
  model: string;
  calls: bigint;
  failedCalls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** Sum over priced calls, in micro-dollars. */
  costMicros: bigint;
  /** Calls with no price in force: their cost is unknown, not zero. */
  unpricedCalls: bigint;
}

/**
 * Spend per provider and model in a window (and filters), most expensive
 * first. Every attempt counts toward cost, failed ones included, because
 * providers bill the tokens a failed call consumed.
 */
export async function spendByModel(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<ModelSpend[]> {
  const resolved = resolveFilters(filters);
  const { since, until } = resolved;
  const rows = await db.any(sql.type(spendRowSchema)`
    SELECT provider, model,
           count(*)::bigint                                        AS calls,
           count(*) FILTER (WHERE status <> 'success')::bigint     AS failed_calls,
           coalesce(sum(input_tokens), 0)::bigint                  AS input_tokens,
           coalesce(sum(output_tokens), 0)::bigint                 AS output_tokens,
           coalesce(sum(cost_micros), 0)::bigint                   AS cost_micros,
           count(*) FILTER (WHERE cost_micros IS NULL)::bigint     AS unpriced_calls
      FROM ai_cost.calls AS r
     WHERE created_at >= ${sql.timestamp(since)} AND created_at < ${sql.timestamp(until)}
       AND ${filterCondition(resolved)}
     GROUP BY provider, model
     ORDER BY cost_micros DESC, calls DESC, provider, model
  `);
  return rows.map((row) => ({
    provider: row.provider,
    model: row.model,
    calls: row.calls,
    failedCalls: row.failed_calls,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costMicros: row.cost_micros,
    unpricedCalls: row.unpriced_calls,
  }));
}
