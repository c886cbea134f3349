import { Command } from 'commander';
import { registerDemo } from './commands/demo.js';
import { registerDoctor } from './commands/doctor.js';
import { registerSchedule } from './commands/schedule.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPrices } from './commands/prices.js';
import { registerRefresh } from './commands/refresh.js';
import { registerReport } from './commands/report.js';
import { registerReprice } from './commands/reprice.js';
import { describeError } from './errors.js';

const program = new Command('ai-cost')
  .description('pg-ai-cost: a Postgres-native ledger of what AI/LLM API calls cost')
  .showHelpAfterError()
  .configureOutput({ outputError: (text, write) => write(`ai-cost: ${text.replace(/^error: /, '')}`) });

// One module per command, each adding itself to the program.
for (const register of [registerMigrate, registerSchedule, registerReport, registerRefresh, registerPrices, registerReprice, registerDoctor, registerDemo]) register(program);

try {
  await program.parseAsync();
} catch (error) {
  const line = describeError(error);
  if (line === undefined) throw error;
  console.error(`ai-cost: ${line}`);
  process.exitCode = 1;
}
