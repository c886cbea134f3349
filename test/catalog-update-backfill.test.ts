import test from 'ava';
import { migrate, MigrationFailedError, shippedMigrations } from '../src/migrate.js';
import { diagnose } from '../src/reporting/doctor.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { installRelease } from './support/releases.js';

const CATALOG_UPDATE = '0011_catalog_2026_07';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase({ migrated: false });
});
test.after.always(async () => {
  await db.drop();
});

// Calls of models the catalog update prices (directly, through a new alias
// of an older row, at a long-context tier, at a tier an older model lacked),
// calls it does not, and calls priced already.
const CALLS = `
  INSERT INTO ai_cost.calls (created_at, provider, model, service_tier, input_tokens, output_tokens, request_id)
  SELECT '2026-06-01'::timestamptz + i * interval '1 minute', v.provider, v.model, v.tier, v.input, v.output, v.request_id || '-' || i
    FROM generate_series(1, 3) AS i,
         (VALUES ('anthropic', 'claude-opus-5', 'standard', 1000, 200, 'opus-5'),
                 ('vertex', 'claude-sonnet-5@default', 'standard', 2000, 100, 'vertex-sonnet-5'),
                 ('amazon', 'us.anthropic.claude-sonnet-5', 'standard', 1000, 1000, 'bedrock-us-sonnet-5'),
                 ('openai', 'gpt-5.6', 'standard', 300000, 1000, 'gpt-5.6-long'),
                 ('xai', 'grok-4-0709', 'standard', 1000, 1000, 'grok-4-snapshot'),
                 ('anthropic', 'claude-sonnet-4-6', 'batch', 1000, 1000, 'sonnet-4-6-batch'),
                 ('acme', 'model-x', 'standard', 1000, 1000, 'own-price-only'),
                 ('nobody', 'model-y', 'standard', 1000, 1000, 'unknown'),
                 ('openai', 'gpt-4o', 'standard', 1000, 1000, 'priced-gpt-4o'),
                 ('anthropic', 'claude-sonnet-4-5', 'standard', 1000, 1000, 'priced-sonnet-4-5')) AS v (provider, model, tier, input, output, request_id)`;

interface CallRow { request_id: string; cost_micros: string | null; price_id: string | null; unpriced_reason: string | null }
const calls = () => db.query<CallRow>('SELECT request_id, cost_micros, price_id, unpriced_reason FROM ai_cost.calls ORDER BY id');
const run = async () => (await db.query<{ id: string; total_calls: string; calls_done: string; finished: boolean }>(
  `SELECT id, total_calls, calls_done, finished_at IS NOT NULL AS finished FROM ai_cost.reprice_runs WHERE catalog = '0.2.0'`))[0];

