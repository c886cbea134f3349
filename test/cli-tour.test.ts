import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli, type CliResult } from './support/cli.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';

// Every command and subcommand of the CLI, once, with the arguments the
// README and --help suggest, against a real install: each must succeed and
// say something that could only come from doing its job.

const databases: TestDatabase[] = [];
let folder = '';
test.before(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ai-cost-cli-tour-'));
});
test.after.always(async () => {
  for (const db of databases) await db.drop();
  await rm(folder, { recursive: true, force: true });
});

async function database(migrated: boolean): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated });
  databases.push(db);
  return db;
}

const LITELLM = fileURLToPath(new URL('./fixtures/litellm/prices-v1.json', import.meta.url));

/** A successful run: exit 0 and no stack trace. */
function succeeded(t: { is: (a: unknown, b: unknown, m?: string) => void; notRegex: (s: string, r: RegExp, m?: string) => void }, result: CliResult, what: string): void {
  t.is(result.code, 0, `${what}: ${result.stderr}`);
  t.notRegex(result.stderr, /\n\s+at /, `${what} printed a stack trace`);
}

test.serial('migrate up, status and down --all', async (t) => {
  const db = await database(false);
  const url = ['--database-url', db.url];
  const up = await runCli(['migrate', 'up', ...url]);
  succeeded(t, up, 'migrate up');
  t.regex(up.stdout, /installed pg-ai-cost/);
  const status = await runCli(['migrate', 'status', ...url]);
  succeeded(t, status, 'migrate status');
  t.regex(status.stdout, /^applied +0001_baseline$/m);
  const down = await runCli(['migrate', 'down', '--all', '--yes', ...url]);
  succeeded(t, down, 'migrate down --all');
  t.regex(down.stdout, /reverted 0001_baseline/);
});

test.serial('every other command on an installed ledger with calls', async (t) => {
  const db = await database(true);
  const url = ['--database-url', db.url];
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, input_tokens, output_tokens, total_ms)
    SELECT now() - g * interval '1 hour', 'anthropic', 'claude-sonnet-4-6', 'tenant-' || g % 3, 'chat', 1000 * g, 100, 300 + g
      FROM generate_series(1, 48) AS g;
    INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('nobody', 'unknown-model', 10);`);

  const listed = await runCli(['prices', 'list', '--provider', 'anthropic', ...url]);
  succeeded(t, listed, 'prices list --provider anthropic');
  t.regex(listed.stdout, /claude-sonnet-4-6/);
  t.regex(listed.stdout, /always/, 'a price in force since always says so');
  const json = await runCli(['prices', 'list', '--provider', 'anthropic', '--format', 'json', ...url]);
  succeeded(t, json, 'prices list --format json');
  const rows = JSON.parse(json.stdout) as Array<{ model: string; valid_from: string | null }>;
  t.true(rows.some((r) => r.model === 'claude-sonnet-4-6'));
  succeeded(t, await runCli(['prices', 'list', '--history', '--provider', 'openai', ...url]), 'prices list --history');

  const set = await runCli(['prices', 'set', 'tour', 'model-x', '--input', '1', '--output', '2', '--from', '2020-01-01', ...url]);
  succeeded(t, set, 'prices set');
  t.deepEqual(await db.query(`SELECT input_per_mtok::text AS input FROM ai_cost.prices WHERE provider = 'tour'`), [{ input: '1' }]);
  const diff = await runCli(['prices', 'diff', LITELLM, ...url]);
  succeeded(t, diff, 'prices diff');
  t.regex(diff.stdout, /would make \d+ added, \d+ changed, \d+ unchanged, \d+ entries skipped\n$/, 'diff ends with its counts');
  const imported = await runCli(['prices', 'import', LITELLM, ...url]);
  succeeded(t, imported, 'prices import');
  t.regex(imported.stdout, /: \d+ added, \d+ changed, \d+ unchanged, \d+ entries skipped/);

  const refresh = await runCli(['refresh', ...url]);
  succeeded(t, refresh, 'refresh');
  const report = await runCli(['report', ...url]);
  succeeded(t, report, 'report');
  t.regex(report.stdout, /claude-sonnet-4-6/);
  t.regex(report.stdout, /no price in force/);
  const byTenant = await runCli(['report', '--by', 'tenant', '--since', '7d', '--format', 'json', ...url]);
  succeeded(t, byTenant, 'report --by tenant --format json');
  t.is((JSON.parse(byTenant.stdout) as unknown[]).length, 4, 'three tenants and the call without one');
  const csv = await runCli(['report', '--by', 'feature', '--format', 'csv', ...url]);
  succeeded(t, csv, 'report --format csv');
  t.regex(csv.stdout, /^feature,/);
  const page = join(folder, 'report.html');
  succeeded(t, await runCli(['report', '--html', page, ...url]), 'report --html');
  t.regex(await readFile(page, 'utf8'), /<html/i);

  const dryRun = await runCli(['reprice', '--from', '7d', '--dry-run', ...url]);
  succeeded(t, dryRun, 'reprice --dry-run');
  const reprice = await runCli(['reprice', '--from', '7d', '--reason', 'cli tour', ...url]);
  succeeded(t, reprice, 'reprice');
  t.deepEqual(await db.query(`SELECT count(*)::int AS n FROM ai_cost.reprice_runs WHERE reason = 'cli tour' AND finished_at IS NOT NULL`), [{ n: 1 }]);

  const doctor = await runCli(['doctor', ...url]);
  t.notRegex(doctor.stderr, /\n\s+at /, 'doctor printed a stack trace');
  t.regex(doctor.stdout, /schema/);
});

test.serial('demo into a database given by URL', async (t) => {
  const db = await database(false);
  const demo = await runCli(['demo', '--database-url', db.url]);
  succeeded(t, demo, 'demo');
  const [row] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM ai_cost.calls');
  t.true(row!.n > 100, `${row!.n} sample calls`);
});
