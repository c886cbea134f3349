import test from 'ava';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli.js';

// The README's quick start: `npm run demo` is `ai-cost demo` with no database
// given, which must start an embedded PostgreSQL of its own and print a report.
test('ai-cost demo with no database runs on an embedded PostgreSQL and prints spend by model', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ai-cost-demo-test-'));
  await chmod(dataDir, 0o755); // as root the server runs as postgres, which must enter it
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await runCli(['demo'], { AI_COST_DATA_DIR: dataDir });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /starting embedded PostgreSQL/);
  t.regex(first.stdout, /inserted 2,400 sample calls/);
  t.regex(first.stdout, /claude-sonnet-4-6/);
  t.regex(first.stdout, /total\s*│\s*│\s*2,400\s*│/);
  t.regex(first.stdout, /have no price in force/); // the demo's in-house model stays unpriced
  // A second run reuses the cluster and replaces the sample instead of adding to it.
  const second = await runCli(['demo'], { AI_COST_DATA_DIR: dataDir });
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /total\s*│\s*│\s*2,400\s*│/);
});
