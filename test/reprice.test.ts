import test from 'ava';
import { previewReprice, repriceCosts, repriceRun, runReprice, startReprice } from '../src/pricing/reprice.js';
import { runCli } from './support/cli.js';
import { useTestDatabase, type TestDatabase } from './support/database.js';

// Each test uses a provider of its own, so the tests can run side by side.
const db = useTestDatabase(test);
const window = { from: new Date('2025-01-01T00:00:00Z'), to: new Date('2026-01-01T00:00:00Z') };

/** A model priced 1/1 from 2025-01-01 with `calls` calls of 1,000 input + 1,000 output (2,000 each) from March on. */
async function seed(db: TestDatabase, provider: string, calls: number) {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ($1, 'm', '2025-01-01', 1, 1)`, [provider]);
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, created_at)
                  SELECT $1, 'm', 1000, 1000, '2025-03-01'::timestamptz + i * interval '1 hour'
                    FROM generate_series(1, $2) i`, [provider, calls]);
}

/** The price was cut from 2025-02-01 and we learn it late: new row 0.5/0.5 (1,000 each call). */
const cutPrice = (provider: string) => db.query(
  `INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ($1, 'm', '2025-02-01', 0.5, 0.5)`,
  [provider]);

const costs = async (provider: string) => (await db.query<{ cost_micros: string }>(
  'SELECT cost_micros FROM ai_cost.calls WHERE provider = $1 ORDER BY id', [provider])).map((r) => r.cost_micros);

test('a dry run reports the delta and writes nothing; the real run makes it, audited', async (t) => {
  await seed(db, 'p-dry', 5);
  await cutPrice('p-dry');
  const preview = await previewReprice(db.pool, { ...window, provider: 'p-dry' });
  // 5 calls from 2,000 to 1,000 each: delta -5,000
  t.deepEqual(preview.map((r) => [r.calls, r.callsChanged, r.oldCostMicros, r.newCostMicros, r.deltaMicros]),
    [[5n, 5n, 10_000n, 5_000n, -5_000n]]);
  t.deepEqual(await costs('p-dry'), ['2000', '2000', '2000', '2000', '2000']);
  const started = await startReprice(db.pool, { ...window, provider: 'p-dry', reason: 'price cut learned late' });
  const done = await runReprice(db.pool, started.id, { batchSize: 2 });
  t.deepEqual([done.callsDone, done.callsChanged, done.deltaMicros, done.finished], [5n, 5n, -5_000n, true]);
  t.deepEqual(await costs('p-dry'), ['1000', '1000', '1000', '1000', '1000']);
  const audit = await db.query<{ old_cost_micros: string; new_cost_micros: string; changed: boolean; reason: string }>(
    `SELECT old_cost_micros, new_cost_micros, old_price_id <> new_price_id AS changed, reason
       FROM ai_cost.reprice_audit WHERE run_id = $1`, [String(started.id)]);
  t.is(audit.length, 5);
  t.true(audit.every((a) => a.old_cost_micros === '2000' && a.new_cost_micros === '1000' && a.changed
    && a.reason === 'price cut learned late'));
  // Nothing left to change: a second run audits nothing.
  const again = await runReprice(db.pool, (await startReprice(db.pool, { ...window, provider: 'p-dry', reason: 'again' })).id);
  t.is(again.callsChanged, 0n);
});

test('an interrupted run resumes where it stopped, changing each call once', async (t) => {
  await seed(db, 'p-resume', 7);
  await cutPrice('p-resume');
  const run = await startReprice(db.pool, { ...window, provider: 'p-resume', reason: 'resume test' });
  // One batch of 3, then the process "dies".
  await db.query('SELECT ai_cost.reprice_batch($1, 3)', [String(run.id)]);
  const midway = await repriceRun(db.pool, run.id);
  t.deepEqual([midway.callsDone, midway.finished], [3n, false]);
  t.deepEqual(await costs('p-resume'), ['1000', '1000', '1000', '2000', '2000', '2000', '2000']);
  const resumed = await runReprice(db.pool, run.id, { batchSize: 3 });
  t.deepEqual([resumed.callsDone, resumed.callsChanged, resumed.finished], [7n, 7n, true]);
  const [audit] = await db.query<{ rows: string; calls: string }>(
    'SELECT count(*) AS rows, count(DISTINCT call_id) AS calls FROM ai_cost.reprice_audit WHERE run_id = $1', [String(run.id)]);
  t.deepEqual(audit, { rows: '7', calls: '7' });
});

test('the SQL procedure reprices in committed batches', async (t) => {
  await seed(db, 'p-proc', 4);
  await cutPrice('p-proc');
  await db.query(`CALL ai_cost.reprice('2025-01-01', '2026-01-01', 'procedure', provider => 'p-proc', batch_size => 3)`);
  t.deepEqual(await costs('p-proc'), ['1000', '1000', '1000', '1000']);
});

test('backfill prices unpriced calls once a price arrives, and leaves priced history alone', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, created_at)
                  VALUES ('p-backfill', 'late', 1000, '2025-03-01'), ('p-backfill', 'late', 2000, '2025-03-02')`);
  t.deepEqual(await costs('p-backfill'), [null, null]);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('p-backfill', 'late', '-infinity', 3)`);
  const run = await startReprice(db.pool, { ...window, provider: 'p-backfill', onlyUnpriced: true, reason: 'backfill' });
  await runReprice(db.pool, run.id);
  // 1,000 x 3 = 3,000 and 2,000 x 3 = 6,000
  t.deepEqual(await costs('p-backfill'), ['3000', '6000']);
});

test('a run that prices unpriced calls, or leaves priced ones without a price, says how many and what they cost: not a $0 delta', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, created_at)
                  VALUES ('p-said', 'late', 1000, '2025-03-01'), ('p-said', 'late', 2000, '2025-03-02')`);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('p-said', 'late', '-infinity', 3)`);
  const run = await runCli(['reprice', '--from', '2025-01-01', '--to', '2026-01-01', '--provider', 'p-said', '--unpriced',
                            '--database-url', db.url]);
  t.is(run.code, 0, run.stderr);
  // 3,000 + 6,000 micro-dollars, unknown before: no delta over calls priced before and after.
  t.regex(run.stdout, /: 2 calls examined, 2 changed \(2 newly priced, now \$0\.009\), delta \$0\.00 on the calls priced before and after;/);

  // The price is withdrawn: ending it leaves those calls with no price in force.
  await db.query(`UPDATE ai_cost.prices SET valid_to = '2025-03-01' WHERE provider = 'p-said'`);
  const started = await startReprice(db.pool, { ...window, provider: 'p-said', reason: 'withdrawn' });
  await runReprice(db.pool, started.id);
  t.deepEqual(await repriceCosts(db.pool, started.id), { newlyPriced: 0n, newlyPricedMicros: 0n, newlyUnpriced: 2n, newlyUnpricedMicros: 9000n });
});

test('calls inserted while a reprice runs are priced right and none is missed', async (t) => {
  await seed(db, 'p-busy', 40);
  await cutPrice('p-busy');
  const run = await startReprice(db.pool, { ...window, provider: 'p-busy', reason: 'busy' });
  const writer = (async () => {
    for (let i = 0; i < 20; i += 1) {
      await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, created_at)
                      VALUES ('p-busy', 'm', 1000, 1000, '2025-04-01'::timestamptz + $1 * interval '1 minute')`, [i]);
    }
  })();
  await Promise.all([runReprice(db.pool, run.id, { batchSize: 3 }), writer]);
  const all = await costs('p-busy');
  t.is(all.length, 60);
  t.true(all.every((c) => c === '1000'));
});
