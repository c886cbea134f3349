import { createServer, type AddressInfo, type Socket } from 'node:net';
import test from 'ava';
import { freePort } from '../src/free-port.js';
import { runCli, runPsql } from './support/cli.js';
import { psql, testWithTool } from './support/tools.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './support/database.js';

const databases: TestDatabase[] = [];
test.after.always(async () => {
  for (const db of databases) await db.drop();
});

async function database(migrated: boolean): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrated });
  databases.push(db);
  return db;
}

/** A user error is one line on stderr and exit 1: no stack trace. */
function assertOneLineError(t: import('ava').ExecutionContext, result: { code: number; stdout: string; stderr: string }, message: RegExp) {
  t.is(result.code, 1, result.stderr);
  t.regex(result.stderr, message);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.notRegex(result.stderr, /\bat .*\.js:\d+/);
}

testWithTool(test, psql, 'migrate up on an empty database, then a psql INSERT yields the exact costs', async (t) => {
  const db = await database(false);
  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0, up.stderr);
  t.regex(up.stdout, /installed pg-ai-cost .*0001_baseline/);

  const inserted = await runPsql(db.url, `
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, request_id) VALUES
      ('openai', 'gpt-4o-mini', 1, NULL, 'one-input-token'),
      ('openai', 'gpt-4o-mini', 7, 3,    'seven-and-three'),
      ('openai', 'gpt-4o-mini', 0, 0,    'zero-tokens'),
      ('openai', 'gpt-unknown', 500, 50, 'unknown-model');
    SELECT request_id || '=' || coalesce(cost_micros::text, 'NULL') FROM ai_cost.calls ORDER BY id;`);
  t.is(inserted.code, 0, inserted.stderr);
  t.deepEqual(inserted.stdout.trim().split('\n'), [
    'one-input-token=1',
    'seven-and-three=3',
    'zero-tokens=0',
    'unknown-model=NULL',
  ]);
});

test('migrate up twice: the second run has nothing to do', async (t) => {
  const db = await database(false);
  await runCli(['migrate', 'up'], { DATABASE_URL: db.url });
  const again = await runCli(['migrate', 'up'], { DATABASE_URL: db.url });
  t.is(again.code, 0);
  t.regex(again.stdout, /ai_cost is up to date/);
});

test('migrate status lists applied and pending migrations, exit 3 while any is pending', async (t) => {
  const db = await database(false);
  const before = await runCli(['migrate', 'status', '--database-url', db.url]);
  t.is(before.code, 3);
  t.regex(before.stdout, /pending +0001_baseline/);
  await runCli(['migrate', 'up', '--database-url', db.url]);
  const after = await runCli(['migrate', 'status', '--database-url', db.url]);
  t.is(after.code, 0);
  t.regex(after.stdout, /applied +0001_baseline/);
  t.notRegex(after.stdout, /pending/);
});

test('migrate down --all uninstalls; plain down reverts one migration', async (t) => {
  const db = await database(false);
  await runCli(['migrate', 'up', '--database-url', db.url]);
  const down = await runCli(['migrate', 'down', '--all', '--yes', '--database-url', db.url]);
  t.is(down.code, 0, down.stderr);
  t.regex(down.stdout, /reverted 0001_baseline/);
  const [row] = await db.query<{ schema: string | null }>(`SELECT to_regnamespace('ai_cost')::text AS schema`);
  t.is(row!.schema, null);
  const nothing = await runCli(['migrate', 'down', '--database-url', db.url]);
  t.regex(nothing.stdout, /nothing to revert/);
});

test('migrate up says in one line when pg_cron is not installed, and goes on', async (t) => {
  const db = await database(false);
  const up = await runCli(['migrate', 'up', '--database-url', db.url]);
  t.is(up.code, 0);
  t.is(up.stdout.split('\n').filter((line) => /pg_cron/.test(line)).length, 1);
});

test('report shows spend by model as a table, with unpriced calls apart', async (t) => {
  const db = await database(true);
  await db.query(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES
      ('openai', 'gpt-4o-mini', 1000000, 0), ('openai', 'gpt-4o-mini', 0, 1000000),
      ('acme', 'mystery', 10, 10)`);
  const report = await runCli(['report', '--database-url', db.url]);
  t.is(report.code, 0, report.stderr);
  t.regex(report.stdout, /gpt-4o-mini\s*│\s*2\s*│/);
  t.regex(report.stdout, /\$0\.75/); // 0.15 + 0.60
  t.regex(report.stdout, /1 call\(s\) have no price in force/);
  // The model without a price costs "unpriced", never $0.00.
  const mystery = report.stdout.split('\n').find((line) => line.includes('mystery'))!;
  t.regex(mystery, /│\s+unpriced\s+│/);
  t.notRegex(mystery, /\$0\.00/);
  // The total leaves the unpriced call out: at least what the others cost.
  t.regex(report.stdout, /total .*│ +≥ \$0\.75 │/);

  // A tenant only some of whose calls are priced costs at least those.
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES
    ('openai', 'gpt-4o-mini', 'mixed', 1000000), ('acme', 'mystery', 'mixed', 10), ('openai', 'gpt-4o-mini', 'priced', 1000000)`);
  const byTenant = await runCli(['report', '--by', 'tenant', '--database-url', db.url]);
  t.is(byTenant.code, 0, byTenant.stderr);
  t.regex(byTenant.stdout.split('\n').find((line) => line.includes('mixed'))!, /│ +≥ \$0\.15 │ .*│ +1 │$/);
  t.regex(byTenant.stdout.split('\n').find((line) => line.startsWith('│ priced '))!, /│ +\$0\.15 │/);
});

