import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerDemo } from './commands/demo.js';
import { registerDistribute } from './commands/distribute.js';
import { registerDoctor } from './commands/doctor.js';
import { registerSchedule } from './commands/schedule.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPrices } from './commands/prices.js';
import { registerRefresh } from './commands/refresh.js';
import { registerReport } from './commands/report.js';
import { registerReprice } from './commands/reprice.js';
import { commandNames } from './command-names.js';
import { refuseCitusWorker } from './coordinator-only.js';
import { describeError } from './errors.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The command whose action runs, once commander has chosen it. */
let running: Command | undefined;

const program = new Command('ai-cost')
  .description('pg-ai-cost: a Postgres-native ledger of what AI/LLM API calls cost')
  .version(version)
  .configureOutput({ outputError: (text, write) => write(`ai-cost: ${text.replace(/^error: /, '')}`) })
  .hook('preAction', (_program, command) => {
    running = command;
  })
  .hook('preAction', refuseCitusWorker);

// One module per command, each adding itself to the program.
for (const register of [registerMigrate, registerSchedule, registerReport, registerRefresh, registerPrices, registerReprice, registerDoctor, registerDistribute, registerDemo]) register(program);
showUsageAfterErrors(program);

try {
  await program.parseAsync();
} catch (error) {
  const line = describeError(error, running && commandNames(running)[0]);
  if (line === undefined) throw error;
  console.error(`ai-cost: ${line}`);
  process.exitCode = 1;
}

/** After an argument error, the command's one usage line (not its whole help) says what it takes. */
function showUsageAfterErrors(command: Command, path = ''): void {
  const name = path ? `${path} ${command.name()}` : command.name();
  command.showHelpAfterError(`Usage: ${name} ${command.usage()} (--help for more)`);
  for (const sub of command.commands) showUsageAfterErrors(sub, name);
}
