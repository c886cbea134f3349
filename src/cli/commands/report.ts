import { Option, type Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { spendByModel, type ReportWindow } from '../../report.js';
import { databaseUrlOption, parseWhen } from '../options.js';
import { renderSpend, type OutputFormat } from '../spend-table.js';

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('spend by model for a time window')
    .addOption(databaseUrlOption())
    .option('--since <when>', 'start: an ISO date/time or e.g. 7d for 7 days ago (default: 30d)', parseWhen)
    .option('--until <when>', 'end, exclusive: an ISO date/time or e.g. 1d (default: now)', parseWhen)
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
    .action(async (options: { databaseUrl?: string; since?: Date; until?: Date; format: OutputFormat }) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        const window: ReportWindow = {};
        if (options.since) window.since = options.since;
        if (options.until) window.until = options.until;
        console.log(renderSpend(await spendByModel(pool, window), options.format));
      } finally {
        await pool.end();
      }
    });
}
