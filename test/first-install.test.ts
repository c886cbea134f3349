import test from 'ava';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { startTestServer, type TestServer } from './support/server.js';

// A new user on managed PostgreSQL: a login that owns its database and may
// not create roles, on a server where no ai_cost_* role exists yet. The
// roles are cluster-wide, so this file starts a server of its own (of the
// same kind as the suite's), where none of them exists.

const ROLES = ['ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader'];
const reuse = Boolean(process.env.TEST_DATABASE_URL);
const serial = reuse ? test.serial.skip : test.serial;
const title = (text: string) => (reuse ? `${text} (skipped: TEST_DATABASE_URL's server may have the roles already; this needs a server of its own)` : text);

let server: TestServer | undefined;
test.before(async () => {
  if (!reuse) server = await startTestServer();
});
test.after.always(async () => {
  await server?.stop();
});

async function asSuperuser(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: server!.url('postgres') });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

function ownerUrl(): string {
  const url = new URL(server!.url('appdb'));
  url.username = 'app';
  url.password = 'app-pw';
  return url.toString();
}

serial(title('a database owner with CREATEROLE creates the roles and makes the admin a reader, with nothing left for an administrator'), async (t) => {
  await asSuperuser(`CREATE ROLE maker LOGIN PASSWORD 'maker-pw' NOSUPERUSER NOCREATEDB CREATEROLE`, 'CREATE DATABASE makerdb OWNER maker');
  const url = new URL(server!.url('makerdb'));
  url.username = 'maker';
  url.password = 'maker-pw';
  try {
    for (const run of ['first', 'again']) {
      const install = await runCli(['migrate', 'up', '--database-url', url.toString()]);
      t.is(install.code, 0, install.stderr);
      t.notRegex(install.stdout + install.stderr, /ADMIN OPTION|administrator/, `migrate up (${run}) leaves nothing to do`);
    }
    const owner = new pg.Client({ connectionString: url.toString() });
    await owner.connect();
    try {
      const { rows: [membership] } = await owner.query<{ member: boolean }>(
        `SELECT pg_has_role('ai_cost_admin', 'ai_cost_reader', 'MEMBER') AS member`);
      t.true(membership!.member, 'ai_cost_admin reads what ai_cost_reader reads');
    } finally {
      await owner.end();
    }
  } finally {
    // The next test starts where no ai_cost_* role exists.
    await asSuperuser('DROP DATABASE makerdb WITH (FORCE)', `DROP ROLE ${ROLES.join(', ')}`, 'DROP ROLE maker');
  }
});

serial(title('a database owner without CREATEROLE is told which roles to create, and the next migrate up grants them'), async (t) => {
  await asSuperuser(`CREATE ROLE app LOGIN PASSWORD 'app-pw' NOSUPERUSER NOCREATEDB NOCREATEROLE`, 'CREATE DATABASE appdb OWNER app');
  const url = ['--database-url', ownerUrl()];

  const install = await runCli(['migrate', 'up', ...url]);
  t.is(install.code, 0, install.stderr);
  t.regex(install.stdout, /installed pg-ai-cost/);
  const told = install.stdout.split('\n').find((line) => /not created/.test(line)) ?? '';
  for (const role of ROLES) t.true(told.includes(`CREATE ROLE ${role} NOLOGIN`), `the statement for ${role} is named`);
  t.regex(told, /app may not create roles/);

  const owner = new pg.Client({ connectionString: ownerUrl() });
  await owner.connect();
  t.teardown(() => owner.end());
  const { rows: [call] } = await owner.query(
    "INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('openai', 'gpt-4o-mini', 1000) RETURNING cost_micros::text AS cost");
  t.is(call.cost, '150', 'the ledger works before any role exists');

  const doctorBefore = await runCli(['doctor', ...url]);
  t.notRegex(doctorBefore.stderr, /\n\s+at /, 'doctor printed no stack trace');
  t.regex(doctorBefore.stdout, /reader role: ai_cost_reader is missing.*CREATE ROLE ai_cost_reader NOLOGIN/);
  t.regex(doctorBefore.stdout, /scheduling:/);

  // What the administrator runs, as the install said.
  await asSuperuser(...ROLES.map((role) => `CREATE ROLE ${role} NOLOGIN`));
  const doctorBetween = await runCli(['doctor', ...url]);
  t.regex(doctorBetween.stdout, /ai_cost_reader exists but has not been given its rights: run `ai-cost migrate up`/);

  const again = await runCli(['migrate', 'up', ...url]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /ai_cost is up to date/);
  t.notRegex(again.stdout, /not created/);
  const rights = await owner.query<{ reader: boolean; writer: boolean; admin: boolean; tenant: boolean }>(`
    SELECT has_table_privilege('ai_cost_reader', 'ai_cost.spend_daily', 'SELECT') AS reader,
           has_table_privilege('ai_cost_writer', 'ai_cost.calls', 'INSERT') AS writer,
           has_table_privilege('ai_cost_admin', 'ai_cost.prices', 'INSERT') AS admin,
           has_table_privilege('ai_cost_tenant_reader', 'ai_cost.tenant_access', 'SELECT') AS tenant`);
  t.deepEqual(rights.rows[0], { reader: true, writer: true, admin: true, tenant: true });

  // And once more: nothing changes, nothing fails.
  const third = await runCli(['migrate', 'up', ...url]);
  t.is(third.code, 0, third.stderr);
  const doctorAfter = await runCli(['doctor', ...url]);
  t.regex(doctorAfter.stdout, /ok +reader role: ai_cost_reader exists/);
});
