import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import pg from 'pg';
import { createRecorder, type RecorderEvent } from '../src/recorder/index.js';
import { startRestartableServer, type RestartableServer } from './support/restartable-server.js';

// These tests stop and restart a server of their own, never the shared one.
let server: RestartableServer;
test.before(async () => {
  server = await startRestartableServer();
});
test.after.always(async () => {
  await server?.destroy();
});

async function rows(prefix: string): Promise<{ total: number; distinct: number; ids: Set<string> }> {
  const client = new pg.Client({ connectionString: server.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ request_id: string }>(
      'SELECT request_id FROM ai_cost.calls WHERE request_id LIKE $1', [`${prefix}-%`]);
    const ids = new Set(rows.map((row) => row.request_id));
    return { total: rows.length, distinct: ids.size, ids };
  } finally {
    await client.end();
  }
}

const call = (requestId: string) => ({ provider: 'openai', model: 'gpt-4o-mini', requestId, inputTokens: 1000, outputTokens: 100 });

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const { concurrency, batchSize } of [{ concurrency: undefined, batchSize: 50 }, { concurrency: 4, batchSize: 20 }]) {
  const writers = concurrency === undefined ? 'the default writers' : `${concurrency} concurrent writers`;
  test.serial(`a database restart while recording loses no call and writes none twice (${writers}, batches of ${batchSize})`, async (t) => {
    const prefix = `restart${concurrency ?? ''}`;
    const events: RecorderEvent[] = [];
    const recorder = createRecorder({
      databaseUrl: server.url, batchSize, concurrency, flushIntervalMs: 20, maxQueue: 5_000,
      retry: { minDelayMs: 20, maxDelayMs: 200 }, onError: (event) => events.push(event),
    });
    let sent = 0;
    let limit = 400;
    let producing = true;
    // The application keeps calling record() throughout, as a server would, in
    // bursts of 10; `limit` paces it per phase so the queue stays under its
    // bound however slow the machine is (this test is about zero loss).
    const producer = (async () => {
      while (producing) {
        for (let i = 0; i < 10 && sent < limit; i += 1) recorder.record(call(`${prefix}-${(sent += 1)}`));
        await sleep(2);
      }
    })();

    await until(() => recorder.metrics().written >= 200, '200 calls written before the stop');
    await server.stop(); // while batches are being written and calls keep coming
    limit += 400;
    await until(() => sent >= limit && recorder.metrics().retried >= 3, 'calls recorded and retries while the database is down');
    await server.start();
    limit += 400;
    await until(() => sent >= limit, 'calls recorded after the restart');
    producing = false;
    await producer;
    await recorder.flush();
    const metrics = recorder.metrics();
    await recorder.close();

    const stored = await rows(prefix);
    t.is(sent, 1_200);
    t.is(stored.total, sent, 'every recorded call is in the table');
    t.is(stored.distinct, stored.total, 'no call is in the table twice');
    for (let i = 1; i <= sent; i += 1) if (!stored.ids.has(`${prefix}-${i}`)) t.fail(`call ${prefix}-${i} was lost`);
    t.is(metrics.dropped, 0);
    t.is(metrics.invalid + metrics.rejected, 0);
    t.is(metrics.written + metrics.duplicates, sent);
    t.true(metrics.retried >= 3);
    t.true(events.some((event) => event.kind === 'retrying'));
    t.log(`${sent} calls, ${metrics.retried} retried writes, ${metrics.duplicates} duplicates skipped by request_id`);
  });
}

test.serial('over the queue bound while the database is down, the excess is dropped and counted, the rest written', async (t) => {
  const events: RecorderEvent[] = [];
  const recorder = createRecorder({
    databaseUrl: server.url, batchSize: 20, flushIntervalMs: 10, maxQueue: 100,
    retry: { minDelayMs: 20, maxDelayMs: 100 }, onError: (event) => events.push(event),
  });
  recorder.record(call('bound-0'));
  await recorder.flush(); // the pool is connected before the outage
  await server.stop();
  const started = process.hrtime.bigint();
  for (let i = 1; i <= 150; i += 1) recorder.record(call(`bound-${i}`));
  const recordMs = Number(process.hrtime.bigint() - started) / 1e6;
  t.is(recorder.metrics().queued, 100);
  t.is(recorder.metrics().dropped, 50);
  t.deepEqual(events.filter((event) => event.kind === 'dropped'), [{ kind: 'dropped', reason: 'queue full', count: 1 }],
    'one dropped event per overflow episode, not one per call');
  t.true(recordMs < 1_000, `record() never blocked on the down database (${recordMs.toFixed(1)} ms for 150 calls)`);
  await server.start();
  await recorder.flush();
  await recorder.close();
  const stored = await rows('bound');
  t.is(stored.total, 101);
  for (let i = 0; i <= 100; i += 1) t.true(stored.ids.has(`bound-${i}`), `bound-${i} is written`);
  t.is(recorder.metrics().written, 101);
  t.is(recorder.metrics().dropped, 50);
  // The drop is on record as a failure (or a later connection error, whichever came last).
  t.not(recorder.metrics().lastError, null);
});

test.serial('close() gives up after closeTimeoutMs when the database stays down, and counts what it dropped', async (t) => {
  const recorder = createRecorder({
    databaseUrl: server.url, batchSize: 10, flushIntervalMs: 10, retry: { minDelayMs: 20, maxDelayMs: 50 },
    closeTimeoutMs: 300, onError: () => {},
  });
  await server.stop();
  try {
    for (let i = 0; i < 25; i += 1) recorder.record(call(`gone-${i}`));
    const started = Date.now();
    await recorder.close();
    t.true(Date.now() - started < 5_000);
    t.is(recorder.metrics().dropped, 25);
    t.is(recorder.metrics().queued, 0);
    recorder.record(call('after-close'));
    t.is(recorder.metrics().dropped, 26, 'a call recorded after close() is counted as dropped');
  } finally {
    await server.start();
  }
  t.is((await rows('gone')).total, 0);
});

test.serial('flush() resolves false after flushTimeoutMs while the database is down, keeping the calls, and true once it is back', async (t) => {
  const recorder = createRecorder({
    databaseUrl: server.url, batchSize: 10, flushIntervalMs: 10, retry: { minDelayMs: 20, maxDelayMs: 50 },
    flushTimeoutMs: 300, onError: () => {},
  });
  await server.stop();
  try {
    for (let i = 0; i < 5; i += 1) recorder.record(call(`down-${i}`));
    const started = Date.now();
    t.false(await recorder.flush());
    const waitedMs = Date.now() - started;
    t.true(waitedMs >= 250 && waitedMs < 3_000, `flush() waited ${waitedMs} ms`);
    t.like(recorder.metrics(), { queued: 5, dropped: 0 });
    t.regex(recorder.metrics().lastError?.message ?? '', /flush\(\) timed out after 300 ms with 5 calls not yet written/);
  } finally {
    await server.start();
  }
  recorder.record(call('down-5'));
  // Each flush() is bounded; the pool reconnects within a few of them.
  const started = Date.now();
  while (!(await recorder.flush())) {
    if (Date.now() - started > 20_000) {
      t.fail('flush() never resolved true after the database came back');
      break;
    }
  }
  await recorder.close();
  t.is((await rows('down')).total, 6);
  t.like(recorder.metrics(), { written: 6, dropped: 0, queued: 0 });
});
