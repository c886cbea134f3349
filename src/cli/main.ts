import { Command, InvalidArgumentError, Option } from 'commander';
import { createPool, resolveDatabaseUrl, UsageError } from '../db.js';
import { runDemo } from '../demo.js';
import { migrate, migrationStatus, type MigrateDirection } from '../migrate.js';
import { DAY_MS, spendByModel } from '../report.js';
import { describeError } from './errors.js';
import { renderSpend, type OutputFormat } from './spend-table.js';

const program = new Command('ai-cost')
  .description('pg-ai-cost: a Postgres-native ledger of what AI/LLM API calls cost')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(`ai-cost: ${text.replace(/^error: /, '')}`) });

const databaseUrlOption = () =>
  new Option('--database-url <url>', 'PostgreSQL connection string (default: $DATABASE_URL)');

program
  .command('migrate')
  .description('install, upgrade or uninstall the ai_cost schema')
  .argument('<action>', 'up, down or status')
  .addOption(databaseUrlOption())
  .option('--count <n>', 'how many migrations to apply or revert (up: all, down: 1)', positiveInteger)
  .option('--all', 'with down: revert every migration and drop the ai_cost schema')
  .action(async (action: string, options: { databaseUrl?: string; count?: number; all?: boolean }) => {
    const url = resolveDatabaseUrl(options.databaseUrl);
    if (action === 'status') {
      const status = await migrationStatus(url);
      for (const name of status.applied) console.log(`applied  ${name}`);
      for (const name of status.pending) console.log(`pending  ${name}`);
      if (status.pending.length > 0) process.exitCode = 3;
      return;
    }
    if (action !== 'up' && action !== 'down') throw new UsageError(`unknown migrate action '${action}': use up, down or status`);
    const direction: MigrateDirection = action;
    const count = options.all ? Infinity : options.count ?? (direction === 'down' ? 1 : Infinity);
    const result = await migrate(url, { direction, count });
    if (result.ran.length === 0) console.log(direction === 'up' ? 'ai_cost is up to date' : 'nothing to revert');
    for (const name of result.ran) console.log(`${direction === 'up' ? 'applied ' : 'reverted'} ${name}`);
    if (direction === 'up' && !result.pgCron) {
      console.log('pg_cron is not installed here: nothing schedules refreshes; run `ai-cost refresh` from your own scheduler');
    }
  });

program
  .command('report')
  .description('spend by model for a time window')
  .addOption(databaseUrlOption())
  .option('--since <when>', 'start: an ISO date/time or e.g. 7d for 7 days ago (default: 30d)', when, undefined)
  .option('--until <when>', 'end, exclusive: an ISO date/time or e.g. 1d (default: now)', when, undefined)
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
  .action(async (options: { databaseUrl?: string; since?: Date; until?: Date; format: OutputFormat }) => {
    const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
    try {
      const rows = await spendByModel(pool, windowOf(options));
      console.log(renderSpend(rows, options.format));
    } finally {
      await pool.end();
    }
  });

program
  .command('demo')
  .description('install pg-ai-cost, load two weeks of sample calls and print the report (embedded PostgreSQL unless a URL is given)')
  .addOption(databaseUrlOption())
  .action(async (options: { databaseUrl?: string }) => {
    const url = options.databaseUrl ?? process.env.DATABASE_URL;
    const result = await runDemo(url ? resolveDatabaseUrl(url) : undefined, (line) => console.log(line));
    console.log('\nSpend by model, last 30 days:');
    console.log(renderSpend(result.spend, 'table'));
  });

function windowOf(options: { since?: Date; until?: Date }) {
  const window: { since?: Date; until?: Date } = {};
  if (options.since) window.since = options.since;
  if (options.until) window.until = options.until;
  return window;
}

/** Parses an ISO date/time or a relative `<n>d` / `<n>h` (that long before now). */
function when(value: string): Date {
  const relative = /^(\d+)([dh])$/.exec(value);
  if (relative) {
    const unit = relative[2] === 'd' ? DAY_MS : DAY_MS / 24;
    return new Date(Date.now() - Number(relative[1]) * unit);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new InvalidArgumentError(`'${value}' is not a date, a time or e.g. 7d`);
  return date;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive whole number`);
  return n;
}

try {
  await program.parseAsync();
} catch (error) {
  const line = describeError(error);
  if (line === undefined) throw error;
  console.error(`ai-cost: ${line}`);
  process.exitCode = 1;
}
