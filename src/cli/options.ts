import { InvalidArgumentError, Option } from 'commander';
import { DAY_MS } from '../reporting/filters.js';

/** --database-url, shared by every command that talks to a database. */
export const databaseUrlOption = () =>
  new Option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL)');

const UNIT_MS: Record<string, number> = { m: 60_000, h: DAY_MS / 24, d: DAY_MS, w: 7 * DAY_MS };

/**
 * Parses an ISO date/time, `now`, or a relative `<n>m`, `<n>h`, `<n>d` or
 * `<n>w` (that long before now). A date/time without a zone is UTC, as every
 * time pg-ai-cost shows is: Date would read it in the machine's zone.
 */
export function parseWhen(value: string): Date {
  if (value === 'now') return new Date();
  const relative = /^(\d+)([mhdw])$/.exec(value);
  if (relative) return new Date(Date.now() - Number(relative[1]) * UNIT_MS[relative[2]!]!);
  const zoneless = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$/.exec(value);
  const date = new Date(zoneless ? `${zoneless[1]}T${zoneless[2]}Z` : value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError(`'${value}' is not a date, a time, now or e.g. 30m, 12h, 7d, 2w`);
  if (!isCalendarDay(value)) throw new InvalidArgumentError(`'${value}' is not a day of the calendar`);
  return date;
}

/** A report's --since: as parseWhen, but never now, from which a window ending now holds no call. */
export function parseSince(value: string): Date {
  if (/^(now|0+[mhdw])$/.test(value)) {
    throw new InvalidArgumentError(`'${value}' is now, and the window ends now: give a time before, e.g. 30m, 12h, 7d, 2w or a date`);
  }
  return parseWhen(value);
}

/** Whether the YYYY-MM-DD a value starts with (if it does) is a real day: Date reads 2026-02-30 as March 2. */
function isCalendarDay(value: string): boolean {
  const day = /^(\d{4})-(\d{2})-(\d{2})/.exec(value);
  if (!day) return true;
  const [year, month, dayOfMonth] = day.slice(1).map(Number) as [number, number, number];
  const read = new Date(new Date(0).setUTCFullYear(year, month - 1, dayOfMonth));
  return read.getUTCFullYear() === year && read.getUTCMonth() === month - 1 && read.getUTCDate() === dayOfMonth;
}

export function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive whole number`);
  return n;
}
