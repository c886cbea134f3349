import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// On Node 20 the CLI and the library say what is wrong, in words that fit
// where the user is, before a dependency fails with an obscure TypeError.

const PRETEND_20 = fileURLToPath(new URL('./fixtures/pretend-node-20.mjs', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/ai-cost.js', import.meta.url));
const LIBRARY = new URL('../dist/index.js', import.meta.url).href;

function runNode(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', PRETEND_20, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

test('the CLI of the source checkout points at the npm scripts', async (t) => {
  const result = await runNode([BIN, '--help']);
  t.is(result.code, 1);
  t.is(result.stderr.trim(), 'ai-cost: needs Node.js 22 or later, this is v20.20.2: run it through the npm scripts (npm run demo), which bring Node 24, or install a current Node.js');
});

test('the CLI of an installed package asks for a current Node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ai-cost-installed-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'bin'));
  await copyFile(BIN, join(dir, 'bin', 'ai-cost.js'));
  const result = await runNode([join(dir, 'bin', 'ai-cost.js'), '--help']);
  t.is(result.code, 1);
  t.regex(result.stderr.trim(), /^ai-cost: needs Node\.js 22 or later, this is v20\.20\.2: install a current Node\.js \(https:\/\/nodejs\.org\) and run ai-cost with it$/);
});

test('importing the library says which Node it needs', async (t) => {
  const result = await runNode(['--input-type=module', '-e', `import(${JSON.stringify(LIBRARY)}).catch((error) => { console.error(error.message); process.exit(3); })`]);
  t.is(result.code, 3);
  t.regex(result.stderr, /pg-ai-cost needs Node\.js 22 or later; this is v20\.20\.2/);
});
