import type { Command } from 'commander';
import { resolveDatabaseUrl } from '../../db.js';
import { scheduleRefresh } from '../../reporting/schedule.js';
import { databaseUrlOption } from '../options.js';

export function registerSchedule(program: Command): void {
  program
    .command('schedule')
    .description('schedule the refresh with pg_cron (in this database, or in the one pg_cron lives in); safe to run again')
    .addOption(databaseUrlOption())
    .option('--cron-database <name>', 'the database of this server that pg_cron lives in (default: cron.database_name, where readable)')
    .action(async (options: { databaseUrl?: string; cronDatabase?: string }) => {
      const result = await scheduleRefresh(resolveDatabaseUrl(options.databaseUrl), { cronDatabase: options.cronDatabase });
      console.log(`scheduled with pg_cron in database ${result.cronDatabase}: ${result.jobs.join(', ')}`);
    });
}
