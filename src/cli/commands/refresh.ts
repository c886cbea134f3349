import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { refresh } from '../../reporting/refresh.js';
import { databaseUrlOption } from '../options.js';

export function registerRefresh(program: Command): void {
  program
    .command('refresh')
    .description('bring rollups, budget alerts and the windowed materialized views up to date (what pg_cron runs)')
    .addOption(databaseUrlOption())
    .option('--no-views', 'only the rollups and budget alerts, not the materialized views (cheap enough for every minute)')
    .action(async (options: { databaseUrl?: string; views: boolean }) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        const result = await refresh(pool, { views: options.views });
        const rollups = result.refreshed
          ? `${result.changesApplied} change(s) applied, ${result.budgetAlerts} budget alert(s)`
          : 'rollups skipped (another session is refreshing them)';
        const views = !options.views ? '' : result.viewsRefreshed ? ', views rebuilt' : ', views skipped (another session is rebuilding them)';
        console.log(`refreshed: ${rollups}${views}, ${result.durationMs} ms`);
      } finally {
        await pool.end();
      }
    });
}
