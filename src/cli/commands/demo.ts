import type { Command } from 'commander';
import { resolveDatabaseUrl } from '../../db.js';
import { runDemo } from '../../demo.js';
import { databaseUrlOption } from '../options.js';
import { renderSpend } from '../spend-table.js';

export function registerDemo(program: Command): void {
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
}