test('report --format json keeps micro-dollars exact, as strings', async (t) => {
  const db = await database(true);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('openai', 'gpt-4o-mini', 7, 3)`);
  const report = await runCli(['report', '--format', 'json', '--since', '1d', '--database-url', db.url]);
  t.is(report.code, 0, report.stderr);
  const rows = JSON.parse(report.stdout) as Array<{ model: string; costMicros: string; calls: string }>;
  t.deepEqual(rows.map((r) => [r.model, r.calls, r.costMicros]), [['gpt-4o-mini', '1', '3']]);
});

test('report --format json has the fields of the CSV, named alike by model and by any dimension', async (t) => {
  const db = await database(true);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, status, input_tokens) VALUES
                    ('openai', 'gpt-4o-mini', 'acme', 'success', 1000), ('openai', 'gpt-4o-mini', 'acme', 'error', 10),
                    ('openai', 'no-such-model', NULL, 'success', 5)`);
  const camel = (column: string) => column.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
  for (const by of [[], ['--by', 'model'], ['--by', 'tenant'], ['--by', 'day']]) {
    const run = async (format: string) => {
      const result = await runCli(['report', ...by, '--since', '1d', '--format', format, '--database-url', db.url]);
      t.is(result.code, 0, result.stderr);
      return result.stdout;
    };
    // By model a row is named by provider and model; by any other dimension, by its value.
    const keyColumns = by[1] === undefined || by[1] === 'model' ? 2 : 1;
    const [head, ...lines] = (await run('csv')).trim().split('\n').map((line) => line.split(','));
    const fromCsv = lines.map((line) => Object.fromEntries(line.map((field, index) => {
      const column = head![index]!;
      // A figure's column is named in camelCase; a column that names the row keeps its name.
      const name = index < keyColumns ? column : camel(column);
      return [name, field === '' ? null : field];
    })));
    const fromJson = (JSON.parse(await run('json')) as Array<Record<string, unknown>>)
      .map((row) => Object.fromEntries(Object.entries(row).map(([name, value]) => [name, value === null ? null : String(value)])));
    t.deepEqual(fromJson, fromCsv, `report ${by.join(' ') || 'by model'}`);
    t.true(fromJson.every((row) => Object.keys(row).includes('shareOfCost') && Object.keys(row).includes('failedCalls')));
  }
});

test('report --format csv', async (t) => {
  const db = await database(true);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('openai', 'gpt-4o-mini', 1000)`);
  const report = await runCli(['report', '--format', 'csv', '--database-url', db.url]);
  t.deepEqual(report.stdout.trim().split('\n'), [
    'provider,model,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost,billed_micros,unbilled_calls',
    // Without markups nothing is billed: an empty charge, never 0.
    'openai,gpt-4o-mini,1,0,1000,0,150,0,1,,1',
  ]);
});

test('report --format csv: the share of cost is rounded alike by model and by any dimension', async (t) => {
  const db = await database(true);
  // 880,818 and 9,119,182 micro-dollars: shares 0.0880818 and 0.9119182.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES
                    ('openai', 'share-a', '2020-01-01', 1), ('openai', 'share-b', '2020-01-01', 1)`);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES
                    ('openai', 'share-a', 'ta', 880818), ('openai', 'share-b', 'tb', 9119182)`);
  const shares = async (by: string) => {
    const report = await runCli(['report', '--format', 'csv', '--by', by, '--database-url', db.url]);
    t.is(report.code, 0, report.stderr);
    const [head, ...rows] = report.stdout.trim().split('\n').map((line) => line.split(','));
    const share = head!.indexOf('share_of_cost');
    return rows.map((row) => row[share]).sort();
  };
  t.deepEqual(await shares('model'), ['0.088082', '0.911918']);
  t.deepEqual(await shares('tenant'), ['0.088082', '0.911918']);
});

test('no database given: one clear line', async (t) => {
  assertOneLineError(t, await runCli(['report']), /no database given: pass --database-url or set DATABASE_URL/);
});

test('a URL that is not a URL: one clear line', async (t) => {
  assertOneLineError(t, await runCli(['migrate', 'up', '--database-url', 'not a url']), /invalid database URL/);
  assertOneLineError(t, await runCli(['migrate', 'up', '--database-url', 'mysql://localhost/x']), /scheme mysql: is not postgres/);
  assertOneLineError(t, await runCli(['report', '--database-url', 'postgres://localhost:99999/x']), /^ai-cost: invalid database URL: port 99999 is not a port \(1 to 65535\)\n$/);
});

test('an unreachable server: one clear line', async (t) => {
  const port = await freePort();
  assertOneLineError(t, await runCli(['migrate', 'up', '--database-url', `postgres://postgres@127.0.0.1:${port}/x`]),
    /cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: connection refused/);
});

