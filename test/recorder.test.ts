import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { DatabasePool } from 'slonik';
import { createPool } from '../src/db.js';
import { callJson, callRecord } from '../src/recorder/call-columns.js';
import { createRecorder, parseCall, recordCall, type RecorderEvent, type RecorderOptions } from '../src/recorder/index.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok, cache_write_per_mtok)
                    VALUES ('test', 'cachy', '2024-01-01', 3.00, 15.00, 0.30, 3.75)`);
    // A rule of this database only, so that one call of a batch passes validation and is refused by Postgres.
    await db.query(`ALTER TABLE ai_cost.calls ADD CONSTRAINT "model must not be refused-model" CHECK (model <> 'refused-model')`);
  },
});

function recorder(options: Partial<RecorderOptions> = {}) {
  const events: RecorderEvent[] = [];
  const instance = createRecorder({ pool: db.pool, flushOnExit: false, onError: (event) => events.push(event), ...options });
  return { recorder: instance, events };
}

async function stored(requestIdPrefix: string) {
  return db.query<{ request_id: string; cost_micros: string | null; created_at: Date; input_tokens: string | null }>(
    'SELECT request_id, cost_micros, created_at, input_tokens FROM ai_cost.calls WHERE request_id LIKE $1 ORDER BY id', [`${requestIdPrefix}%`]);
}

const cachy = { provider: 'test', model: 'cachy', inputTokens: 10_000, cacheReadTokens: 6_000, cacheWriteTokens: 1_000, outputTokens: 500 };

test('a batch is written when it is full, priced by the trigger exactly as recordCall prices one call', async (t) => {
  const { recorder: r } = recorder({ batchSize: 3, flushIntervalMs: 60_000 });
  for (let i = 0; i < 3; i += 1) r.record({ ...cachy, requestId: `full-${i}` });
  const start = Date.now();
  while (r.metrics().written < 3 && Date.now() - start < 5_000) await sleep(5);
  const rows = await stored('full-');
  t.is(rows.length, 3, 'written without flush() and long before the interval');
  const single = await recordCall(db.pool, { ...cachy, requestId: 'full-single' });
  t.is(single.costMicros, 22_050n);
  t.deepEqual(rows.map((row) => row.cost_micros), ['22050', '22050', '22050']);
  await r.close();
});

test('a partial batch is written after flushIntervalMs without any flush()', async (t) => {
  const { recorder: r } = recorder({ batchSize: 100, flushIntervalMs: 30 });
  r.record({ ...cachy, requestId: 'interval-1' });
  t.is(r.metrics().written, 0);
  const start = Date.now();
  while (r.metrics().written < 1 && Date.now() - start < 5_000) await sleep(5);
  t.is((await stored('interval-')).length, 1);
  await r.close();
});

test('record() never throws: an invalid call goes to onError with the field named, and nothing is queued', async (t) => {
  const { recorder: r, events } = recorder();
  t.notThrows(() => r.record({ provider: 'openai', model: 'gpt-4o', inputTokens: 10, cacheReadTokens: 50 }));
  t.notThrows(() => r.record({ provider: '', model: 'gpt-4o' }));
  t.notThrows(() => r.record(null as never));
  t.is(r.metrics().invalid, 3);
  t.is(r.metrics().queued, 0);
  const messages = events.map((event) => (event.kind === 'invalid' ? event.error.message : ''));
  t.regex(messages[0]!, /inputTokens: must include cacheReadTokens \+ cacheWriteTokens/);
  t.regex(messages[1]!, /provider:/);
  await r.close();
});

test('one call the database refuses costs only itself: the rest of its batch is written and the bad one reported', async (t) => {
  const { recorder: r, events } = recorder({ batchSize: 100 });
  r.record({ ...cachy, requestId: 'mixed-1' });
  r.record({ ...cachy, model: 'refused-model', requestId: 'mixed-2' });
  r.record({ ...cachy, requestId: 'mixed-3' });
  await r.flush();
  t.deepEqual((await stored('mixed-')).map((row) => row.request_id), ['mixed-1', 'mixed-3']);
  const metrics = r.metrics();
  t.is(metrics.written, 2);
  t.is(metrics.rejected, 1);
  t.is(metrics.retried, 0, 'a refused row is not retried');
  const rejected = events.find((event) => event.kind === 'rejected');
  t.is(rejected?.kind === 'rejected' ? rejected.call.requestId : undefined, 'mixed-2');
  t.regex(metrics.lastError?.message ?? '', /refused-model/);
  await r.close();
});

test('the same request_id recorded twice (a retry, a replayed event) is written once', async (t) => {
  const { recorder: r } = recorder();
  r.record({ ...cachy, requestId: 'twice' });
  r.record({ ...cachy, requestId: 'twice' });
  await r.flush();
  r.record({ ...cachy, requestId: 'twice' });
  await r.flush();
  t.is((await stored('twice')).length, 1);
  t.like(r.metrics(), { written: 1, duplicates: 2 });
  await r.close();
});

test('calls without a requestId get a generated one, and created_at is when record() was called, not when the batch was written', async (t) => {
  const { recorder: r } = recorder({ flushIntervalMs: 60_000 });
  const before = Date.now();
  r.record({ ...cachy, feature: 'generated-id' });
  await sleep(300);
  await r.flush();
  const [row] = await db.query<{ request_id: string; created_at: Date }>(
    "SELECT request_id, created_at FROM ai_cost.calls WHERE feature = 'generated-id'");
  t.regex(row!.request_id, /^[0-9a-f-]{36}$/);
  t.true(row!.created_at.getTime() >= before - 5 && row!.created_at.getTime() < before + 200);
});

test('flush() resolves only when every call recorded before it is in the table', async (t) => {
  const { recorder: r } = recorder({ batchSize: 7, flushIntervalMs: 60_000 });
  for (let i = 0; i < 50; i += 1) r.record({ ...cachy, requestId: `drain-${i}` });
  await r.flush();
  t.is((await stored('drain-')).length, 50);
  t.like(r.metrics(), { queued: 0, recorded: 50, written: 50 });
  await r.close();
});

test('metrics as Prometheus text', async (t) => {
  const { recorder: r } = recorder();
  r.record({ ...cachy, requestId: 'prom-1' });
  r.record({ provider: 'x', model: '' });
  await r.flush();
  const text = r.prometheus({ service: 'api "v2"' });
  t.regex(text, /^# TYPE ai_cost_recorder_written_total counter$/m);
  t.regex(text, /^ai_cost_recorder_written_total\{service="api \\"v2\\""\} 1$/m);
  t.regex(text, /^ai_cost_recorder_invalid_total\{service="api \\"v2\\""\} 1$/m);
  t.regex(text, /^ai_cost_recorder_queued\{service="api \\"v2\\""\} 0$/m);
  t.regex(text, /^ai_cost_recorder_last_error_timestamp_seconds\{service="api \\"v2\\""\} \d+(\.\d+)?$/m);
  await r.close();
});

test('createRecorder refuses options that cannot work, naming them', (t) => {
  t.throws(() => createRecorder({} as RecorderOptions), { message: /databaseUrl or pool/ });
  t.throws(() => createRecorder({ pool: db.pool, batchSize: 0 }), { message: /batchSize must be a positive number/ });
  t.throws(() => createRecorder({ pool: db.pool, concurrency: 0 }), { message: /concurrency must be a positive integer, got 0/ });
  t.throws(() => createRecorder({ pool: db.pool, concurrency: 1.5 }), { message: /concurrency must be a positive integer, got 1.5/ });
});

test('an onError callback that throws does not break recording', async (t) => {
  const r = createRecorder({ pool: db.pool, flushOnExit: false, onError: () => { throw new Error('broken logger'); } });
  t.notThrows(() => r.record({ provider: '', model: '' }));
  r.record({ ...cachy, requestId: 'after-bad-logger' });
  await r.flush();
  t.is((await stored('after-bad-logger')).length, 1);
  await r.close();
});

/**
 * A pool whose batch writes (the statements that call insert_calls) can be
 * held: after `holdNext(n)` the next n writes wait until `release()`.
 * `inFlight` and `mostInFlight` count the writes running at once.
 */
function holdingWrites(pool: DatabasePool) {
  let toHold = 0;
  const held: Array<() => void> = [];
  const state = { inFlight: 0, mostInFlight: 0, started: 0 };
  const proxy = new Proxy(pool, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        const query = args[0] as { sql?: string } | undefined;
        if (!query?.sql?.includes('SELECT ai_cost.insert_calls(')) return (value as (...a: unknown[]) => unknown).apply(target, args);
        state.started += 1;
        state.inFlight += 1;
        state.mostInFlight = Math.max(state.mostInFlight, state.inFlight);
        try {
          if (toHold > 0) {
            toHold -= 1;
            await new Promise<void>((resolve) => held.push(resolve));
          }
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          state.inFlight -= 1;
        }
      };
    },
  });
  return {
    pool: proxy, state,
    holdNext: (count: number) => { toHold = count; },
    release: () => { for (const resolve of held.splice(0)) resolve(); },
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > 10_000) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('full batches are written concurrently, never more than `concurrency` at once', async (t) => {
  const own = await createPool(db.url, 4);
  try {
    const writes = holdingWrites(own);
    const { recorder: r } = recorder({ pool: writes.pool, batchSize: 10, concurrency: 3, flushIntervalMs: 60_000 });
    r.record({ ...cachy, requestId: 'concurrent-warm' });
    await r.flush(); // the insert path is chosen before the writes are held
    writes.holdNext(3);
    for (let i = 0; i < 50; i += 1) r.record({ ...cachy, requestId: `concurrent-${i}` });
    await until(() => writes.state.inFlight === 3, 'three batches in flight');
    t.is(writes.state.started, 1 + 3, 'a fourth batch waits for a free writer');
    t.is(r.metrics().queued, 50);
    writes.release();
    t.true(await r.flush());
    t.is(writes.state.mostInFlight, 3);
    t.is(writes.state.started, 1 + 5);
    t.is((await stored('concurrent-')).length, 51);
    t.like(r.metrics(), { recorded: 51, written: 51, queued: 0 });
    await r.close();
  } finally {
    await own.end();
  }
});

test('flush() waits for an older batch still being written after a newer one has landed', async (t) => {
  const own = await createPool(db.url, 4);
  try {
    const writes = holdingWrites(own);
    const { recorder: r } = recorder({ pool: writes.pool, batchSize: 10, concurrency: 2, flushIntervalMs: 60_000 });
    r.record({ ...cachy, requestId: 'order-warm' });
    await r.flush();
    writes.holdNext(1);
    for (let i = 0; i < 10; i += 1) r.record({ ...cachy, requestId: `order-old-${i}` });
    let olderFlushed: boolean | undefined;
    const older = r.flush().then((result) => (olderFlushed = result));
    for (let i = 0; i < 10; i += 1) r.record({ ...cachy, requestId: `order-new-${i}` });
    let bothFlushed: boolean | undefined;
    const both = r.flush().then((result) => (bothFlushed = result));
    await until(() => r.metrics().written === 11, 'the newer batch written');
    t.deepEqual((await stored('order-')).map((row) => row.request_id).filter((id) => id.startsWith('order-old')), []);
    t.is(olderFlushed, undefined, 'flush() does not resolve while a call recorded before it is in flight');
    t.is(bothFlushed, undefined);
    t.is(r.metrics().queued, 10);
    writes.release();
    await Promise.all([older, both]);
    t.true(olderFlushed);
    t.true(bothFlushed);
    t.is((await stored('order-')).length, 21);
    await r.close();
  } finally {
    await own.end();
  }
});

test('a call is encoded exactly as JSON.stringify(callRecord(call)) would encode it, and stored as recordCall stores it', async (t) => {
  const calls = [
    { provider: 'openai', model: 'gpt-4o-mini', createdAt: new Date('2025-03-04T05:06:07.089Z') },
    { provider: 'a"quote', model: 'back\\slash', feature: 'tab\there\nnewline\u0001', tenantId: 'ünï 😀 \u2028', createdAt: new Date(-1) },
    { provider: 'p', model: 'm', createdAt: new Date('+012345-01-01T00:00:00.999Z'), units: '12.5', unit: 'image', providedCostMicros: 10n ** 10n },
    { provider: 'p', model: 'm', createdAt: new Date(0), inputTokens: 10_000_000_000, cacheReadTokens: 3, outputTokens: 0, streamed: true,
      ttftMs: 0, totalMs: 2_147_483_647, metadata: { nested: { list: [1, 'two', null, true], 'key "q"': 'v' } }, errorMessage: '' },
  ];
  for (const input of calls) {
    const call = parseCall({ ...input, requestId: 'encode' });
    t.is(callJson(call), JSON.stringify(callRecord(call)));
    t.deepEqual(JSON.parse(callJson(call)), callRecord(call));
  }
  // Two timestamps in the same second, then one in another: the cached second must not leak.
  const second = (iso: string) => JSON.parse(callJson(parseCall({ provider: 'p', model: 'm', createdAt: new Date(iso) }))).created_at;
  for (const iso of ['2025-01-01T00:00:00.001Z', '2025-01-01T00:00:00.999Z', '2025-01-01T00:00:01.000Z', '1969-12-31T23:59:59.999Z']) {
    t.is(second(iso), iso);
  }
  const { recorder: r } = recorder();
  r.record({ ...calls[1]!, requestId: 'encoded-escapes' });
  await r.flush();
  const [row] = await db.query<{ provider: string; model: string; feature: string; tenant_id: string }>(
    "SELECT provider, model, feature, tenant_id FROM ai_cost.calls WHERE request_id = 'encoded-escapes'");
  t.deepEqual(row, { provider: calls[1]!.provider, model: calls[1]!.model, feature: calls[1]!.feature, tenant_id: calls[1]!.tenantId });
  await r.close();
});
