import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { callsAreDistributed, distribute } from '../../distribute.js';
import { databaseUrlOption, parsePositiveInteger } from '../options.js';

export function registerDistribute(program: Command): void {
  program
    .command('distribute')
    .description('spread an installed ledger over the Citus cluster of this coordinator (calls by tenant; again after adding a worker)')
    .addOption(databaseUrlOption())
    .option('--shard-count <n>', 'shards of ai_cost.calls when first distributed (default: citus.shard_count, 32): '
      + 'fewer record batches of many tenants faster, more spread over more workers', parsePositiveInteger)
    .action(async (options: { databaseUrl?: string; shardCount?: number }) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        const keepsShards = options.shardCount !== undefined && await callsAreDistributed(pool);
        const steps = await distribute(pool, options.shardCount === undefined ? {} : { shardCount: options.shardCount });
        for (const { step, detail } of steps) console.log(`${step}: ${detail}`);
        if (keepsShards) {
          console.log('note: --shard-count applies when the calls are first distributed; they keep the shards they have');
        }
      } finally {
        await pool.end();
      }
    });
}
