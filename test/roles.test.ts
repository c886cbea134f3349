import test from 'ava';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool } from '../src/db.js';
import { createRecorder, recordCall, type RecorderEvent } from '../src/recorder/index.js';
import { learnLedger } from '../src/recorder/insert.js';
import { runCli } from './support/cli.js';
import { serverUrl, useTestDatabase } from './support/database.js';
import { loginUrl, runAs } from './support/logins.js';

// Each ai_cost_* role is granted to a login of this test file's own, and the
// login then tries what the role should and should not be able to do.

const suffix = randomBytes(4).toString('hex');
const logins = {
  writer: `app_writer_${suffix}`,
  reader: `bi_reader_${suffix}`,
  admin: `finance_admin_${suffix}`,
  tenant: `tenant_reader_${suffix}`,
  // A login given the writer's table rights one by one, as a user might grant them by hand, without EXECUTE on insert_calls.
  legacy: `legacy_writer_${suffix}`,
};
const PASSWORD = 'role-test-pw';

const db = useTestDatabase(test, {
  setup: async (db) => {
    for (const [kind, login] of Object.entries(logins)) {
      if (kind === 'legacy') continue;
      const role = kind === 'tenant' ? 'ai_cost_tenant_reader' : `ai_cost_${kind}`;
      await db.query(`CREATE ROLE ${login} LOGIN PASSWORD '${PASSWORD}'; GRANT ${role} TO ${login}`);
    }
    await db.query(`CREATE ROLE ${logins.legacy} LOGIN PASSWORD '${PASSWORD}';
      GRANT USAGE ON SCHEMA ai_cost, ai_cost_internal TO ${logins.legacy};
      GRANT INSERT ON ai_cost.calls TO ${logins.legacy};
      GRANT SELECT (id, request_id, cost_micros, price_id, unpriced_reason) ON ai_cost.calls TO ${logins.legacy};
      GRANT SELECT ON ai_cost.prices, ai_cost_internal.price_lookup, ai_cost.providers,
                      ai_cost.model_aliases, ai_cost.model_patterns, ai_cost.tenant_discounts TO ${logins.legacy};
      SELECT ai_cost_internal.grant_pricing_functions('${logins.legacy}')`);
    await db.query(`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens, error_message, metadata)
      VALUES ('openai', 'gpt-4o-mini', 'acme', 1000, 100, 'secret error of acme', '{"prompt": "acme secret"}'),
             ('openai', 'gpt-4o-mini', 'globex', 2000, 200, 'secret error of globex', '{"prompt": "globex secret"}');
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
      VALUES ('roles-batch', 'm', '2020-01-01', 2, 8);
      SELECT ai_cost.refresh();`);
  },
});

test.after.always(async () => {
  // The legacy login holds grants of its own; the database may already be dropped, which takes them with it.
  await db.query(`DROP OWNED BY ${logins.legacy}`).catch(() => undefined);
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  for (const login of Object.values(logins)) await admin.query(`DROP ROLE IF EXISTS ${login}`);
  await admin.end();
});

/** Runs statements as a login of this file's database. */
function as(login: string, ...statements: string[]): Promise<unknown[] | string> {
  return runAs(loginUrl(db.url, login, PASSWORD), ...statements);
}

const denied = /permission denied/;

test('the writer inserts calls, idempotently, and the cost is computed for it', async (t) => {
  const rows = await as(logins.writer,
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, request_id, cost_micros)
     VALUES ('openai', 'gpt-4o-mini', 7, 3, 'writer-1', 999999) ON CONFLICT (request_id) DO NOTHING RETURNING cost_micros::text`);
  t.deepEqual(rows, [{ cost_micros: '3' }]);
  const again = await as(logins.writer,
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, request_id) VALUES ('openai', 'gpt-4o-mini', 7, 'writer-1')
     ON CONFLICT (request_id) DO NOTHING RETURNING id`);
  t.deepEqual(again, []);
});

test('the TypeScript recordCall works as the writer', async (t) => {
  const pool = await createPool(loginUrl(db.url, logins.writer, PASSWORD), 1);
  try {
    const recorded = await recordCall(pool, { provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1000, requestId: 'writer-ts' });
    t.is(recorded.costMicros, 150n);
    t.true((await recordCall(pool, { provider: 'openai', model: 'gpt-4o-mini', inputTokens: 1, requestId: 'writer-ts' })).duplicate);
  } finally {
    await pool.end();
  }
});

