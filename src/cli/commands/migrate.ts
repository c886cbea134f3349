import type { Command } from 'commander';
import { resolveDatabaseUrl, UsageError } from '../../db.js';
import { migrate, migrationStatus, type MigrateDirection } from '../../migrate.js';
import { databaseUrlOption, parsePositiveInteger } from '../options.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('install, upgrade or uninstall the ai_cost schema')
    .argument('<action>', 'up, down or status')
    .addOption(databaseUrlOption())
    .option('--count <n>', 'how many migrations to apply or revert (up: all, down: 1)', parsePositiveInteger)
    .option('--all', 'with down: uninstall (revert every migration, drop the ai_cost and ai_cost_internal schemas)')
    .option('--yes', 'with down --all: yes, drop the whole ledger, calls and prices included')
    .option('--no-backfill', 'with up: leave the calls a catalog update can price for a later migrate up or reprice --resume')
    .action(async (action: string, options: { databaseUrl?: string; count?: number; all?: boolean; yes?: boolean; backfill: boolean }) => {
      if (!['up', 'down', 'status'].includes(action)) {
        throw new UsageError(`unknown migrate action '${action}': use up, down or status`);
      }
      const misplaced = [
        ...(action !== 'down' && options.all ? ['--all'] : []),
        ...(action !== 'down' && options.yes ? ['--yes'] : []),
        ...(action === 'status' && options.count !== undefined ? ['--count'] : []),
        ...(action !== 'up' && !options.backfill ? ['--no-backfill'] : []),
      ];
      if (misplaced.length > 0) {
        throw new UsageError(`migrate ${action} takes no ${misplaced.join(' or ')}: --all and --yes go with down, --count with up or down, --no-backfill with up`);
      }
      if (options.all && options.count !== undefined) {
        throw new UsageError('migrate down takes --all or --count, not both');
      }
      if (action === 'down' && options.all && !options.yes) {
        throw new UsageError('migrate down --all drops the whole ledger, every call and price included: add --yes to do it');
      }
      const url = resolveDatabaseUrl(options.databaseUrl);
      if (action === 'status') {
        const status = await migrationStatus(url);
        for (const name of status.applied) console.log(`applied  ${name}`);
        for (const name of status.pending) console.log(`pending  ${name}`);
        // Like `git diff --exit-code`: scripts can check for pending migrations.
        if (status.pending.length > 0) process.exitCode = 3;
        return;
      }
      const direction = action as MigrateDirection;
      const count = options.all ? Infinity : options.count ?? (direction === 'down' ? 1 : Infinity);
      const result = await migrate(url, { direction, count, backfill: options.backfill });
      for (const notice of result.notices) console.log(`note: ${notice}`);
      if (result.installed) console.log(`installed pg-ai-cost (schemas ai_cost and ai_cost_internal; migrations recorded: ${result.ran.join(', ')})`);
      else if (result.ran.length === 0) console.log(direction === 'up' ? 'ai_cost is up to date' : 'nothing to revert');
      else for (const name of result.ran) console.log(`${direction === 'up' ? 'applied ' : 'reverted'} ${name}`);
      for (const backfill of result.backfills) {
        console.log(`built-in catalog ${backfill.catalog}: ${backfill.callsPriced} call(s) left unpriced are priced now `
          + `(reprice run ${backfill.run}; each change is in ai_cost.reprice_audit)`);
      }
      if (direction === 'up' && !result.installed && !result.pgCron) {
        console.log('pg_cron is not installed in this database: nothing will schedule refreshes (see `ai-cost doctor`)');
      }
    });
}
