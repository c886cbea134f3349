import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { useTestDatabase } from './support/database.js';
import { goWithPgx, psql, pythonWithPsycopg, testWithTool } from './support/tools.js';

/**
 * The examples in examples/ record the same three calls from psql, Python
 * (psycopg2), Go (pgx), Node (pg) and the TypeScript recorder. Each run
 * uses its own request_id prefix; every language must store the rows Node
 * stores, priced identically by the trigger. A language whose tools this
 * machine lacks is skipped, saying what to install (support/tools.ts).
 */
const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const db = useTestDatabase(test);

const COLUMNS = `provider, model, tenant_id, feature, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
  reasoning_tokens, provided_cost_micros, total_ms, cost_micros, price_id, unpriced_reason`;

async function stored(prefix: string) {
  return db.query<Record<string, unknown>>(`SELECT ${COLUMNS} FROM ai_cost.calls WHERE request_id LIKE $1 ORDER BY request_id`, [`${prefix}-%`]);
}

async function runExample(command: string, args: string[], env: Record<string, string> = {}) {
  return run(command, args, { cwd: root, env: { ...process.env, DATABASE_URL: db.url, ...env }, timeout: 90_000 });
}

const GO_ENV = {
  // Offline: Debian's Go sources in GOPATH mode, no module proxy.
  GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOPROXY: 'off', GOFLAGS: '', GOCACHE: join(tmpdir(), 'ai-cost-go-cache'),
};

/** The Node example needs nothing but Node: its rows are the reference the others must match. */
async function recordWith(language: string, command: string, args: string[], env: Record<string, string> = {}) {
  await runExample(command, args, env).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`the ${language} example failed: ${error.stderr?.trim() || error.message}`);
  });
}

test.serial('Node (pg) stores the three calls at their exact cost', async (t) => {
  await recordWith('node', process.execPath, ['examples/node/record-calls.mjs', 'node']);
  t.deepEqual((await stored('node')).map((row) => row.cost_micros), [
    '284', // 176 uncached x 0.15 + 1024 cached x 0.075 + 300 output x 0.60 = 283.2, rounded up once
    '12000', // 50 x 3.00 + 1000 x 0.30 + 3000 x 3.75 + 20 x 15.00
    '1234', // the cost OpenRouter reported
  ]);
});

test.serial('the TypeScript recorder stores what Node stores', async (t) => {
  await recordWith('recorder', process.execPath, ['--import=tsx', 'examples/typescript/recorder.ts', 'recorder']);
  t.deepEqual(await stored('recorder'), await stored('node'));
});

testWithTool(test.serial, psql, 'psql stores what Node stores', async (t, command) => {
  await recordWith('psql', command, [db.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'prefix=psql', '-f', 'examples/psql/record-calls.sql']);
  t.deepEqual(await stored('psql'), await stored('node'));
});

testWithTool(test.serial, pythonWithPsycopg, 'Python (psycopg2) stores what Node stores, and running it twice records nothing twice', async (t, command) => {
  await recordWith('python', command, ['examples/python/record_calls.py', 'python']);
  t.deepEqual(await stored('python'), await stored('node'));
  await recordWith('python', command, ['examples/python/record_calls.py', 'python']);
  t.is((await stored('python')).length, 3, 'the request_ids were recorded once');
});

testWithTool(test.serial, goWithPgx, 'Go (pgx) stores what Node stores', async (t, command) => {
  await recordWith('go', command, ['run', 'examples/go/main.go', 'go'], GO_ENV);
  t.deepEqual(await stored('go'), await stored('node'));
});
