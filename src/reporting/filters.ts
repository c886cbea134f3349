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
  .refine((f) => !f.since || !f.until || f.since < f.until, { message: 'must be before until', path: ['since'] });

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

/** The instants a report covers: since inclusive, until exclusive, and what to call them. */
export interface ReportPeriod {
  since: Date;
  until: Date;
  /** "November 2026" for a calendar month, else the instants in UTC minutes. */
  label: string;
}

/** The UTC minutes of a window, "2026-11-01 00:00 to 2026-12-01 00:00 UTC". */
export function windowLabel(since: Date, until: Date): string {
  const minute = (at: Date) => at.toISOString().slice(0, 16).replace('T', ' ');
  return `${minute(since)} to ${minute(until)} UTC`;
}

/** The window the filters cover, with its defaults filled in. */
export function resolvePeriod(filters: ReportFilters = {}): ReportPeriod {
  const { since, until } = resolveFilters(filters);
  return { since, until, label: windowLabel(since, until) };
}

/**
 * A calendar month in UTC, written YYYY-MM (2026-11): from its first instant
 * to the first instant of the next month.
 */
export function monthPeriod(month: string): ReportPeriod {
  const parts = /^(\d{4})-(\d{2})$/.exec(month);
  const year = Number(parts?.[1]);
  const index = Number(parts?.[2]) - 1;
  if (!parts || year < 1 || index < 0 || index > 11) {
    throw new InvalidReportError(`'${month}' is not a month: write it as YYYY-MM, e.g. 2026-11`);
  }
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const start = (monthIndex: number) => new Date(new Date(0).setUTCFullYear(year, monthIndex, 1));
  const since = start(index);
  return { since, until: start(index + 1), label: since.toLocaleString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' }) };
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
