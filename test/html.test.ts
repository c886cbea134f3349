import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

const CHROMIUM = '/usr/bin/chromium';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, output_tokens, total_ms, status)
      SELECT now() - g * interval '3 hours', (ARRAY['openai', 'anthropic'])[1 + g % 2],
             (ARRAY['gpt-4o-mini', 'claude-haiku-4-5'])[1 + g % 2], 'tenant-' || (g % 4), 1000 + g, 100, 200 + g * 3,
             CASE WHEN g % 9 = 0 THEN 'error' ELSE 'success' END
        FROM generate_series(1, 120) AS g`);
  },
});

/** Loads the page in headless Chromium, lets its scripts run, and returns the DOM it ended with. */
function renderedDom(file: string, profile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom',
      `file://${file}`,
    ], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

test('the HTML report is one offline page whose four charts draw in Chromium', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.log('skipped: no Chromium at /usr/bin/chromium (apt-get install chromium)');
    t.pass();
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ai-cost-html-'));
  try {
    const file = join(dir, 'report.html');
    const cli = await runCli(['report', '--html', file, '--since', '30d', '--database-url', db.url]);
    t.is(cli.code, 0, cli.stderr);
    const html = await readFile(file, 'utf8');
    // Self-contained: no script, style or image fetched from anywhere.
    t.notRegex(html, /<(script|link|img)[^>]+(src|href)=/i);
    t.regex(html, /tenant-\d/);
    const dom = await renderedDom(file, join(dir, 'profile'));
    t.regex(dom, /<body[^>]*data-charts-drawn="4"/, 'all four charts put pixels on their canvas');
    for (const id of ['daily', 'providers', 'latency', 'tenants']) {
      const painted = new RegExp(`<canvas id="${id}"[^>]*data-painted-pixels="(\\d+)"`).exec(dom);
      t.true(Number(painted?.[1]) > 1000, `chart ${id} is drawn (${painted?.[1]} pixels)`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
