import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';
import { until } from './support/until.js';

// A file of its own: the reprice waits for every open transaction writing
// calls in its database, and this test holds one open on purpose.
const db = useTestDatabase(test);

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return client;
}

test('a reprice waits for a call still being inserted when a backdated price lands, and reprices it', async (t) => {
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('in-flight', 'm', '2025-01-01', 2, 2)`);
  const writer = await connect();
  const admin = await connect();
  t.teardown(async () => {
    await writer.end();
    await admin.end();
  });
  // The writer's transaction prices its call at the old price (2,000 micro-dollars) and stays open.
  await writer.query('BEGIN');
  await writer.query(`INSERT INTO ai_cost.calls (provider, model, created_at, input_tokens) VALUES ('in-flight', 'm', '2025-06-01', 1000)`);
  // Meanwhile the price is corrected back to January (1,000) and a reprice starts.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ('in-flight', 'm', '2025-01-02', 1, 1)`);
  const reprice = admin.query(`CALL ai_cost.reprice('2025-01-01', '2026-01-01', 'in-flight correction', 'in-flight')`);
  const adminPid = (admin as unknown as { processID: number }).processID;
  await until(async () => (await db.query<{ sleeping: boolean }>(
    `SELECT wait_event = 'PgSleep' AS sleeping FROM pg_stat_activity WHERE pid = $1`, [adminPid]))[0]?.sleeping === true,
  'the reprice to wait');
  t.deepEqual(await db.query(`SELECT count(*)::int AS runs FROM ai_cost.reprice_runs WHERE reason = 'in-flight correction'`),
    [{ runs: 0 }], 'no run has started while the insert is open');
  await writer.query('COMMIT');
  await reprice;
  const [call] = await db.query<{ cost_micros: string; audited: number }>(`
    SELECT c.cost_micros::text, (SELECT count(*)::int FROM ai_cost.reprice_audit a WHERE a.call_id = c.id) AS audited
      FROM ai_cost.calls c WHERE c.provider = 'in-flight'`);
  t.deepEqual(call, { cost_micros: '1000', audited: 1 });
  const [run] = await db.query<{ finished: boolean }>(
    `SELECT finished_at IS NOT NULL AS finished FROM ai_cost.reprice_runs WHERE reason = 'in-flight correction'`);
  t.true(run!.finished);
});