test('the writer records batches through insert_calls, and can neither set a cost nor borrow its trust', async (t) => {
  // 1,000 x 2 + 100 x 8 USD per 1M tokens = 2,800 micro-dollars, whatever the batch says.
  const batch = JSON.stringify([
    { provider: 'roles-batch', model: 'm', input_tokens: 1000, output_tokens: 100, request_id: 'batch-1', cost_micros: 1, price_id: 1 },
  ]);
  const cost = `SELECT cost_micros::text FROM ai_cost.calls WHERE request_id = 'batch-1'`;
  t.deepEqual(await as(logins.writer, `SELECT ai_cost.insert_calls('${batch}')::int AS n`, cost), [{ cost_micros: '2800' }]);
  t.deepEqual(await as(logins.writer, `SELECT ai_cost.insert_calls('${batch}')::int AS n`), [{ n: 0 }], 'a repeated request_id is skipped');
  // The setting insert_calls uses is open to anyone, but the trigger trusts it only from the function's owner.
  const forged = await as(logins.writer, `SET ai_cost.inserting_priced_calls = 'on'`,
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, request_id, cost_micros, price_id)
     VALUES ('roles-batch', 'm', 1000, 100, 'batch-forged', 1, 1) RETURNING cost_micros::text`);
  t.deepEqual(forged, [{ cost_micros: '2800' }]);
  for (const login of [logins.reader, logins.admin, logins.tenant]) {
    t.regex(String(await as(login, `SELECT ai_cost.insert_calls('${batch}')`)), denied, login);
  }
});

test('the recorder takes insert_calls where the login may execute it, and the plain INSERT where not', async (t) => {
  const costs: Record<string, string> = {};
  for (const [login, expected] of [[logins.writer, 'insert_calls'], [logins.legacy, 'statement']] as const) {
    const pool = await createPool(loginUrl(db.url, login, PASSWORD), 1);
    try {
      t.like(await learnLedger(pool), { path: expected, shards: 0 }, login);
      const events: RecorderEvent[] = [];
      const recorder = createRecorder({ pool, flushOnExit: false, onError: (event) => events.push(event) });
      recorder.record({ provider: 'roles-batch', model: 'm', inputTokens: 1000, outputTokens: 100, requestId: `recorder-${login}` });
      await recorder.close();
      t.deepEqual(events, []);
      t.is(recorder.metrics().written, 1, login);
    } finally {
      await pool.end();
    }
    const [row] = await db.query<{ cost: string }>(`SELECT cost_micros::text AS cost FROM ai_cost.calls WHERE request_id = $1`, [`recorder-${login}`]);
    costs[login] = row!.cost;
  }
  t.deepEqual(Object.values(costs), ['2800', '2800']);
});

test('the writer cannot read call contents, change history, costs or prices', async (t) => {
  for (const statement of [
    'SELECT error_message FROM ai_cost.calls',
    'SELECT metadata FROM ai_cost.calls',
    `UPDATE ai_cost.calls SET input_tokens = 0`,
    `UPDATE ai_cost.calls SET cost_micros = 0`,
    'DELETE FROM ai_cost.calls',
    'TRUNCATE ai_cost.calls',
    `INSERT INTO ai_cost.prices (provider, model, input_per_mtok) VALUES ('openai', 'gpt-4o-mini', 0)`,
    `UPDATE ai_cost.prices SET input_per_mtok = 0`,
    `INSERT INTO ai_cost.tenant_discounts (tenant_id, percent_off) VALUES ('acme', 100)`,
    'SELECT * FROM ai_cost.spend_daily',
  ]) {
    t.regex(String(await as(logins.writer, statement)), denied, statement);
  }
});

test('the BI reader reads the reporting views and the calls, but not what a call was about', async (t) => {
  const spend = await as(logins.reader, `SELECT sum(cost_micros)::text AS total FROM ai_cost.spend_daily`);
  t.true(Array.isArray(spend), String(spend));
  const calls = await as(logins.reader, `SELECT tenant_id, model, cost_micros FROM ai_cost.calls`);
  t.true(Array.isArray(calls) && calls.length >= 2, String(calls));
  for (const statement of [
    'SELECT error_message FROM ai_cost.calls',
    'SELECT metadata FROM ai_cost.calls',
    'SELECT * FROM ai_cost.calls',
    `INSERT INTO ai_cost.calls (provider, model) VALUES ('x', 'y')`,
    `UPDATE ai_cost.prices SET input_per_mtok = 0`,
    'SELECT * FROM ai_cost_internal.call_changes',
  ]) {
    t.regex(String(await as(logins.reader, statement)), denied, statement);
  }
});

test('a BI login listing schema ai_cost, as JDBC and information_schema do, sees only what it can read', async (t) => {
  // PgJDBC's getTables lists pg_class without looking at privileges, as Metabase and DBeaver see it.
  const listed = await as(logins.reader, `
    SELECT c.oid::regclass::text AS name,
           pg_catalog.has_any_column_privilege(c.oid, 'SELECT') AS readable
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`);
  t.true(Array.isArray(listed) && listed.length > 25, String(listed));
  const unreadable = (listed as Array<{ name: string; readable: boolean }>).filter((r) => !r.readable).map((r) => r.name);
  t.deepEqual(unreadable, []);
  for (const { name } of listed as Array<{ name: string }>) {
    if (name === 'ai_cost.calls') continue;
    t.true(Array.isArray(await as(logins.reader, `SELECT * FROM ${name} LIMIT 1`)), name);
  }
  const columns = await as(logins.reader, `
    SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'ai_cost' AND table_name = 'calls'`);
  t.deepEqual(columns, [{ n: 41 }], 'information_schema shows the calls columns the reader may read');
  const internals = await as(logins.reader, `
    SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'ai_cost_internal'`);
  t.deepEqual(internals, [{ n: 0 }]);
});

test('the admin sets prices and reprices, but cannot delete or rewrite calls', async (t) => {
  const record = await as(logins.admin, `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('roles-test', 'm', 10)`);
  t.regex(String(record), denied, 'the admin does not record calls');
  const priced = await as(logins.admin,
    `INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('roles-test', 'm', '2020-01-01', 1, 2)`,
    `SELECT id FROM ai_cost.prices WHERE provider = 'roles-test'`);
  t.true(Array.isArray(priced) && priced.length === 1, String(priced));
  // A correction of gpt-4o-mini from now on, then a reprice of the last day.
  const repriced = await as(logins.admin,
    `INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
     VALUES ('openai', 'gpt-4o-mini', now() - interval '1 day', 0.30, 1.20, 0.15)`,
    `CALL ai_cost.reprice(now() - interval '2 days', now() + interval '1 hour', 'roles test correction', 'openai', 'gpt-4o-mini', false, 100)`,
    `SELECT count(*)::int AS audited FROM ai_cost.reprice_audit WHERE reason = 'roles test correction'`);
  t.true(Array.isArray(repriced) && (repriced[0] as { audited: number }).audited >= 2, JSON.stringify(repriced));
  const [acme] = await db.query<{ cost: string }>(`SELECT cost_micros::text AS cost FROM ai_cost.calls WHERE tenant_id = 'acme'`);
  t.is(acme!.cost, '420'); // 1,000 x 0.30 + 100 x 1.20
  for (const statement of ['DELETE FROM ai_cost.calls', `UPDATE ai_cost.calls SET input_tokens = 1`, 'DELETE FROM ai_cost.prices']) {
    t.regex(String(await as(logins.admin, statement)), /permission denied|cannot be deleted/, statement);
  }
});

test('no role may call a trigger function, and only the admin may recompile the price book', async (t) => {
  const rows = await db.query<{ fn: string; role: string; allowed: boolean }>(`
    SELECT p.oid::regprocedure::text AS fn, r.rolname AS role, has_function_privilege(r.oid, p.oid, 'EXECUTE') AS allowed
      FROM pg_proc p
     CROSS JOIN pg_roles r
     WHERE p.pronamespace = 'ai_cost_internal'::regnamespace
       AND (p.prorettype = 'trigger'::regtype OR p.proname = 'compile_price_book')
       AND r.rolname IN ('ai_cost_reader', 'ai_cost_writer', 'ai_cost_admin', 'ai_cost_tenant_reader', $1)`, [logins.reader]);
  t.true(rows.length >= 12 * 5, `${rows.length} checks`);
  const allowed = rows.filter((r) => r.allowed).map((r) => `${r.role} ${r.fn}`);
  t.deepEqual(allowed, ['ai_cost_admin ai_cost_internal.compile_price_book()']);
  t.regex(String(await as(logins.reader, 'SELECT ai_cost_internal.compile_price_book()')), denied);
});

test('`ai-cost reprice` as a reader is refused in one line that says who reprices, the dry run too', async (t) => {
  for (const dryRun of [['--dry-run'], []]) {
    const result = await runCli(['reprice', '--from', '1d', ...dryRun, '--database-url', loginUrl(db.url, logins.reader, PASSWORD)]);
    t.is(result.code, 1);
    t.regex(result.stderr, /^ai-cost: permission denied: permission denied for function (reprice_preview|start_reprice): repricing is for logins granted ai_cost_admin, or the owner that installed pg-ai-cost\n$/);
  }
});

test('`ai-cost distribute` as the admin or a reader is refused in one line that says who distributes', async (t) => {
  for (const login of [logins.admin, logins.reader]) {
    const result = await runCli(['distribute', '--database-url', loginUrl(db.url, login, PASSWORD)]);
    t.is(result.code, 1);
    t.is(result.stderr, 'ai-cost: permission denied: permission denied for function distribute: ai-cost distribute is run by the owner that installed pg-ai-cost, on the coordinator\n');
  }
});

test('`ai-cost refresh` as the admin is refused in one line that says who refreshes', async (t) => {
  const result = await runCli(['refresh', '--database-url', loginUrl(db.url, logins.admin, PASSWORD)]);
  t.is(result.code, 1);
  t.is(result.stderr, 'ai-cost: permission denied: permission denied for function refresh: the rollups are refreshed as the owner that installed pg-ai-cost (pg_cron runs it so); run this with that login\n');
});
