import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);
const child = fileURLToPath(new URL('./support/recorder-exit-child.ts', import.meta.url));

function runChild(prefix: string, ending: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, ['--import=tsx', child, db.url, prefix, ending], { stdio: 'inherit' });
    const timer = setTimeout(() => process_.kill('SIGKILL'), 30_000);
    process_.on('error', reject);
    process_.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

async function count(prefix: string): Promise<number> {
  const [row] = await db.query<{ n: string }>('SELECT count(*) AS n FROM ai_cost.calls WHERE request_id LIKE $1', [`${prefix}-%`]);
  return Number(row!.n);
}

test('a process that ends without flush() or close() still writes what it recorded', async (t) => {
  const { code } = await runChild('natural', 'natural');
  t.is(code, 0);
  t.is(await count('natural'), 25);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`on ${signal} the recorder writes what is queued, then the process ends by the signal as it would have`, async (t) => {
    const exit = await runChild(signal.toLowerCase(), signal);
    t.deepEqual(exit, { code: null, signal });
    t.is(await count(signal.toLowerCase()), 25);
  });
}
