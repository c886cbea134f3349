import { setImmediate as yieldToLoop } from 'node:timers/promises';
import pg from 'pg';
import { createRecorder } from '../src/recorder/index.js';
import type { Benchmark } from './support.js';

const call = (i: number) => ({
  provider: 'openai', model: i % 2 ? 'gpt-4o-mini' : 'gpt-4.1', tenantId: `tenant-${i % 50}`, feature: 'bench',
  inputTokens: 1_000 + (i % 500), outputTokens: 200 + (i % 100), cacheReadTokens: i % 400, totalMs: 800,
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * What recording costs the application: the batching recorder (record()
 * returns at once, a background writer batches) next to what teams do by
 * hand, an awaited single-row INSERT per call. Same database, same run.
 */
const bench: Benchmark = {
  name: 'recorder',
  async run({ database, scale }) {
    const url = await database('recorder');
    const directCalls = Math.max(200, Math.round(3_000 * scale));
    const recorderCalls = Math.max(2_000, Math.round(50_000 * scale));

    // By hand: await one INSERT per call on the request path.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const directLatency: number[] = [];
    const directStart = process.hrtime.bigint();
    try {
      for (let i = 0; i < directCalls; i += 1) {
        const c = call(i);
        const start = process.hrtime.bigint();
        await client.query(
          `INSERT INTO ai_cost.calls (provider, model, tenant_id, feature, input_tokens, output_tokens, cache_read_tokens, total_ms, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (request_id) DO NOTHING`,
          [c.provider, c.model, c.tenantId, c.feature, c.inputTokens, c.outputTokens, c.cacheReadTokens, c.totalMs, `direct-${i}`],
        );
        directLatency.push(Number(process.hrtime.bigint() - start) / 1e3);
      }
    } finally {
      await client.end();
    }
    const directSeconds = Number(process.hrtime.bigint() - directStart) / 1e9;

    // The recorder: record() on the caller's path, the writer in the background.
    // Calls arrive in bursts of 100 with the event loop free in between, as requests would.
    const recorder = createRecorder({ databaseUrl: url, maxQueue: recorderCalls, flushOnExit: false });
    const recordLatency: number[] = [];
    const recorderStart = process.hrtime.bigint();
    for (let i = 0; i < recorderCalls; i += 1) {
      const c = { ...call(i), requestId: `recorder-${i}` };
      const start = process.hrtime.bigint();
      recorder.record(c);
      recordLatency.push(Number(process.hrtime.bigint() - start) / 1e3);
      if (i % 100 === 99) await yieldToLoop();
    }
    await recorder.flush();
    const recorderSeconds = Number(process.hrtime.bigint() - recorderStart) / 1e9;
    const metrics = recorder.metrics();
    await recorder.close();
    if (metrics.written !== recorderCalls) throw new Error(`recorder wrote ${metrics.written} of ${recorderCalls} calls`);

    directLatency.sort((a, b) => a - b);
    recordLatency.sort((a, b) => a - b);
    const directRate = directCalls / directSeconds;
    const recorderRate = recorderCalls / recorderSeconds;
    const m = (metric: string, value: number, unit: string) => ({ bench: 'recorder', metric, value, unit });
    return [
      m(`awaited single-row INSERT, ${directCalls} calls: throughput`, directRate, 'calls/s'),
      m('awaited single-row INSERT: caller waits p50', percentile(directLatency, 0.5), 'µs'),
      m('awaited single-row INSERT: caller waits p99', percentile(directLatency, 0.99), 'µs'),
      m(`recorder, ${recorderCalls} calls: throughput (record to flushed)`, recorderRate, 'calls/s'),
      m('recorder: record() on the caller path p50', percentile(recordLatency, 0.5), 'µs'),
      m('recorder: record() on the caller path p99', percentile(recordLatency, 0.99), 'µs'),
      m('throughput ratio (recorder / awaited INSERT)', recorderRate / directRate, 'x'),
      m('caller latency ratio p50 (awaited INSERT / record())', percentile(directLatency, 0.5) / percentile(recordLatency, 0.5), 'x'),
    ];
  },
};
export default bench;
