import { availableParallelism } from 'node:os';
import type { RecorderClientResult } from './recorder-client.js';
import { inApplicationProcess, type Benchmark, type Measurement } from './support.js';

/** Issue 16: one process writes 50,000 calls/s through the recorder into one PostgreSQL, and record() stays at most 5 µs (p50). */
const TARGET = { callsPerSecond: 50_000, recordP50Us: 5 };

/**
 * What recording costs the application: the batching recorder (record()
 * returns at once, background writers batch) next to what teams do by hand,
 * an awaited single-row INSERT per call. Same database, same run. Where the
 * recorder's time goes is measured part by part: validation (record()),
 * encoding a batch as JSON, and the database's ai_cost.insert_calls() on
 * batches sent one at a time; and, for the recorder as a whole, the CPU of
 * the application and of the database backends per call. The application is
 * bench/recorder-client.ts, run by plain Node on the built package
 * (`npm run bench` builds it first).
 */
const bench: Benchmark = {
  name: 'recorder',
  async run({ database, scale }) {
    const url = await database('recorder');
    const directCalls = Math.max(200, Math.round(3_000 * scale));
    const recorderCalls = Math.max(2_000, Math.round(50_000 * scale));
    const { direct, parts, runs, serverOptimisation } = await inApplicationProcess<RecorderClientResult>(
      ['measure', url, String(recorderCalls), String(directCalls)]);
    const run = [...runs].sort((a, b) => a.rate - b.rate)[Math.floor(runs.length / 2)]!;
    const m = (metric: string, value: number, unit: string, more: Partial<Measurement> = {}): Measurement =>
      ({ bench: 'recorder', metric, value, unit, ...more });
    return [
      m(`awaited single-row INSERT, ${directCalls} calls: throughput`, direct.rate, 'calls/s'),
      m('awaited single-row INSERT: caller waits p50', direct.p50, 'µs'),
      m('awaited single-row INSERT: caller waits p99', direct.p99, 'µs'),
      m('part: validating a call (CPU)', parts.validateUs, 'µs/call'),
      m('part: encoding a call into a batch (CPU)', parts.encodeUs, 'µs/call'),
      m('part: ai_cost.insert_calls() of 1,000-call batches (backend CPU)', parts.insertUs, 'µs/call'),
      m('part: 1,000-call batches one at a time on one connection', parts.insertRate, 'calls/s'),
      m(`recorder, ${recorderCalls} calls: throughput (record to flushed), median of ${runs.length}`, run.rate, 'calls/s', {
        target: TARGET.callsPerSecond, higherIsBetter: true,
        heldBy: `each call costs the database backends ${run.databaseUs.toFixed(1)} us of CPU and the application ` +
          `${run.clientUs.toFixed(1)} us, on ${availableParallelism()} cores shared by both; the server is compiled ` +
          `with ${serverOptimisation ?? 'unknown'} optimisation; variants tried: docs/recording.md, "The recorder (TypeScript)"`,
      }),
      m('recorder: record() on the caller path p50', run.p50, 'µs', { target: TARGET.recordP50Us }),
      m('recorder: record() on the caller path p99', run.p99, 'µs'),
      m('recorder: the application (CPU)', run.clientUs, 'µs/call'),
      m('recorder: database backends (CPU)', run.databaseUs, 'µs/call'),
      m('throughput ratio (recorder / awaited INSERT)', run.rate / direct.rate, 'x'),
      m('caller latency ratio p50 (awaited INSERT / record())', direct.p50 / run.p50, 'x'),
    ];
  },
};
export default bench;
