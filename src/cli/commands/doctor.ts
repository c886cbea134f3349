import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import { diagnose } from '../../reporting/doctor.js';
import { databaseUrlOption } from '../options.js';

const MARK = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the installation: migrations, what schedules the refresh, how fresh the rollups and views are, models without a price, the BI reader role; any login may run it')
    .addOption(databaseUrlOption())
    .action(async (options: { databaseUrl?: string }) => {
      const url = resolveDatabaseUrl(options.databaseUrl);
      const pool = await createPool(url, 1);
      try {
        const diagnosis = await diagnose(url, pool);
        for (const check of diagnosis.checks) console.log(`${MARK[check.level]}  ${check.name}: ${check.detail}`);
        if (!diagnosis.healthy) process.exitCode = 1;
      } finally {
        await pool.end();
      }
    });
}
