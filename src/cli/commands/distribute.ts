import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { distribute } from '../../distribute.js';
import { databaseUrlOption } from '../options.js';

export function registerDistribute(program: Command): void {
  program
    .command('distribute')
    .description('spread an installed ledger over the Citus cluster of this coordinator (calls by tenant; again after adding a worker)')
    .addOption(databaseUrlOption())
    .action(async (options: { databaseUrl?: string }) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        for (const { step, detail } of await distribute(pool)) console.log(`${step}: ${detail}`);
      } finally {
        await pool.end();
      }
    });
}
