import test from 'ava';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl, runAs } from './support/logins.js';

// Tenant isolation rests on roles, not on anything a login can set: each read
// path a tenant reader has is tried with every way of changing a setting.

const suffix = randomBytes(4).toString('hex');
const roles = {
  acme: `tenant_acme_${suffix}`,
  globex: `tenant_globex_${suffix}`,
  // A person with a SQL prompt, who may read acme.
  analyst: `acme_analyst_${suffix}`,
  // An application that serves both tenants from one login.
  app: `tenant_app_${suffix}`,
  admin: `tenant_test_admin_${suffix}`,
  writer: `tenant_test_writer_${suffix}`,
};
const PASSWORD = 'tenant-test-pw';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      CREATE ROLE ${roles.acme} NOLOGIN IN ROLE ai_cost_tenant_reader;
      CREATE ROLE ${roles.globex} NOLOGIN IN ROLE ai_cost_tenant_reader;
      CREATE ROLE ${roles.analyst} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${roles.acme};
      ALTER ROLE ${roles.analyst} SET ai_cost.tenant_id = 'acme';
      CREATE ROLE ${roles.app} LOGIN NOINHERIT PASSWORD '${PASSWORD}' IN ROLE ${roles.acme}, ${roles.globex};
      CREATE ROLE ${roles.admin} LOGIN PASSWORD '${PASSWORD}' IN ROLE ai_cost_admin;
      CREATE ROLE ${roles.writer} LOGIN PASSWORD '${PASSWORD}' IN ROLE ai_cost_writer;
      INSERT INTO ai_cost.tenant_access (reader, tenant_id) VALUES ('${roles.acme}', 'acme'), ('${roles.globex}', 'globex');
      INSERT INTO ai_cost.calls (provider, model, tenant_id, conversation_id, input_tokens, output_tokens, error_message)
      VALUES ('openai', 'gpt-4o-mini', 'acme', 'acme-chat', 1000, 100, 'acme error'),
             ('openai', 'gpt-4o-mini', 'globex', 'globex-chat', 2000, 200, 'globex error'),
             ('openai', 'gpt-4o-mini', NULL, NULL, 3000, 300, 'untenanted error');
      SELECT ai_cost.refresh();`);
  },
});

test.after.always(() => dropLogins(roles.analyst, roles.app, roles.admin, roles.writer, roles.acme, roles.globex));

/** Runs statements as a login of this file's database. */
function as(login: string, ...statements: string[]): Promise<unknown[] | string> {
  return runAs(loginUrl(db.url, login, PASSWORD), ...statements);
}

const TENANT_TABLES = ['ai_cost.calls', 'ai_cost.calls_hourly', 'ai_cost.conversations_hourly'];

/** Each way a login might try to change which tenant it reads, as statements run before the read. */
function attempts(table: string): Record<string, string[]> {
  return {
    'plain read': [`SELECT DISTINCT tenant_id FROM ${table} ORDER BY 1`],
    SET: [`SET ai_cost.tenant_id = 'globex'`, `SELECT DISTINCT tenant_id FROM ${table} ORDER BY 1`],
    'set_config in a CTE': [`WITH s AS (SELECT set_config('ai_cost.tenant_id', 'globex', true))
      SELECT DISTINCT c.tenant_id FROM s, ${table} c ORDER BY 1`],
    'set_config in a LATERAL subquery': [`SELECT DISTINCT c.tenant_id
      FROM (SELECT set_config('ai_cost.tenant_id', 'globex', true)) s, LATERAL (SELECT * FROM ${table}) c ORDER BY 1`],
    'a tenant_access row of its own': [`INSERT INTO ai_cost.tenant_access VALUES ('${roles.acme}', 'globex')`],
  };
}

test.serial('before tenant isolation is on, a tenant reader reads nothing', async (t) => {
  for (const table of TENANT_TABLES) {
    t.regex(String(await as(roles.analyst, `SELECT count(*) FROM ${table}`)), /permission denied/, table);
  }
});

test.serial('with tenant isolation on, no setting widens what a tenant login reads', async (t) => {
  await db.query('SELECT ai_cost.enable_tenant_isolation()');
  t.teardown(() => db.query('SELECT ai_cost.disable_tenant_isolation()').then(() => undefined));
  for (const table of TENANT_TABLES) {
    for (const [how, statements] of Object.entries(attempts(table))) {
      const result = await as(roles.analyst, ...statements);
      if (how === 'a tenant_access row of its own') t.regex(String(result), /row-level security|permission denied/, how);
      else t.deepEqual(result, [{ tenant_id: 'acme' }], `${table}: ${how}`);
    }
  }
  t.deepEqual(await as(roles.analyst, 'SELECT error_message FROM ai_cost.calls'), [{ error_message: 'acme error' }]);
  t.deepEqual(await as(roles.analyst, 'SELECT tenant_id FROM ai_cost.tenant_access'), [{ tenant_id: 'acme' }],
    'it sees which tenants it may read, not whom else there is');
  t.regex(String(await as(roles.analyst, `SET ROLE ${roles.globex}`)), /permission denied/);
});

test.serial('with tenant isolation on, a tenant login reads no view, materialized view or function over every tenant', async (t) => {
  await db.query('SELECT ai_cost.enable_tenant_isolation()');
  t.teardown(() => db.query('SELECT ai_cost.disable_tenant_isolation()').then(() => undefined));
  const relations = await db.query<{ name: string }>(`
    SELECT c.oid::regclass::text AS name FROM pg_class c
     WHERE c.relnamespace IN ('ai_cost'::regnamespace, 'ai_cost_internal'::regnamespace)
       AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
       AND c.oid::regclass::text <> ALL ($1)`, [[...TENANT_TABLES, 'ai_cost.tenant_access']]);
  t.true(relations.length > 20, `${relations.length} relations`);
  for (const { name } of relations) {
    t.regex(String(await as(roles.analyst, `SELECT * FROM ${name} LIMIT 1`)), /permission denied/, name);
  }
  for (const call of [`SELECT * FROM ai_cost.calls_between(now() - interval '1 day', now())`, 'SELECT * FROM ai_cost.explain_cost(1)']) {
    t.regex(String(await as(roles.analyst, call)), /permission denied/, call);
  }
  const report = await runCli(['report', '--by', 'tenant', '--database-url', loginUrl(db.url, roles.analyst, PASSWORD)]);
  t.not(report.code, 0);
  t.notRegex(report.stdout + report.stderr, /globex|\n\s+at /, 'no other tenant, no stack trace');
  const doctor = await runCli(['doctor', '--database-url', loginUrl(db.url, roles.analyst, PASSWORD)]);
  t.notRegex(doctor.stdout, new RegExp(`GRANT ai_cost_reader TO ${roles.analyst}`), 'doctor never tells a tenant reader to read every tenant');
  t.regex(doctor.stdout, /^skip .*reads only the rows of its tenants; run doctor as the owner, or as a login granted ai_cost_reader\)$/m);
});

test.serial('an application serving many tenants from one login takes each request\'s tenant with SET LOCAL ROLE', async (t) => {
  await db.query('SELECT ai_cost.enable_tenant_isolation()');
  t.teardown(() => db.query('SELECT ai_cost.disable_tenant_isolation()').then(() => undefined));
  t.regex(String(await as(roles.app, 'SELECT count(*) FROM ai_cost.calls')), /permission denied/, 'NOINHERIT: nothing without a tenant');
  for (const [role, tenant] of [[roles.acme, 'acme'], [roles.globex, 'globex']]) {
    const rows = await as(roles.app, 'BEGIN', `SET LOCAL ROLE ${role}`, `SET LOCAL ai_cost.tenant_id = 'other'`,
      'SELECT DISTINCT tenant_id FROM ai_cost.calls_hourly');
    t.deepEqual(rows, [{ tenant_id: tenant }]);
  }
});

test.serial('with tenant isolation on, every other role still reads and writes every row', async (t) => {
  await db.query('SELECT ai_cost.enable_tenant_isolation()');
  t.teardown(() => db.query('SELECT ai_cost.disable_tenant_isolation()').then(() => undefined));
  t.deepEqual(await as(roles.admin, 'SELECT count(*)::int AS n FROM ai_cost.calls'), [{ n: 3 }]);
  t.deepEqual(await as(roles.writer,
    `INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES ('openai', 'gpt-4o-mini', 'globex', 1) RETURNING cost_micros::text`),
  [{ cost_micros: '1' }]);
  t.deepEqual(await as(roles.admin, 'SELECT count(*)::int AS n FROM ai_cost.tenant_access'), [{ n: 2 }]);
});

test.serial('turning isolation on and off says nothing when the roles are in place', async (t) => {
  const client = new pg.Client({ connectionString: db.url });
  const notices: string[] = [];
  client.on('notice', (notice) => notices.push(notice.message ?? ''));
  await client.connect();
  try {
    await client.query('SELECT ai_cost.enable_tenant_isolation()');
    await client.query('SELECT ai_cost.disable_tenant_isolation()');
  } finally {
    await client.end();
  }
  t.deepEqual(notices, []);
});
