import type { Command } from 'commander';
import { resolveDatabaseUrl } from '../../db.js';
import { runDemo } from '../../demo.js';
import { databaseUrlOption } from '../options.js';
import { renderSpend } from '../spend-table.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('install pg-ai-cost, load two weeks of sample calls and print the report (embedded PostgreSQL unless --database-url is given)')
    .option('--database-url <url>', 'load the sample calls into this database instead (DATABASE_URL is not used: the demo writes 2,400 calls)')
    .option('--keep', 'leave the embedded PostgreSQL running, for psql and the other commands, until Ctrl-C')
    .action(async (options: { databaseUrl?: string; keep?: boolean }) => {
      // The demo writes sample calls: only into a database named on purpose.
      if (!options.databaseUrl && process.env.DATABASE_URL) {
        console.log('DATABASE_URL is set, but the demo runs on its own embedded PostgreSQL; --database-url loads the sample calls into a database of yours');
      }
      const result = await runDemo(options.databaseUrl ? resolveDatabaseUrl(options.databaseUrl) : undefined,
        (line) => console.log(line), { keep: options.keep });
      console.log('\nSpend by model, last 30 days:');
      console.log(renderSpend(result.spend, 'table'));
      const url = ['--database-url', `'${result.databaseUrl}'`].join(' ');
      if (result.stop) {
        console.log(`\nThe demo database keeps running: psql '${result.databaseUrl}', or ai-cost report --by tenant ${url}, ai-cost doctor ${url}.`);
        console.log('Press Ctrl-C to stop it.');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await result.stop();
        console.log('stopped the demo database');
      } else if (result.embedded) {
        console.log('\nTo look around: ai-cost demo --keep leaves its database running for psql and the other commands (ai-cost report --by tenant, ai-cost doctor).');
      } else {
        console.log(`\nTo look around: ai-cost report --by tenant ${url}, ai-cost doctor ${url}.`);
      }
    });
}
