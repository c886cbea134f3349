import { z } from 'zod';
import { sql, type FragmentSqlToken } from 'slonik';
import { timestamptz } from '../db.js';

export const DAY_MS = 24 * 60 * 60 * 1000;

const label = z.string().min(1).max(1_000);

/**
 * What a report covers: a time window (since inclusive, until exclusive;
 * default the 30 days up to now) and optional equality filters.
 */
export const reportFiltersSchema = z
  .object({
    since: z.date().optional(),
    until: z.date().optional(),
    tenantId: label.optional(),
    userId: label.optional(),
    provider: label.optional(),
    model: label.optional(),
    feature: label.optional(),
    status: z.enum(['success', 'error', 'cancelled']).optional(),
  })
  .strict()
  .refine((f) => !f.since || !f.until || f.since < f.until, { message: 'since must be before until', path: ['since'] });

export type ReportFilters = z.input<typeof reportFiltersSchema>;

export interface ResolvedFilters extends z.output<typeof reportFiltersSchema> {
  since: Date;
  until: Date;
}

/** Validates filters and fills in the default window (the 30 days up to now). */
export function resolveFilters(filters: ReportFilters = {}): ResolvedFilters {
  const parsed = reportFiltersSchema.safeParse(filters);
  if (!parsed.success) {
    throw new InvalidReportError(parsed.error.issues.map((i) => `${i.path.join('.') || 'filters'}: ${i.message}`).join('; '));
  }
  const until = parsed.data.until ?? new Date();
  return { ...parsed.data, since: parsed.data.since ?? new Date(until.getTime() - 30 * DAY_MS), until };
}

/** Report options that cannot work, e.g. an unknown dimension or since after until. */
export class InvalidReportError extends Error {
  override name = 'InvalidReportError';
}

/** The equality filters as a WHERE condition on a rollup-shaped (or calls) relation aliased `r`. */
export function filterCondition(filters: ResolvedFilters): FragmentSqlToken {
  const columns: Array<[string, string | undefined]> = [
    ['tenant_id', filters.tenantId],
    ['user_id', filters.userId],
    ['provider', filters.provider],
    ['model', filters.model],
    ['feature', filters.feature],
    ['status', filters.status],
  ];
  const conditions = columns
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([column, value]) => sql.fragment`${sql.identifier(['r', column])} OPERATOR(pg_catalog.=) ${value}`);
  return conditions.length ? sql.fragment`${sql.join(conditions, sql.fragment` AND `)}` : sql.fragment`true`;
}

/** Exact rollup rows for the window: ai_cost.calls_between, aliased `r`. */
export function windowRows(filters: ResolvedFilters): FragmentSqlToken {
  return sql.fragment`ai_cost.calls_between(${timestamptz(filters.since)}, ${timestamptz(filters.until)}) AS r`;
}
