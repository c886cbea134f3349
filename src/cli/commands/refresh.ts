import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { refresh } from '../../reporting/refresh.js';
import { databaseUrlOption } from '../options.js';

export function registerRefresh(program: Command): void {
  program
    .command('refresh')
    .description('bring rollups, materialized views and budget alerts up to date (what pg_cron runs every minute)')
    .addOption(databaseUrlOption())
    .action(async (options: { databaseUrl?: string }) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        const result = await refresh(pool);
        console.log(result.refreshed
          ? `refreshed: ${result.changesApplied} change(s) applied, ${result.budgetAlerts} budget alert(s), ${result.durationMs} ms`
          : 'another refresh is running: skipped (it will include the changes)');
      } finally {
        await pool.end();
      }
    });
}
