import pg from 'pg';
import { createPool } from '../src/db.js';
import { runReprice, startReprice } from '../src/pricing/reprice.js';
import { timed, type Benchmark } from './support.js';

/**
 * A reprice over a million calls (at scale 1): a price correction learned
 * late, applied in batches of 10,000 (one short transaction each) with an
 * audit row per changed call. Reports throughput, the number of batches the
 * progress callback saw, and that the audit trail has one row per call.
 */
const bench: Benchmark = {
  name: 'reprice',
  async run({ database, scale }) {
    const calls = Math.max(10_000, Math.round(1_000_000 * scale));
    const batchSize = 10_000;
    const url = await database('reprice');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pool = await createPool(url, 2);
    try {
      await client.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                                VALUES ('bench', 'm', '2025-01-01', 1, 1)`);
      await client.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, created_at)
                                SELECT 'bench', 'm', 1000 + i % 500, 200 + i % 100, '2025-03-01'::timestamptz + i * interval '1 second'
                                  FROM generate_series(1, ${calls}) i`);
      await client.query('ANALYZE ai_cost.calls');
      // The correction: a lower price from 2025-02-01.
      await client.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                                VALUES ('bench', 'm', '2025-02-01', 0.5, 0.5)`);
      let batches = 0;
      let result = { callsDone: 0n, callsChanged: 0n };
      const ms = await timed(async () => {
        const run = await startReprice(pool, {
          from: new Date('2025-01-01T00:00:00Z'), to: new Date('2030-01-01T00:00:00Z'), provider: 'bench', reason: 'bench',
        });
        result = await runReprice(pool, run.id, { batchSize, onBatch: () => { batches += 1; } });
      });
      const audit = BigInt((await client.query<{ count: string }>('SELECT count(*) FROM ai_cost.reprice_audit')).rows[0]!.count);
      if (result.callsChanged !== BigInt(calls) || audit !== BigInt(calls)) {
        throw new Error(`reprice changed ${result.callsChanged} calls and audited ${audit}, expected ${calls}`);
      }
      return [
        { bench: 'reprice', metric: `reprice ${calls} calls in batches of ${batchSize}`, value: calls / (ms / 1000), unit: 'calls/s' },
        { bench: 'reprice', metric: 'batches (progress updates)', value: batches, unit: 'batches' },
        { bench: 'reprice', metric: 'audit rows per changed call', value: Number(audit) / calls, unit: 'x' },
      ];
    } finally {
      await pool.end();
      await client.end();
    }
  },
};
export default bench;

