import pg from 'pg';
import { medianMs, type Benchmark } from './support.js';

/**
 * What the cost trigger adds to a bulk INSERT ... SELECT: the same rows into
 * ai_cost.calls and into an identical table without the trigger.
 */
const bench: Benchmark = {
  name: 'trigger',
  async run({ database, scale }) {
    const rows = Math.max(1_000, Math.round(200_000 * scale));
    const client = new pg.Client({ connectionString: await database('trigger') });
    await client.connect();
    try {
      await client.query('CREATE TABLE plain_calls (LIKE ai_cost.calls INCLUDING ALL)');
      const insert = (table: string) => `
        INSERT INTO ${table} (provider, model, tenant_id, input_tokens, output_tokens, cache_read_tokens)
        SELECT 'openai', CASE WHEN i % 3 = 0 THEN 'gpt-4o-mini' WHEN i % 3 = 1 THEN 'gpt-4.1' ELSE 'o4-mini' END,
               'tenant-' || (i % 50), 1000 + i % 500, 200 + i % 100, i % 400
          FROM generate_series(1, ${rows}) AS i`;
      const run = async (table: string) => {
        await client.query(`TRUNCATE ${table}`);
        await client.query(insert(table));
      };
      const without = await medianMs(3, () => run('plain_calls'));
      const withTrigger = await medianMs(3, () => run('ai_cost.calls'));
      return [
        { bench: 'trigger', metric: `bulk INSERT..SELECT ${rows} rows, no trigger`, value: rows / (without / 1000), unit: 'rows/s' },
        { bench: 'trigger', metric: `bulk INSERT..SELECT ${rows} rows, cost trigger`, value: rows / (withTrigger / 1000), unit: 'rows/s' },
        { bench: 'trigger', metric: 'bulk insert time ratio (trigger / none)', value: withTrigger / without, unit: 'x' },
      ];
    } finally {
      await client.end();
    }
  },
};
export default bench;
