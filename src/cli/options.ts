import { InvalidArgumentError, Option } from 'commander';
import { DAY_MS } from '../reporting/filters.js';

/** --database-url, shared by every command that talks to a database. */
export const databaseUrlOption = () =>
  new Option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL)');

/** Parses an ISO date/time or a relative `<n>d` / `<n>h` (that long before now). */
export function parseWhen(value: string): Date {
  const relative = /^(\d+)([dh])$/.exec(value);
  if (relative) {
    const unit = relative[2] === 'd' ? DAY_MS : DAY_MS / 24;
    return new Date(Date.now() - Number(relative[1]) * unit);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError(`'${value}' is not a date, a time or e.g. 7d`);
  return date;
}

export function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive whole number`);
  return n;
}