/** A TCP server on a free port that does `onSocket` with each connection; closed when the test ends. */
async function fakeServer(t: import('ava').ExecutionContext, onSocket: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

test('a server that accepts and hangs up, or resets the connection: one clear line', async (t) => {
  // Once the startup message is in: a close (FIN) and a reset (RST).
  for (const hangUp of [(socket: Socket) => socket.end(), (socket: Socket) => socket.resetAndDestroy()]) {
    const port = await fakeServer(t, (socket) => socket.once('data', () => hangUp(socket)));
    for (const command of [['migrate', 'up'], ['report']]) {
      assertOneLineError(t, await runCli([...command, '--database-url', `postgres://postgres@127.0.0.1:${port}/x`]),
        /^ai-cost: the connection to PostgreSQL ended unexpectedly: the server closed it/);
    }
  }
});

test('a server that never answers: one clear line once connect_timeout (10 s unless the URL says) has passed', async (t) => {
  const port = await fakeServer(t, () => {});
  for (const command of [['migrate', 'status'], ['report']]) {
    assertOneLineError(t, await runCli([...command, '--database-url', `postgres://postgres@127.0.0.1:${port}/x?connect_timeout=1`]),
      /^ai-cost: cannot connect to PostgreSQL: the server did not answer in time .*connect_timeout=<seconds> in the URL waits longer\)\n$/);
  }
  const started = Date.now();
  assertOneLineError(t, await runCli(['migrate', 'up', '--database-url', `postgres://postgres@127.0.0.1:${port}/x`]),
    /did not answer in time/);
  t.true(Date.now() - started >= 9_000, 'the default wait is 10 s');
  assertOneLineError(t, await runCli(['report', '--database-url', `postgres://postgres@127.0.0.1:${port}/x?connect_timeout=soon`]),
    /^ai-cost: invalid database URL: connect_timeout 'soon' is not a whole number of seconds\n$/);
});

test('SSL asked of a server without it: one clear line', async (t) => {
  // A server that answers the SSL request with N (no SSL), as PostgreSQL with ssl = off does.
  const port = await fakeServer(t, (socket) => socket.once('data', () => socket.write('N')));
  for (const command of [['migrate', 'up'], ['report']]) {
    assertOneLineError(t, await runCli([...command, '--database-url', `postgres://postgres@127.0.0.1:${port}/x?sslmode=require`]),
      /^ai-cost: cannot connect to PostgreSQL: the URL asks for SSL \(its sslmode\) and the server does not support it; use sslmode=disable, or enable ssl on the server\n$/);
  }
});

test('a date and time without a zone is UTC, whatever the zone of the machine', async (t) => {
  const db = await database(true);
  const set = await runCli(['prices', 'set', 'openai', 'gpt-zoneless', '--input', '1', '--from', '2026-01-01T10:00', '--database-url', db.url],
    { TZ: 'Asia/Tokyo' });
  t.is(set.code, 0, set.stderr);
  const spaced = await runCli(['prices', 'set', 'openai', 'gpt-zoneless', '--input', '2', '--from', '2026-02-01 10:00:30', '--database-url', db.url],
    { TZ: 'America/Los_Angeles' });
  t.is(spaced.code, 0, spaced.stderr);
  const rows = await db.query<{ valid_from: string }>(
    `SELECT to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS valid_from FROM ai_cost.prices WHERE model = 'gpt-zoneless' ORDER BY valid_from`);
  t.deepEqual(rows.map((row) => row.valid_from), ['2026-01-01 10:00:00', '2026-02-01 10:00:30']);
});

test('a database that does not exist: one clear line', async (t) => {
  const url = serverUrl('no_such_database_here');
  assertOneLineError(t, await runCli(['migrate', 'up', '--database-url', url]), /database "no_such_database_here" does not exist/);
});

test('report on a database without pg-ai-cost: one clear line that says what to run', async (t) => {
  const db = await database(false);
  assertOneLineError(t, await runCli(['report', '--database-url', db.url]), /not installed in this database.*ai-cost migrate up/);
});

test('bad arguments: one clear line naming the problem', async (t) => {
  const db = await database(true);
  assertOneLineError(t, await runCli(['migrate', 'sideways', '--database-url', db.url]), /unknown migrate action 'sideways'/);
  const since = await runCli(['report', '--since', 'yesterday-ish', '--database-url', db.url]);
  t.not(since.code, 0);
  t.regex(since.stderr, /'yesterday-ish' is not a date/);
  const format = await runCli(['report', '--format', 'xml', '--database-url', db.url]);
  t.not(format.code, 0);
  t.regex(format.stderr, /xml/);
});
