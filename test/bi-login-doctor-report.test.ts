import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIMENSIONS } from '../src/index.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl } from './support/logins.js';

// A BI login, granted nothing but ai_cost_reader, runs `ai-cost doctor` and
// `ai-cost report` as a user would: doctor says what that login can see and,
// one line each, what it cannot check and why; the reports equal the owner's.

const login = `bi_login_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'bi-login-pw';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`CREATE ROLE ${login} LOGIN PASSWORD '${PASSWORD}'; GRANT ai_cost_reader TO ${login}`);
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('test', 'priced', '2020-01-01', 1);
      INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, input_tokens) VALUES
        ('2025-03-10 10:00Z', 'test', 'priced', 'acme', 'chat', 1000),
        ('2025-03-11 10:00Z', 'test', 'unknown-model', 'acme', 'chat', 10)`);
  },
});

test.after.always(() => dropLogins(login));

const asLogin = () => ['--database-url', loginUrl(db.url, login, PASSWORD)];
const asOwner = () => ['--database-url', db.url];

const CHECKS = ['schema', 'scheduling', 'refresh', 'views', 'price book', 'batch pricing', 'set aside', 'unpriced models', 'reader role'];

test.serial('doctor as a BI login: no crash, what it cannot check is skipped with the reason, and how fresh the data is', async (t) => {
  await db.query('SELECT ai_cost.refresh()');
  const doctor = await runCli(['doctor', ...asLogin()]);
  t.is(doctor.code, 0, doctor.stderr);
  t.is(doctor.stderr, '');
  const lines = doctor.stdout.trim().split('\n');
  // One line a check, in order, none failed.
  t.deepEqual(lines.map((line) => /^(?:ok  |warn|skip)  ([a-z ]+):/.exec(line)?.[1]), CHECKS);
  t.regex(doctor.stdout, new RegExp(`skip  schema: pg-ai-cost is installed; whether migrations are pending is not visible to ${login}: ai_cost_internal\\.schema_migrations is readable by the installing owner only`));
  t.regex(doctor.stdout, new RegExp(`skip  price book: whether the compiled price book is current is not visible to ${login}: `));
  t.regex(doctor.stdout, /ok {4}refresh: last refresh of the rollups 20\d\d-\S+, \d+s ago/);
  t.regex(doctor.stdout, /ok {4}views: the materialized views \([^)]*spend_trends[^)]*\) were rebuilt 20\d\d-\S+, \d+s ago/);
  t.regex(doctor.stdout, new RegExp(`ok {4}reader role: ai_cost_reader exists and ${login} is a member`));

  // Scheduling the refresh is the owner's to do, and doctor says so to the login, not to the owner.
  const ownerName = (await db.query<{ owner: string }>(
    `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'ai_cost'`))[0]!.owner;
  const scheduling = lines.find((line) => line.includes(' scheduling: '))!;
  t.true(scheduling.startsWith('warn'), scheduling);
  t.true(scheduling.endsWith(` That is for ${ownerName}, who installed pg-ai-cost, to do: ${login} may not schedule the refresh.`), scheduling);

  // The owner sees the migrations the login could not.
  const owner = await runCli(['doctor', ...asOwner()]);
  t.notRegex(owner.stdout, /may not schedule the refresh/);
  t.regex(owner.stdout, /ok {4}schema: up to date/);
  t.regex(owner.stdout, /ok {4}price book: compiled/);
});

test('doctor as a login without pg-ai-cost\'s schema rights: every check answers in its line', async (t) => {
  // A login granted nothing at all: the checks the database refuses are skipped, doctor goes on.
  const stranger = `${login}_none`;
  await db.query(`CREATE ROLE ${stranger} LOGIN PASSWORD '${PASSWORD}'`);
  try {
    const doctor = await runCli(['doctor', '--database-url', loginUrl(db.url, stranger, PASSWORD)]);
    t.is(doctor.stderr, '');
    t.notRegex(doctor.stdout, /FAIL/);
    t.regex(doctor.stdout, /skip  schema:/);
    t.regex(doctor.stdout, new RegExp(`skip  refresh: cannot check as ${stranger}: permission denied for schema ai_cost`));
  } finally {
    await db.query(`DROP ROLE ${stranger}`);
  }
});

test('report as a BI login: every split and format equals the owner\'s', async (t) => {
  for (const by of ['model', ...Object.keys(DIMENSIONS)]) {
    for (const format of ['json', 'csv', 'table']) {
      const args = ['report', '--by', by, '--month', '2025-03', '--format', format];
      const reader = await runCli([...args, ...asLogin()]);
      t.is(reader.code, 0, `${args.join(' ')}: ${reader.stderr}`);
      t.is(reader.stdout, (await runCli([...args, ...asOwner()])).stdout, args.join(' '));
    }
  }
  const folder = await mkdtemp(join(tmpdir(), 'ai-cost-bi-login-'));
  try {
    const html = await runCli(['report', '--month', '2025-03', '--html', join(folder, 'march.html'), ...asLogin()]);
    t.is(html.code, 0, html.stderr);
    t.true(existsSync(join(folder, 'march.html')));
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  const json = await runCli(['report', '--month', '2025-03', '--format', 'json', ...asLogin()]);
  t.deepEqual((JSON.parse(json.stdout) as Array<{ model: string; costMicros: string | null }>).map((r) => [r.model, r.costMicros]),
    [['priced', '1000'], ['unknown-model', null]]);
});