test.serial('an upgrade prices the calls left unpriced for the models it adds, in resumable audited batches, and nothing else', async (t) => {
  await installRelease(db, '0.1.0');
  const shipped = await shippedMigrations();
  await migrate(db.url, { count: shipped.indexOf(CATALOG_UPDATE) - 1 });
  await db.query(`INSERT INTO ai_cost.providers (id, name) VALUES ('acme', 'Acme')`);
  await db.query(CALLS);
  // A price of the user's own, inserted after its calls and never repriced: the catalog backfill leaves them be.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('acme', 'model-x', '-infinity', 1, 1)`);
  const before = await calls();
  t.is(before.length, 30);
  const priced = before.filter((c) => c.request_id.startsWith('priced-'));
  t.true(priced.every((c) => c.cost_micros !== null));
  const unpriced = before.filter((c) => !c.request_id.startsWith('priced-'));
  t.true(unpriced.every((c) => c.cost_micros === null));
  t.true(unpriced.filter((c) => !c.request_id.startsWith('unknown')).every((c) => /^no (batch-tier )?price for model/.test(c.unpriced_reason!)));

  // The migration adds the rows and registers the backfill; the backfill waits.
  const upgrade = await migrate(db.url, { backfill: false, count: 1 });
  t.deepEqual(upgrade.ran, [CATALOG_UPDATE]);
  t.deepEqual(upgrade.backfills, []);
  t.deepEqual(await calls(), before);
  const registered = await run();
  t.like(registered, { total_calls: '24', calls_done: '0', finished: false });

  // Interrupted after one batch of 4 (the first unpriced calls of minute 1): those the catalog prices are priced already.
  await db.query('SELECT ai_cost.reprice_batch($1, 4)', [registered!.id]);
  t.like(await run(), { calls_done: '4', finished: false });
  const halfway = (await calls()).filter((c, i) => c.cost_micros !== before[i]!.cost_micros);
  t.true(halfway.length > 0 && halfway.every((c) => c.request_id.endsWith('-1')));
  t.is((await db.query('SELECT count(*)::int AS n FROM ai_cost.reprice_audit WHERE run_id = $1', [registered!.id]))[0]!.n, halfway.length);

  // Doctor says so.
  const pending = (await diagnose(db.url, db.pool)).checks.find((check) => check.name === 'catalog backfill');
  t.like(pending, { level: 'warn' });
  t.regex(pending!.detail, new RegExp(`built-in catalog 0\\.2\\.0 \\(reprice run ${registered!.id}, 4 of 24 unpriced calls examined\\) is unfinished.*ai-cost migrate up`));

  // The next migrate up (with the steps since, if any) resumes the run from its cursor and finishes it.
  const resumed = await migrate(db.url);
  t.deepEqual(resumed.ran, shipped.slice(shipped.indexOf(CATALOG_UPDATE) + 1));
  t.deepEqual(resumed.backfills, [{ run: BigInt(registered!.id), catalog: '0.2.0', callsPriced: 18n }]);
  t.like(await run(), { calls_done: '24', finished: true });
  t.deepEqual((await migrate(db.url)).backfills, [], 'a finished backfill is not run again');
  t.false((await diagnose(db.url, db.pool)).checks.some((check) => check.name === 'catalog backfill'));

  const after = await calls();
  const byRequest = new Map(after.map((c) => [c.request_id, c]));
  for (const request of ['opus-5', 'vertex-sonnet-5', 'bedrock-us-sonnet-5', 'gpt-5.6-long', 'grok-4-snapshot', 'sonnet-4-6-batch']) {
    for (const i of [1, 2, 3]) t.not(byRequest.get(`${request}-${i}`)!.cost_micros, null, `${request}-${i} is priced`);
  }
  for (const request of ['own-price-only', 'unknown']) {
    for (const i of [1, 2, 3]) t.is(byRequest.get(`${request}-${i}`)!.cost_micros, null, `${request}-${i} stays unpriced`);
  }
  t.deepEqual(after.filter((c) => c.request_id.startsWith('priced-')), priced, 'priced calls keep their cost and price row');

  // Hand-computed: Claude Opus 5 is $5/$25 per 1M, so 1,000 in + 200 out = 5,000 + 5,000 micro-dollars;
  // GPT-5.6 above 272k input tokens is $10/$45 per 1M, so 300,000 in + 1,000 out = 3,000,000 + 45,000.
  t.is(byRequest.get('opus-5-1')!.cost_micros, '10000');
  t.is(byRequest.get('gpt-5.6-long-1')!.cost_micros, '3045000');
  // Claude Sonnet 4.6 through the Batches API is half of $3/$15: 1,000 x 1.5 + 1,000 x 7.5.
  t.is(byRequest.get('sonnet-4-6-batch-1')!.cost_micros, '9000');

  // Priced exactly as the same call inserted now is (but for the user's own price, which prices a new call).
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, service_tier, input_tokens, output_tokens, request_id)
    SELECT created_at, provider, model, service_tier, input_tokens, output_tokens, 'twin-' || request_id
      FROM ai_cost.calls WHERE request_id NOT LIKE 'priced-%' AND provider <> 'acme'`);
  t.deepEqual(await db.query(`
    SELECT count(*)::int AS calls,
           bool_and(o.cost_micros IS NOT DISTINCT FROM twin.cost_micros AND o.price_id IS NOT DISTINCT FROM twin.price_id) AS same
      FROM ai_cost.calls o JOIN ai_cost.calls twin ON twin.request_id = 'twin-' || o.request_id`), [{ calls: 21, same: true }]);

  // The catalog's rows priced them: its new rows, and an older row through a new alias.
  t.deepEqual(await db.query(`
    SELECT p.catalog, count(*)::int AS calls FROM ai_cost.calls c JOIN ai_cost.prices p ON p.id = c.price_id
     WHERE c.request_id NOT LIKE 'priced-%' AND c.request_id NOT LIKE 'twin-%' GROUP BY 1 ORDER BY 1`),
  [{ catalog: '0.1.0', calls: 3 }, { catalog: '0.2.0', calls: 15 }]);

  // One audit row per call priced, saying from what to what, and none for any other call.
  t.deepEqual(await db.query(`
    SELECT c.request_id, a.old_cost_micros, a.new_cost_micros = c.cost_micros AS cost, a.new_price_id = c.price_id AS price,
           a.old_unpriced_reason ~ '^no (batch-tier )?price for model' AS was_unpriced, a.new_unpriced_reason
      FROM ai_cost.reprice_audit a JOIN ai_cost.calls c ON c.id = a.call_id
     WHERE a.run_id = $1 ORDER BY c.id`, [registered!.id]),
  after.filter((c) => c.cost_micros !== null && !c.request_id.startsWith('priced-')).map((c) => ({
    request_id: c.request_id, old_cost_micros: null, cost: true, price: true, was_unpriced: true, new_unpriced_reason: null,
  })));
});

test.serial('going down past the catalog update is refused while calls are priced by its rows', async (t) => {
  const catalogRows = `SELECT count(*)::int AS n FROM ai_cost.prices WHERE catalog = '0.2.0'`;
  const rows = await db.query<{ n: number }>(catalogRows);
  const shipped = await shippedMigrations();
  const error = await t.throwsAsync(migrate(db.url, { direction: 'down', count: shipped.length - shipped.indexOf(CATALOG_UPDATE) }),
    { instanceOf: MigrationFailedError });
  t.regex(error!.message, /calls are priced by rows of the built-in catalog 0\.2\.0/);
  t.deepEqual(await db.query(catalogRows), rows);
  t.true(rows[0]!.n > 100);
});
