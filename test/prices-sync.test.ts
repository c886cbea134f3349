import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { freePort } from '../src/free-port.js';
import { setPrice } from '../src/pricing/prices.js';
import { runCli, type CliResult } from './support/cli.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl } from './support/logins.js';

// `ai-cost prices sync` against a price list served over HTTP by this test,
// from the fixture files under test/fixtures/litellm/ (the network is not
// reachable from tests). The lists hold a price that changes, one that does
// not, one the built-in catalog curates and the list gets wrong
// (claude-3-opus-20240229's 1-hour cache write: the catalog's 30, the
// list's 6), one of the user's own, and ids that are not models.

const reader = `sync_reader_${randomBytes(4).toString('hex')}`;
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`CREATE ROLE ${reader} LOGIN PASSWORD 'sync-test-pw' IN ROLE ai_cost_reader`);
    await setPrice(db.pool, {
      provider: 'openai', model: 'fixture-sync-mine', inputPerMtok: '3', outputPerMtok: '12', source: 'our contract',
      validFrom: new Date('2025-01-01T00:00:00Z'),
    });
  },
});

let server: Server;
let base: string;

test.before(async () => {
  server = createServer((request, response) => {
    const name = /^\/([a-z0-9-]+\.(json|html))$/.exec(request.url ?? '')?.[1];
    readFile(new URL(`fixtures/litellm/${name ?? 'none'}`, import.meta.url)).then(
      (body) => response.writeHead(200, { 'content-type': 'application/json' }).end(body),
      () => response.writeHead(404, 'Not Found').end('404: Not Found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await dropLogins(reader);
});

const sync = (...args: string[]) => runCli(['prices', 'sync', ...args], { DATABASE_URL: db.url });

/** Every price row of the models the fixture lists, as text: what a sync may change. */
async function fixtureRows() {
  return db.query<{ model: string; valid_from: string; valid_to: string | null; input: string | null; output: string | null;
    cache_write_1h: string | null; from_price_list: boolean; catalog: string | null; source: string | null }>(`
    SELECT model, valid_from::text, valid_to::text, input_per_mtok::text AS input, output_per_mtok::text AS output,
           cache_write_1h_per_mtok::text AS cache_write_1h, from_price_list, catalog, source
      FROM ai_cost.prices
     WHERE (model LIKE 'fixture-sync-%' OR model = 'claude-3-opus-20240229') AND service_tier = 'standard'
     ORDER BY model, valid_from`);
}

/** Every price row there is, to show that a command wrote nothing. */
const allRows = () => db.query('SELECT * FROM ai_cost.prices ORDER BY id');

function succeeded(t: import('ava').ExecutionContext, result: CliResult): string {
  t.is(result.code, 0, result.stderr);
  t.is(result.stderr, '');
  return result.stdout;
}

test.serial('a dry run shows what would be added and kept, and what is skipped and why, and writes nothing', async (t) => {
  const before = await allRows();
  const out = succeeded(t, await sync(`${base}/sync-v1.json`));
  t.deepEqual(out.trimEnd().split('\n'), [
    '  kept (curated) anthropic/claude-3-opus-20240229 standard: cache write 1h 30 (list: 6)',
    '+ openai/fixture-sync-changed standard: input 2, output 8',
    '  kept (yours) openai/fixture-sync-mine standard: input 3 (list: 2), output 12 (list: 6)',
    '+ openai/fixture-sync-same standard: input 1, output 4',
    '  skipped 1: not a model entry (last_updated)',
    '  skipped 1: not a model id: it names a wildcard (bedrock/*/1-month-commitment/cohere.command-text-v14)',
    '  skipped 1: not a model id: it names an image size (1024-x-1024/50-steps/stability.stable-diffusion-xl-v1)',
    '  skipped 1: the format\'s sample entry, not a model (sample_spec)',
    `${base}/sync-v1.json would make 2 added, 0 changed, 0 unchanged, 1 kept (curated), 1 kept (yours), 4 entries skipped`,
    'nothing was written: --apply writes these prices from now',
    'kept prices stay in force; --overwrite replaces them with the list\'s',
  ]);
  t.deepEqual(await allRows(), before);
});

test.serial('a dry run only reads: a reader may run it, and --apply needs the admin\'s rights', async (t) => {
  const asReader = { DATABASE_URL: loginUrl(db.url, reader, 'sync-test-pw') };
  const dry = await runCli(['prices', 'sync', `${base}/sync-v1.json`], asReader);
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /would make 2 added, /);
  const before = await allRows();
  const apply = await runCli(['prices', 'sync', `${base}/sync-v1.json`, '--apply'], asReader);
  t.is(apply.code, 1);
  t.regex(apply.stderr, /^ai-cost: permission denied: permission denied for table prices \(the reports need a login granted ai_cost_reader, which reads every tenant; prices, discounts and reprices ai_cost_admin: docs\/security\.md\)\n$/);
  t.deepEqual(await allRows(), before);
});

test.serial('--apply writes the added prices as price-list rows and keeps the curated and your own', async (t) => {
  const out = succeeded(t, await sync(`${base}/sync-v1.json`, '--apply'));
  t.regex(out, /: 2 added, 0 changed, 0 unchanged, 1 kept \(curated\), 1 kept \(yours\), 4 entries skipped$/m);
  t.deepEqual(await fixtureRows(), [
    { model: 'claude-3-opus-20240229', valid_from: '-infinity', valid_to: null, input: '15', output: '75', cache_write_1h: '30',
      from_price_list: false, catalog: '0.1.0', source: 'https://docs.anthropic.com/en/docs/about-claude/pricing' },
    // A model's first price applies to its earlier calls too.
    { model: 'fixture-sync-changed', valid_from: '-infinity', valid_to: null, input: '2', output: '8', cache_write_1h: null,
      from_price_list: true, catalog: null, source: `${base}/sync-v1.json` },
    { model: 'fixture-sync-mine', valid_from: '2025-01-01 00:00:00+00', valid_to: null, input: '3', output: '12', cache_write_1h: null,
      from_price_list: false, catalog: null, source: 'our contract' },
    { model: 'fixture-sync-same', valid_from: '-infinity', valid_to: null, input: '1', output: '4', cache_write_1h: null,
      from_price_list: true, catalog: null, source: `${base}/sync-v1.json` },
  ]);
});

test.serial('a changed list price starts a row --from the given instant and ends the one in force there', async (t) => {
  const dry = succeeded(t, await sync(`${base}/sync-v2.json`, '--from', '2025-08-01T00:00:00Z'));
  t.regex(dry, /^~ openai\/fixture-sync-changed standard: input 2 -> 1\.5$/m);
  t.regex(dry, /^\+ openai\/fixture-sync-new standard: input 0\.5, output 1\.5$/m);
  t.regex(dry, /would make 1 added, 1 changed, 1 unchanged, 1 kept \(curated\), 1 kept \(yours\), 4 entries skipped$/m);
  t.regex(dry, /--apply writes these prices from 2025-08-01T00:00:00\.000Z$/m);

  succeeded(t, await sync(`${base}/sync-v2.json`, '--from', '2025-08-01T00:00:00Z', '--apply'));
  const rows = await fixtureRows();
  t.deepEqual(rows.filter((r) => r.model === 'fixture-sync-changed').map((r) => [r.valid_from, r.valid_to, r.input, r.output]), [
    ['-infinity', '2025-08-01 00:00:00+00', '2', '8'],
    ['2025-08-01 00:00:00+00', null, '1.5', '8'],
  ]);
  t.deepEqual(rows.filter((r) => r.model === 'fixture-sync-new').map((r) => [r.valid_from, r.input, r.from_price_list]),
    [['-infinity', '0.5', true]]);
  t.is(rows.filter((r) => r.model === 'fixture-sync-same').length, 1, 'an unchanged price gets no new row');
  // Calls are priced by the row in force at their time.
  const costs = await db.query<{ cost_micros: string }>(`
    INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens, output_tokens) VALUES
      ('2025-07-31 23:59:59+00', 'openai', 'fixture-sync-changed', 1000000, 0),
      ('2025-08-01 00:00:00+00', 'openai', 'fixture-sync-changed', 1000000, 0)
    RETURNING cost_micros`);
  t.deepEqual(costs.map((c) => c.cost_micros), ['2000000', '1500000']);
});

test.serial('a second sync of the same list writes nothing', async (t) => {
  const before = await allRows();
  const out = succeeded(t, await sync(`${base}/sync-v2.json`, '--apply'));
  t.regex(out, /: 0 added, 0 changed, 3 unchanged, 1 kept \(curated\), 1 kept \(yours\), 4 entries skipped$/m);
  t.notRegex(out, /^[+~] /m);
  t.deepEqual(await allRows(), before);
});

test.serial('--json reports every price with its action, who set the price in force, and both prices', async (t) => {
  const out = succeeded(t, await sync(`${base}/sync-v2.json`, '--format', 'json'));
  const report = JSON.parse(out) as { written: boolean; prices: Array<{ model: string; action: string; origin: string | null;
    before: Record<string, string | null> | null; listed: Record<string, string | null> }>; skipped: Array<{ key: string; reason: string }> };
  t.false(report.written);
  const opus = report.prices.find((p) => p.model === 'claude-3-opus-20240229')!;
  t.like(opus, { action: 'kept', origin: 'catalog', before: { cache_write_1h_per_mtok: '30' }, listed: { cache_write_1h_per_mtok: '6' } });
  t.like(report.prices.find((p) => p.model === 'fixture-sync-mine'), { action: 'kept', origin: 'yours' });
  t.like(report.prices.find((p) => p.model === 'fixture-sync-same'), { action: 'unchanged', origin: 'price list' });
  t.deepEqual(report.skipped.map((s) => s.key).sort(), [
    '1024-x-1024/50-steps/stability.stable-diffusion-xl-v1', 'bedrock/*/1-month-commitment/cohere.command-text-v14', 'last_updated', 'sample_spec',
  ]);
});

test.serial('--overwrite replaces the curated price and your own from --from, keeping their history', async (t) => {
  const out = succeeded(t, await sync(`${base}/sync-v2.json`, '--apply', '--overwrite', '--from', '2025-09-01T00:00:00Z'));
  t.regex(out, /^~ anthropic\/claude-3-opus-20240229 standard: cache write 1h 30 -> 6$/m);
  t.regex(out, /^~ openai\/fixture-sync-mine standard: input 3 -> 2, output 12 -> 6$/m);
  t.regex(out, /: 0 added, 2 changed, 3 unchanged, 4 entries skipped$/m);
  const rows = await fixtureRows();
  t.deepEqual(rows.filter((r) => r.model === 'claude-3-opus-20240229').map((r) => [r.valid_from, r.valid_to, r.cache_write_1h, r.catalog, r.from_price_list]), [
    ['-infinity', '2025-09-01 00:00:00+00', '30', '0.1.0', false],
    ['2025-09-01 00:00:00+00', null, '6', null, true],
  ]);
  t.deepEqual(rows.filter((r) => r.model === 'fixture-sync-mine').map((r) => [r.valid_to, r.input, r.source]), [
    ['2025-09-01 00:00:00+00', '3', 'our contract'],
    [null, '2', `${base}/sync-v2.json`],
  ]);
});

/** A user error: one line on stderr naming the problem, exit 1, and no price written. */
async function refused(t: import('ava').ExecutionContext, args: string[], message: string | RegExp) {
  const before = await allRows();
  const result = await sync(...args, '--apply');
  t.is(result.code, 1, result.stdout);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  if (typeof message === 'string') t.is(result.stderr.trim(), message);
  else t.regex(result.stderr.trim(), message);
  t.is(result.stdout, '');
  t.deepEqual(await allRows(), before);
}

test.serial('an HTTP error is one line naming the status, and nothing is written', async (t) => {
  await refused(t, [`${base}/missing.json`], `ai-cost: ${base}/missing.json: HTTP 404 Not Found; nothing was written`);
});

test.serial('a body that is not JSON is one line, and nothing is written', async (t) => {
  await refused(t, [`${base}/not-a-list.html`], new RegExp(`^ai-cost: ${base}/not-a-list\\.html: not valid JSON: .*; nothing was written$`));
});

test.serial('JSON of the wrong shape is one line, and nothing is written', async (t) => {
  await refused(t, [`${base}/wrong-shape.json`],
    `ai-cost: ${base}/wrong-shape.json: expected a JSON object of model entries, as in LiteLLM's model_prices_and_context_window.json; nothing was written`);
});

test.serial('an entry with a malformed price is one line naming it, and nothing is written', async (t) => {
  await refused(t, [`${base}/malformed-cost.json`],
    `ai-cost: ${base}/malformed-cost.json: entry "fixture-claude": output_cost_per_token must be a non-negative number, not "15 dollars"; nothing was written`);
});

test.serial('an unreachable server is one line saying so, and nothing is written', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}/sync-v2.json`;
  await refused(t, [url], `ai-cost: cannot fetch ${url}: connection refused; nothing was written`);
});

test.serial('a URL that is not http(s) is refused before anything is fetched', async (t) => {
  await refused(t, ['file:///etc/passwd'], /^ai-cost: file:\/\/\/etc\/passwd: only http:\/\/ and https:\/\/ URLs can be fetched; use `ai-cost prices import <file>` for a file; nothing was written$/);
  await refused(t, ['not a url'], /^ai-cost: not a url is not a URL: /);
});
