import { z } from 'zod';
import { sql, type CommonQueryMethods, type FragmentSqlToken } from 'slonik';
import { timestamptz } from '../db.js';
import type { Micros } from '../money.js';
import {
  DAY_MS, filterCondition, InvalidReportError, resolveFilters, windowRows,
  type ReportFilters, type ResolvedFilters,
} from './filters.js';

/**
 * Dashboard reads. Every figure comes from ai_cost.calls_between(), which
 * answers from the hourly rollups (plus the raw rows of the partial hours at
 * the window's edges): exact to the instant, without scanning all history.
 * Money is bigint micro-dollars; ratios and milliseconds are plain numbers.
 *
 * A cost is null when calls are behind it and none of them has a price: it
 * is unknown, not free. A partly priced cost is the sum over the priced calls,
 * with the unpriced calls counted beside it. A cost without any call is 0.
 *
 * These queries also run on pools of the user's, with whatever search_path
 * those have: every function, operator and type is named with its schema
 * (pg_catalog.sum, OPERATOR(pg_catalog./), ::pg_catalog.text), so no object
 * on a path a user controls can take part. nullif and IS DISTINCT FROM look
 * up = on the path and are not used.
 */

/** Dimensions a breakdown or a daily series can be split by, and the rollup column each reads. */
export const DIMENSIONS = {
  provider: sql.fragment`r.provider`,
  model: sql.fragment`r.model`,
  operation: sql.fragment`r.operation`,
  status: sql.fragment`r.status`,
  tier: sql.fragment`r.service_tier`,
  tenant: sql.fragment`r.tenant_id`,
  user: sql.fragment`r.user_id`,
  feature: sql.fragment`r.feature`,
  day: sql.fragment`pg_catalog.to_char(r.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  hour: sql.fragment`pg_catalog.to_char(r.hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:00"Z"')`,
} as const;

export type Dimension = keyof typeof DIMENSIONS;

export function isDimension(value: string): value is Dimension {
  return Object.hasOwn(DIMENSIONS, value);
}

function dimension(by: string): FragmentSqlToken {
  if (!isDimension(by)) {
    throw new InvalidReportError(`unknown dimension '${by}': use one of ${Object.keys(DIMENSIONS).join(', ')}`);
  }
  return DIMENSIONS[by];
}

/** Latency is measured on calls that reached the provider and worked. */
const MEASURED = sql.fragment`r.status OPERATOR(pg_catalog.=) 'success' AND NOT r.cached`;

// Ratios and averages are numeric in SQL, which arrives as a decimal string
// (createPool keeps numeric exact); they are plain numbers in the API.
const numberOrNull = (value: string | null) => (value === null ? null : Number(value));

/** The value, or NULL where it is 0: a divisor (nullif would look = up on the search_path). */
const nonZeroOrNull = (value: FragmentSqlToken) =>
  sql.fragment`(CASE WHEN ${value} OPERATOR(pg_catalog.<>) 0 THEN ${value} END)`;

/**
 * A money column of the rollup rows `r` aggregated, where a rollup row's sum
 * covers only its calls with a known amount and `uncounted` counts the
 * others: where every call is uncounted the amount is NULL (unknown), not
 * that sum's 0. Without any call it is 0.
 */
const knownSum = (sum: FragmentSqlToken, uncounted: FragmentSqlToken) =>
  sql.fragment`(CASE WHEN pg_catalog.sum(r.calls) OPERATOR(pg_catalog.>) 0
                 AND pg_catalog.sum(${uncounted}) OPERATOR(pg_catalog.=) pg_catalog.sum(r.calls) THEN NULL
            ELSE coalesce(pg_catalog.sum(${sum}), 0) END)::bigint`;

/** The cost: the sum over the priced calls, NULL when none is priced. */
const costColumn = knownSum(sql.fragment`r.cost_micros`, sql.fragment`r.unpriced_calls`);

/** What the calls were billed to tenants (ai_cost.markups): NULL when none is billed. */
const billedColumn = knownSum(sql.fragment`r.billed_micros`, sql.fragment`r.unbilled_calls`);

const totalsColumns = sql.fragment`
  coalesce(pg_catalog.sum(r.calls), 0)::bigint AS calls,
  coalesce(pg_catalog.sum(r.calls) FILTER (WHERE r.status OPERATOR(pg_catalog.=) 'success'), 0)::bigint AS successes,
  coalesce(pg_catalog.sum(r.calls) FILTER (WHERE r.status OPERATOR(pg_catalog.<>) 'success'), 0)::bigint AS failures,
  ${costColumn} AS cost_micros,
  coalesce(pg_catalog.sum(r.unpriced_calls), 0)::bigint AS unpriced_calls,
  coalesce(pg_catalog.sum(r.input_tokens), 0)::bigint AS input_tokens,
  coalesce(pg_catalog.sum(r.output_tokens), 0)::bigint AS output_tokens,
  ${billedColumn} AS billed_micros,
  coalesce(pg_catalog.sum(r.unbilled_calls), 0)::bigint AS unbilled_calls`;

const totalsShape = {
  calls: z.bigint(),
  successes: z.bigint(),
  failures: z.bigint(),
  cost_micros: z.bigint().nullable(),
  unpriced_calls: z.bigint(),
  input_tokens: z.bigint(),
  output_tokens: z.bigint(),
  billed_micros: z.bigint().nullable(),
  unbilled_calls: z.bigint(),
};

export interface Totals {
  calls: bigint;
  successes: bigint;
  /** Errors and cancellations: they count toward cost too. */
  failures: bigint;
  /** Sum over the priced calls; null when there are calls and none is priced (unknown, not free). */
  costMicros: Micros | null;
  /** Calls with no price: their cost is unknown and not in costMicros. */
  unpricedCalls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** What the billed calls were charged to their tenants (ai_cost.markups), never part of costMicros; null when none is billed. */
  billedMicros: Micros | null;
  /** Calls not billed: no markup covers them, or their cost is unknown. */
  unbilledCalls: bigint;
}

const totals = (row: z.infer<z.ZodObject<typeof totalsShape>>): Totals => ({
  calls: row.calls,
  successes: row.successes,
  failures: row.failures,
  costMicros: row.cost_micros,
  unpricedCalls: row.unpriced_calls,
  inputTokens: row.input_tokens,
  outputTokens: row.output_tokens,
  billedMicros: row.billed_micros,
  unbilledCalls: row.unbilled_calls,
});

export interface Summary extends Totals {
  since: Date;
  until: Date;
  cacheReadTokens: bigint;
  reasoningTokens: bigint;
  /** Successful provider calls only (app-cache hits excluded); null without any. */
  avgLatencyMs: number | null;
  p95LatencyMs: number | null;
}

/** The headline numbers of a window. */
export async function summary(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<Summary> {
  const f = resolveFilters(filters);
  const row = await db.one(sql.type(z.object({
    ...totalsShape,
    cache_read_tokens: z.bigint(),
    reasoning_tokens: z.bigint(),
    avg_ms: z.string().nullable(),
    p95_ms: z.number().nullable(),
  }))`
    SELECT ${totalsColumns},
           coalesce(pg_catalog.sum(r.cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(pg_catalog.sum(r.reasoning_tokens), 0)::bigint AS reasoning_tokens,
           pg_catalog.round(pg_catalog.sum(r.total_ms_sum) FILTER (WHERE ${MEASURED})
                 OPERATOR(pg_catalog./) ${nonZeroOrNull(sql.fragment`pg_catalog.sum(r.total_ms_calls) FILTER (WHERE ${MEASURED})`)})::pg_catalog.text AS avg_ms,
           ai_cost.histogram_percentile(ai_cost.histogram_merge(r.total_ms_hist) FILTER (WHERE ${MEASURED}), 0.95) AS p95_ms
      FROM ${windowRows(f)}
     WHERE ${filterCondition(f)}
  `);
  return {
    since: f.since,
    until: f.until,
    ...totals(row),
    cacheReadTokens: row.cache_read_tokens,
    reasoningTokens: row.reasoning_tokens,
    avgLatencyMs: numberOrNull(row.avg_ms),
    p95LatencyMs: row.p95_ms,
  };
}

export interface BreakdownRow extends Totals {
  /** The dimension's value; null for calls that did not set it (e.g. no tenant). */
  key: string | null;
  /** This row's part of the window's priced cost, 0..1; null when the row or the window has no priced cost. */
  shareOfCost: number | null;
}

/** Totals per value of one dimension, most expensive first, those of unknown cost last (by day or hour: in time order). */
export async function breakdown(
  db: CommonQueryMethods,
  by: Dimension,
  filters: ReportFilters = {},
  options: { limit?: number } = {},
): Promise<BreakdownRow[]> {
  const f = resolveFilters(filters);
  const key = dimension(by);
  const order = by === 'day' || by === 'hour'
    ? sql.fragment`key`
    : sql.fragment`cost_micros DESC NULLS LAST, calls DESC, key NULLS LAST`;
  const rows = await db.any(sql.type(z.object({ key: z.string().nullable(), share: z.string().nullable(), ...totalsShape }))`
    SELECT key, calls, successes, failures, cost_micros, unpriced_calls, input_tokens, output_tokens, billed_micros, unbilled_calls,
           pg_catalog.round(cost_micros OPERATOR(pg_catalog./) ${nonZeroOrNull(sql.fragment`pg_catalog.sum(cost_micros) OVER ()`)}, 6)::pg_catalog.text AS share
      FROM (SELECT ${key} AS key, ${totalsColumns}
              FROM ${windowRows(f)}
             WHERE ${filterCondition(f)}
             GROUP BY 1
            HAVING pg_catalog.sum(r.calls) OPERATOR(pg_catalog.<>) 0) AS g
     ORDER BY ${order}
     ${options.limit ? sql.fragment`LIMIT ${options.limit}` : sql.fragment``}
  `);
  return rows.map((row) => ({ key: row.key, shareOfCost: numberOrNull(row.share), ...totals(row) }));
}

export interface ModelSpend {
  provider: string;
  model: string;
  calls: bigint;
  /** Errors and cancellations: they count toward cost too. */
  failedCalls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** Sum over priced calls, in micro-dollars; null when none of the model's calls is priced (unknown, not free). */
  costMicros: Micros | null;
  /** Calls with no price in force: their cost is unknown, not zero. */
  unpricedCalls: bigint;
  /** What the billed calls were charged to their tenants (ai_cost.markups); null when none is billed. */
  billedMicros: Micros | null;
  /** Calls not billed: no markup covers them, or their cost is unknown. */
  unbilledCalls: bigint;
}

/**
 * Spend per provider and model, most expensive first and those of unknown
 * cost (no call priced) last: a model served by two
 * providers is two rows, since each bills at its own price. Every attempt
 * counts toward cost, failed ones included, because providers bill the
 * tokens a failed call consumed.
 */
export async function spendByModel(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<ModelSpend[]> {
  const f = resolveFilters(filters);
  const rows = await db.any(sql.type(z.object({ provider: z.string(), model: z.string(), ...totalsShape }))`
    SELECT r.provider, r.model, ${totalsColumns}
      FROM ${windowRows(f)}
     WHERE ${filterCondition(f)}
     GROUP BY 1, 2
    HAVING pg_catalog.sum(r.calls) OPERATOR(pg_catalog.<>) 0
     ORDER BY cost_micros DESC NULLS LAST, calls DESC, provider, model
  `);
  return rows.map((row) => ({
    provider: row.provider,
    model: row.model,
    calls: row.calls,
    failedCalls: row.failures,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    costMicros: row.cost_micros,
    unpricedCalls: row.unpriced_calls,
    billedMicros: row.billed_micros,
    unbilledCalls: row.unbilled_calls,
  }));
}

export interface DailyPoint {
  /** UTC date, YYYY-MM-DD. */
  day: string;
  /** Value of the split dimension, when one was asked for. */
  key: string | null;
  calls: bigint;
  /** Sum over the priced calls; null when none of the day's calls is priced. */
  costMicros: Micros | null;
  unpricedCalls: bigint;
}

/** Spend and calls per UTC day, optionally split by a dimension (e.g. model, for a stacked chart). */
export async function dailySeries(db: CommonQueryMethods, filters: ReportFilters = {}, splitBy?: Dimension): Promise<DailyPoint[]> {
  const f = resolveFilters(filters);
  const key = splitBy ? dimension(splitBy) : sql.fragment`NULL::pg_catalog.text`;
  const rows = await db.any(sql.type(z.object({
    day: z.string(), key: z.string().nullable(), calls: z.bigint(), cost_micros: z.bigint().nullable(), unpriced_calls: z.bigint(),
  }))`
    SELECT ${DIMENSIONS.day} AS day, ${key} AS key,
           pg_catalog.sum(r.calls)::bigint AS calls, ${costColumn} AS cost_micros,
           pg_catalog.sum(r.unpriced_calls)::bigint AS unpriced_calls
      FROM ${windowRows(f)}
     WHERE ${filterCondition(f)}
     GROUP BY 1, 2
    HAVING pg_catalog.sum(r.calls) OPERATOR(pg_catalog.<>) 0
     ORDER BY 1, 2
  `);
  return rows.map((row) => ({
    day: row.day, key: row.key, calls: row.calls, costMicros: row.cost_micros, unpricedCalls: row.unpriced_calls,
  }));
}

export interface LatencyRow {
  provider: string;
  model: string;
  /** Successful provider calls with a latency. */
  calls: bigint;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** Streamed calls with a time to first token. */
  streamedCalls: bigint;
  ttftP50Ms: number | null;
  ttftP95Ms: number | null;
}

/** Latency percentiles per model (successes, app-cache hits excluded), from the rollups' histograms (within 9%). */
export async function latencyByModel(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<LatencyRow[]> {
  const f = resolveFilters(filters);
  const rows = await db.any(sql.type(z.object({
    provider: z.string(), model: z.string(), calls: z.bigint(), streamed_calls: z.bigint(),
    p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable(),
    ttft_p50: z.number().nullable(), ttft_p95: z.number().nullable(),
  }))`
    SELECT provider, model, calls, streamed_calls,
           ai_cost.histogram_percentile(total_hist, 0.50) AS p50,
           ai_cost.histogram_percentile(total_hist, 0.95) AS p95,
           ai_cost.histogram_percentile(total_hist, 0.99) AS p99,
           ai_cost.histogram_percentile(ttft_hist, 0.50) AS ttft_p50,
           ai_cost.histogram_percentile(ttft_hist, 0.95) AS ttft_p95
      FROM (SELECT r.provider, r.model, pg_catalog.sum(r.total_ms_calls)::bigint AS calls, pg_catalog.sum(r.ttft_ms_calls)::bigint AS streamed_calls,
                   ai_cost.histogram_merge(r.total_ms_hist) AS total_hist, ai_cost.histogram_merge(r.ttft_ms_hist) AS ttft_hist
              FROM ${windowRows(f)}
             WHERE ${MEASURED} AND ${filterCondition(f)}
             GROUP BY 1, 2) AS m
     WHERE calls OPERATOR(pg_catalog.>) 0 OR streamed_calls OPERATOR(pg_catalog.>) 0
     ORDER BY calls DESC, provider, model
  `);
  return rows.map((row) => ({
    provider: row.provider, model: row.model, calls: row.calls, p50Ms: row.p50, p95Ms: row.p95, p99Ms: row.p99,
    streamedCalls: row.streamed_calls, ttftP50Ms: row.ttft_p50, ttftP95Ms: row.ttft_p95,
  }));
}

export interface Trends {
  /** Each cost is the sum over the priced calls of its period, null when calls are behind it and none is priced. */
  last7DaysMicros: Micros | null;
  last7DaysUnpricedCalls: bigint;
  previous7DaysMicros: Micros | null;
  previous7DaysUnpricedCalls: bigint;
  /** Relative change of the last 7 days against the 7 before; null when either is unknown or those cost nothing. */
  change7Days: number | null;
  monthToDateMicros: Micros | null;
  monthToDateUnpricedCalls: bigint;
  lastMonthMicros: Micros | null;
  lastMonthUnpricedCalls: bigint;
  /** Last month up to the same point in the month as now. */
  lastMonthToDateMicros: Micros | null;
  lastMonthToDateUnpricedCalls: bigint;
  /** Month to date extended linearly to the end of the (UTC) month; null when month to date is unknown. */
  projectedMonthMicros: Micros | null;
}

/** Spend trends up to now (the window of the filters is not used; the other filters are). */
export async function trends(db: CommonQueryMethods, filters: ReportFilters = {}): Promise<Trends> {
  const f = resolveFilters({ ...filters, since: undefined, until: undefined });
  const now = f.until;
  const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const elapsed = now.getTime() - monthStart.getTime();
  const periods = {
    last7: [new Date(now.getTime() - 7 * DAY_MS), now],
    previous7: [new Date(now.getTime() - 14 * DAY_MS), new Date(now.getTime() - 7 * DAY_MS)],
    monthToDate: [monthStart, now],
    lastMonth: [lastMonth, monthStart],
    lastMonthToDate: [lastMonth, new Date(Math.min(lastMonth.getTime() + elapsed, monthStart.getTime()))],
  } satisfies Record<string, [Date, Date]>;
  // One statement, so every period is read from the same snapshot.
  const rows = await db.any(sql.type(z.object({ period: z.string(), cost_micros: z.bigint().nullable(), unpriced_calls: z.bigint() }))`
    ${sql.join(Object.entries(periods).map(([period, [since, until]]) => sql.fragment`
      SELECT ${period}::pg_catalog.text AS period, ${costColumn} AS cost_micros,
             coalesce(pg_catalog.sum(r.unpriced_calls), 0)::bigint AS unpriced_calls
        FROM ${windowRows({ ...f, since, until })}
       WHERE ${filterCondition(f)}`), sql.fragment` UNION ALL `)}
  `);
  const spend = (period: keyof typeof periods) => rows.find((row) => row.period === period)!;
  const [l7, p7, mtd] = [spend('last7').cost_micros, spend('previous7').cost_micros, spend('monthToDate').cost_micros];
  const monthMs = BigInt(nextMonth.getTime() - monthStart.getTime());
  return {
    last7DaysMicros: l7,
    last7DaysUnpricedCalls: spend('last7').unpriced_calls,
    previous7DaysMicros: p7,
    previous7DaysUnpricedCalls: spend('previous7').unpriced_calls,
    change7Days: l7 === null || p7 === null || p7 === 0n ? null : Number(l7 - p7) / Number(p7),
    monthToDateMicros: mtd,
    monthToDateUnpricedCalls: spend('monthToDate').unpriced_calls,
    lastMonthMicros: spend('lastMonth').cost_micros,
    lastMonthUnpricedCalls: spend('lastMonth').unpriced_calls,
    lastMonthToDateMicros: spend('lastMonthToDate').cost_micros,
    lastMonthToDateUnpricedCalls: spend('lastMonthToDate').unpriced_calls,
    projectedMonthMicros: mtd === null ? null : elapsed > 0 ? (mtd * monthMs) / BigInt(elapsed) : mtd,
  };
}

export interface RecentCall {
  id: bigint;
  createdAt: Date;
  provider: string;
  model: string;
  operation: string;
  status: string;
  tenantId: string | null;
  userId: string | null;
  feature: string | null;
  inputTokens: bigint | null;
  outputTokens: bigint | null;
  /** null when unpriced; see unpricedReason. */
  costMicros: Micros | null;
  unpricedReason: string | null;
  totalMs: number | null;
}

/** The latest calls in the window, newest first. */
export async function recentCalls(db: CommonQueryMethods, filters: ReportFilters = {}, limit = 20): Promise<RecentCall[]> {
  const f = resolveFilters(filters);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new InvalidReportError('limit must be a whole number from 1 to 10000');
  const rows = await db.any(sql.type(z.object({
    id: z.bigint(), created_at: z.date(), provider: z.string(), model: z.string(), operation: z.string(),
    status: z.string(), tenant_id: z.string().nullable(), user_id: z.string().nullable(), feature: z.string().nullable(),
    input_tokens: z.bigint().nullable(), output_tokens: z.bigint().nullable(), cost_micros: z.bigint().nullable(),
    unpriced_reason: z.string().nullable(), total_ms: z.number().nullable(),
  }))`
    SELECT id, created_at, provider, model, operation, status, tenant_id, user_id, feature,
           input_tokens, output_tokens, cost_micros, unpriced_reason, total_ms
      FROM ai_cost.calls AS r
     WHERE r.created_at OPERATOR(pg_catalog.>=) ${timestamptz(f.since)} AND r.created_at OPERATOR(pg_catalog.<) ${timestamptz(f.until)}
       AND ${filterCondition(f)}
     ORDER BY r.created_at DESC, r.id DESC
     LIMIT ${limit}
  `);
  return rows.map((row) => ({
    id: row.id, createdAt: row.created_at, provider: row.provider, model: row.model, operation: row.operation,
    status: row.status, tenantId: row.tenant_id, userId: row.user_id, feature: row.feature,
    inputTokens: row.input_tokens, outputTokens: row.output_tokens, costMicros: row.cost_micros,
    unpricedReason: row.unpriced_reason, totalMs: row.total_ms,
  }));
}

export interface BudgetStatus {
  budgetId: bigint;
  name: string;
  scope: 'global' | 'tenant' | 'user' | 'feature';
  scopeValue: string | null;
  period: 'day' | 'week' | 'month';
  periodStart: Date;
  periodEnd: Date;
  limitMicros: Micros;
  /**
   * Spent so far: the sum over the period's priced calls. It and the figures
   * from it are null when the period has calls and none is priced (status
   * 'unknown'); the unpriced calls are counted beside it.
   */
  spentMicros: Micros | null;
  unpricedCalls: bigint;
  remainingMicros: Micros | null;
  usedPercent: number | null;
  projectedMicros: Micros | null;
  /** Highest alert threshold reached, in percent; null when none. */
  crossedPercent: number | null;
  status: 'ok' | 'warning' | 'exceeded' | 'unknown';
}

/** Every budget in its current period, most used first (those of unknown use last). */
export async function budgetStatus(db: CommonQueryMethods): Promise<BudgetStatus[]> {
  const rows = await db.any(sql.type(z.object({
    budget_id: z.bigint(), name: z.string(), scope: z.enum(['global', 'tenant', 'user', 'feature']),
    scope_value: z.string().nullable(), period: z.enum(['day', 'week', 'month']), period_start: z.date(),
    period_end: z.date(), limit_micros: z.bigint(), spent_micros: z.bigint().nullable(), unpriced_calls: z.bigint(),
    remaining_micros: z.bigint().nullable(), used_percent: z.string().nullable(), projected_micros: z.bigint().nullable(),
    crossed_percent: z.number().nullable(), status: z.enum(['ok', 'warning', 'exceeded', 'unknown']),
  }))`
    SELECT budget_id, name, scope, scope_value, period, period_start, period_end, limit_micros, spent_micros,
           unpriced_calls, remaining_micros, used_percent, projected_micros, crossed_percent, status
      FROM ai_cost.budget_status
     ORDER BY used_percent DESC NULLS LAST, name
  `);
  return rows.map((row) => ({
    budgetId: row.budget_id, name: row.name, scope: row.scope, scopeValue: row.scope_value, period: row.period,
    periodStart: row.period_start, periodEnd: row.period_end, limitMicros: row.limit_micros,
    spentMicros: row.spent_micros, unpricedCalls: row.unpriced_calls, remainingMicros: row.remaining_micros,
    usedPercent: numberOrNull(row.used_percent), projectedMicros: row.projected_micros,
    crossedPercent: row.crossed_percent, status: row.status,
  }));
}
