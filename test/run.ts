/**
 * `npm test`: starts a throwaway PostgreSQL (see support/server.ts), installs
 * pg-ai-cost into a template database that every test file clones, runs ava
 * (extra arguments go to ava, e.g. a test file), stops the server, and ends
 * with the plain line `N passed, N failed` that CI reads.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import { startTestServer } from './support/server.js';

const TEMPLATE = 'ai_cost_template';

const server = await startTestServer();
console.log(`test server: ${server.description}`);
let summary = { passed: 0, failed: 1 };
try {
  await prepareTemplate(server.url('postgres'), server.url(TEMPLATE));
  summary = await runAva(process.argv.slice(2), {
    AI_COST_TEST_SERVER_URL: server.url('postgres'),
    AI_COST_TEST_TEMPLATE: TEMPLATE,
    AI_COST_TEST_PG_CRON: server.pgCron ? '1' : '0',
  });
} finally {
  await server.stop();
}
console.log(`\n${summary.passed} passed, ${summary.failed} failed`);
process.exitCode = summary.failed > 0 ? 1 : 0;

async function prepareTemplate(adminUrl: string, templateUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE} TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  await migrate(templateUrl);
}

/** Runs ava, echoing its output, and counts its results from its closing lines. */
function runAva(args: string[], extraEnv: Record<string, string>): Promise<{ passed: number; failed: number }> {
  return new Promise((resolve, reject) => {
    const ava = fileURLToPath(new URL('../node_modules/.bin/ava', import.meta.url));
    const child = spawn(ava, args, {
      env: { ...process.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const count = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0);
      // ava prints its passed total only when nothing failed, but marks each pass with ✔.
      const passed = output.split('\n').filter((line) => /^\s*✔ (?!\[expected fail\])/.test(line)).length;
      // Failed tests, plus anything else that makes ava fail: uncaught
      // exceptions, unhandled rejections, timeouts, files that never ran.
      let failed = count(/^\s*(\d+) tests? failed/m)
        + count(/^\s*(\d+) uncaught exceptions?/m)
        + count(/^\s*(\d+) unhandled rejections?/m);
      if (code !== 0 && failed === 0) failed = 1;
      resolve({ passed, failed });
    });
  });
}
