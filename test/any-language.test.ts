import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { useTestDatabase } from './support/database.js';

/**
 * The examples in examples/ record the same three calls from psql, Python
 * (psycopg2), Go (pgx), Node (pg) and the TypeScript recorder. Each run
 * uses its own request_id prefix; every language must store identical rows,
 * priced identically by the trigger.
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

/** Python with psycopg2: the Debian package installs it for the system python3, which a pyenv or venv python3 may not see. */
async function pythonWithPsycopg(): Promise<string> {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      await run(python, ['-c', 'import psycopg2']);
      return python;
    } catch {
      // try the next one
    }
  }
  throw new Error('no python3 can import psycopg2: install the Debian package python3-psycopg2');
}

const GO_PGX = '/usr/share/gocode/src/github.com/jackc/pgx/v4';

const languages: Record<string, () => Promise<unknown>> = {
  psql: () => runExample('psql', [db.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', 'prefix=psql', '-f', 'examples/psql/record-calls.sql']),
  python: async () => runExample(await pythonWithPsycopg(), ['examples/python/record_calls.py', 'python']),
  go: () => {
    if (!existsSync(GO_PGX)) throw new Error('Go example needs the Debian packages golang-go and golang-github-jackc-pgx-v4-dev');
    // Offline: Debian's Go sources in GOPATH mode, no module proxy.
    return runExample('go', ['run', 'examples/go/main.go', 'go'], {
      GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOPROXY: 'off', GOFLAGS: '', GOCACHE: join(tmpdir(), 'ai-cost-go-cache'),
    });
  },
  node: () => runExample(process.execPath, ['examples/node/record-calls.mjs', 'node']),
  recorder: () => runExample(process.execPath, ['--import=tsx', 'examples/typescript/recorder.ts', 'recorder']),
};

test('psql, Python, Go, Node and the recorder store the same calls at the same cost', async (t) => {
  for (const [language, example] of Object.entries(languages)) {
    await example().catch((error: { stderr?: string; message: string }) => {
      throw new Error(`the ${language} example failed: ${error.stderr?.trim() || error.message}`);
    });
  }
  const reference = await stored('psql');
  t.deepEqual(reference.map((row) => row.cost_micros), [
    '284', // 176 uncached x 0.15 + 1024 cached x 0.075 + 300 output x 0.60 = 283.2, rounded up once
    '12000', // 50 x 3.00 + 1000 x 0.30 + 3000 x 3.75 + 20 x 15.00
    '1234', // the cost OpenRouter reported
  ]);
  for (const language of Object.keys(languages).filter((name) => name !== 'psql')) {
    t.deepEqual(await stored(language), reference, `${language} stores what psql stores`);
  }
});

test('running an example twice records nothing twice (request_id)', async (t) => {
  await languages.python!();
  await languages.python!();
  t.is((await stored('python')).length, 3);
});
