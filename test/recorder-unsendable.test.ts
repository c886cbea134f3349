import test from 'ava';
import { sql, type DatabasePool } from 'slonik';
import { createRecorder, InvalidCallError, recordCall, type RecorderEvent, type RecorderOptions } from '../src/recorder/index.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test, {
  setup: async (db) => {
    // Rules of this database only, so that calls pass validation and are then refused by PostgreSQL:
    // a CHECK (class 23) and a trigger that raises (P0001), as an operator's own rules might.
    await db.query(`ALTER TABLE ai_cost.calls ADD CONSTRAINT "feature must not start with refused" CHECK (feature NOT LIKE 'refused%')`);
    await db.query(`CREATE FUNCTION public.refuse_raised() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.feature = 'raised' THEN RAISE EXCEPTION 'calls with feature raised are not taken here'; END IF;
        RETURN NEW;
      END $$`);
    await db.query(`CREATE TRIGGER refuse_raised BEFORE INSERT ON ai_cost.calls FOR EACH ROW EXECUTE FUNCTION public.refuse_raised()`);
  },
});

const FLUSH_LIMIT_MS = 10_000;

/** Fails instead of hanging when `promise` does not settle within `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not resolve within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function recorder(options: Partial<RecorderOptions> = {}) {
  const events: RecorderEvent[] = [];
  const instance = createRecorder({
    pool: db.pool, flushOnExit: false, batchSize: 500, flushIntervalMs: 60_000,
    retry: { minDelayMs: 20, maxDelayMs: 200 }, onError: (event) => events.push(event), ...options,
  });
  return { recorder: instance, events };
}

async function storedIds(prefix: string): Promise<string[]> {
  const rows = await db.query<{ request_id: string }>(
    'SELECT request_id FROM ai_cost.calls WHERE request_id LIKE $1 ORDER BY request_id', [`${prefix}%`]);
  return rows.map((row) => row.request_id);
}

const good = (requestId: string) => ({ provider: 'openai', model: 'gpt-4o-mini', requestId, inputTokens: 100, outputTokens: 10 });

function eventMessage(event: RecorderEvent): string {
  return 'error' in event ? event.error.message : `dropped ${event.count}: ${event.reason}`;
}

// --- Values that cannot be sent: each is refused by validation, with its reason -------------------------

type Maker = (requestId: string) => Record<string, unknown>;
const TEXT_FIELDS = ['provider', 'model', 'tenantId', 'userId', 'feature', 'conversationId', 'promptId',
  'promptVersion', 'requestId', 'unit', 'errorMessage'] as const;
const withText = (field: string, value: string): Maker => (requestId) =>
  ({ ...good(requestId), units: 1, unit: 'image', [field]: field === 'requestId' ? requestId + value : value });
const withMetadata = (metadata: () => unknown): Maker => (requestId) => ({ ...good(requestId), metadata: metadata() });

function cyclic() {
  const node: Record<string, unknown> = { name: 'node' };
  node.self = node;
  return { node };
}
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 1; i < levels; i += 1) value = { a: value };
  return value;
}
class Opaque {
  toJSON(): never {
    throw new Error('toJSON refused');
  }
}
const throwingGetter = () => Object.defineProperty({ ok: 1 }, 'secret', { enumerable: true, get: () => { throw new Error('getter refused'); } });
const throwingProxy = () => new Proxy({}, { ownKeys: () => { throw new Error('proxy refused'); } });

const unsendable: Array<{ name: string; call: Maker; reason: RegExp }> = [
  ...TEXT_FIELDS.map((field) => ({ name: `U+0000 in ${field}`, call: withText(field, 'a\u0000b'), reason: new RegExp(`${field}: contains U\\+0000`) })),
  ...TEXT_FIELDS.map((field) => ({ name: `a lone surrogate in ${field}`, call: withText(field, 'a\ud800b'), reason: new RegExp(`${field}: contains a lone surrogate`) })),
  { name: 'U+0000 in a metadata value', call: withMetadata(() => ({ note: 'a\u0000b' })), reason: /metadata\.note: contains U\+0000/ },
  { name: 'U+0000 in a nested metadata value', call: withMetadata(() => ({ a: { b: 'x\u0000' } })), reason: /metadata\.a\.b: contains U\+0000/ },
  { name: 'U+0000 in a metadata array', call: withMetadata(() => ({ list: ['ok', '\u0000'] })), reason: /metadata\.list\.1: contains U\+0000/ },
  { name: 'U+0000 in a metadata key', call: withMetadata(() => ({ 'k\u0000': 1 })), reason: /metadata: the key "k\\u0000" contains U\+0000/ },
  { name: 'U+0000 in a nested metadata key', call: withMetadata(() => ({ a: { '\u0000': 1 } })), reason: /metadata\.a: the key "\\u0000" contains U\+0000/ },
  { name: 'a lone surrogate in a metadata value', call: withMetadata(() => ({ a: '\udc00' })), reason: /metadata\.a: contains a lone surrogate/ },
  { name: 'a lone surrogate in a metadata key', call: withMetadata(() => ({ '\ud83d': 1 })), reason: /metadata: the key "\\ud83d" contains a lone surrogate/ },
  { name: 'cyclic metadata', call: withMetadata(cyclic), reason: /metadata\.node\.self: is cyclic/ },
  { name: 'a cyclic metadata array', call: withMetadata(() => { const list: unknown[] = []; list.push(list); return { list }; }), reason: /metadata\.list\.0: is cyclic/ },
  { name: 'metadata 100,000 levels deep', call: withMetadata(() => nested(100_000)), reason: /metadata: nests deeper than 100 levels/ },
  { name: 'metadata 101 levels deep', call: withMetadata(() => nested(101)), reason: /metadata: nests deeper than 100 levels/ },
  { name: 'a BigInt in metadata', call: withMetadata(() => ({ n: 1n })), reason: /metadata\.n: is a BigInt/ },
  { name: 'NaN in metadata', call: withMetadata(() => ({ x: Number.NaN })), reason: /metadata\.x: is NaN/ },
  { name: 'Infinity in metadata', call: withMetadata(() => ({ x: [Number.POSITIVE_INFINITY] })), reason: /metadata\.x\.0: is Infinity/ },
  { name: '-Infinity in metadata', call: withMetadata(() => ({ x: Number.NEGATIVE_INFINITY })), reason: /metadata\.x: is -Infinity/ },
  { name: 'undefined in metadata', call: withMetadata(() => ({ x: undefined })), reason: /metadata\.x: is undefined/ },
  { name: 'a function in metadata', call: withMetadata(() => ({ x: () => 1 })), reason: /metadata\.x: is a function/ },
  { name: 'an own toJSON that throws', call: withMetadata(() => ({ a: { toJSON: () => { throw new Error('no'); } } })), reason: /metadata\.a\.toJSON: is a function/ },
  { name: 'a class whose toJSON throws', call: withMetadata(() => ({ a: new Opaque() })), reason: /metadata\.a: is a Opaque, not a plain object/ },
  { name: 'a Date in metadata', call: withMetadata(() => ({ when: new Date(0) })), reason: /metadata\.when: is a Date, not a plain object/ },
  { name: 'a Map as metadata', call: withMetadata(() => new Map([['a', 1]])), reason: /metadata: must be a plain JSON object, not a Map/ },
  { name: 'null as metadata', call: withMetadata(() => null), reason: /metadata: must be a plain JSON object, not null/ },
  { name: 'metadata over 64 kB', call: withMetadata(() => ({ blob: 'x'.repeat(70_000) })), reason: /metadata: must be at most 64 kB as JSON/ },
  { name: 'a metadata getter that throws', call: withMetadata(throwingGetter), reason: /metadata\.secret: reading it threw Error: getter refused/ },
  { name: 'metadata that cannot be listed', call: withMetadata(throwingProxy), reason: /metadata: could not be read: Error: proxy refused/ },
  {
    name: 'a getter on the call that throws',
    call: (requestId) => Object.defineProperty(good(requestId), 'feature', { enumerable: true, get: () => { throw new Error('call getter refused'); } }),
    reason: /feature: reading it threw Error: call getter refused/,
  },
  {
    name: 'a call that cannot be read at all',
    call: () => new Proxy({}, { ownKeys: () => { throw new Error('call proxy refused'); }, get: () => { throw new Error('call proxy refused'); } }),
    reason: /could not be read: Error: call proxy refused/,
  },
  { name: 'NaN tokens', call: (id) => ({ ...good(id), inputTokens: Number.NaN }), reason: /inputTokens:/ },
  { name: 'Infinity tokens', call: (id) => ({ ...good(id), outputTokens: Number.POSITIVE_INFINITY }), reason: /outputTokens:/ },
  { name: 'NaN units', call: (id) => ({ ...good(id), units: Number.NaN, unit: 'image' }), reason: /units:/ },
  { name: 'Infinity milliseconds', call: (id) => ({ ...good(id), totalMs: Number.POSITIVE_INFINITY }), reason: /totalMs:/ },
  { name: 'an invalid Date', call: (id) => ({ ...good(id), createdAt: new Date(Number.NaN) }), reason: /createdAt:/ },
  { name: 'a key that is not a column', call: (id) => ({ ...good(id), 'bad\nkey': 1 }), reason: /"bad\\nkey"/ },
];

for (const { name, call, reason } of unsendable) {
  test(`recorder: ${name} is counted as invalid with its reason, and the rest of its batch is written`, async (t) => {
    const prefix = `u-${name.replaceAll(/\W+/g, '-')}-`;
    const { recorder: r, events } = recorder();
    r.record(good(`${prefix}1`));
    r.record(call(`${prefix}bad`) as never);
    r.record(good(`${prefix}2`));
    await within(FLUSH_LIMIT_MS, r.flush(), 'flush()');
    t.deepEqual(await storedIds(prefix), [`${prefix}1`, `${prefix}2`], 'the good calls reach ai_cost.calls, the bad one does not');
    t.like(r.metrics(), { recorded: 2, written: 2, invalid: 1, rejected: 0, dropped: 0, queued: 0 });
    t.is(events.length, 1);
    const message = eventMessage(events[0]!);
    t.is(events[0]!.kind, 'invalid');
    t.regex(message, reason);
    t.notRegex(message, /[\n\r\u0000]/, 'one line');
    await within(FLUSH_LIMIT_MS, r.close(), 'close()');
  });

  test(`recordCall: ${name} is refused with one line naming why`, async (t) => {
    const error = await within(FLUSH_LIMIT_MS, recordCall(db.pool, call(`rc-${name}`) as never).then(
      () => undefined, (thrown: unknown) => thrown), 'recordCall');
    t.true(error instanceof InvalidCallError, String(error));
    t.regex((error as Error).message, reason);
    t.notRegex((error as Error).message, /[\n\r\u0000]/, 'one line');
  });
}

// --- Values that look odd but are JSON: accepted and stored as JSON.stringify would write them -----------

const shared = { same: true };
const sendable: Array<{ name: string; metadata: () => Record<string, unknown>; stored: string }> = [
  { name: 'an object referenced twice (not a cycle)', metadata: () => ({ a: shared, b: [shared] }), stored: '{"a": {"same": true}, "b": [{"same": true}]}' },
  { name: 'a __proto__ key', metadata: () => JSON.parse('{"__proto__": {"polluted": 1}}') as Record<string, unknown>, stored: '{"__proto__": {"polluted": 1}}' },
  { name: 'a symbol key (JSON has none)', metadata: () => ({ kept: 1, [Symbol('hidden')]: 2 }), stored: '{"kept": 1}' },
  { name: 'metadata 100 levels deep', metadata: () => nested(100), stored: JSON.stringify(nested(100)) },
  { name: 'a surrogate pair and an escaped NUL spelled out', metadata: () => ({ emoji: '\ud83d\ude00', text: '\\u0000' }), stored: '{"emoji": "😀", "text": "\\\\u0000"}' },
];

for (const { name, metadata, stored } of sendable) {
  test(`recorder: ${name} is written`, async (t) => {
    const requestId = `s-${name.replaceAll(/\W+/g, '-')}`;
    const { recorder: r, events } = recorder();
    r.record({ ...good(requestId), metadata: metadata() as never });
    await within(FLUSH_LIMIT_MS, r.flush(), 'flush()');
    t.deepEqual(events, []);
    const [row] = await db.query<{ same: boolean }>('SELECT metadata = $2::jsonb AS same FROM ai_cost.calls WHERE request_id = $1', [requestId, stored]);
    t.true(row?.same, `stored as ${stored}`);
    await r.close();
  });
}

// --- What the database refuses although validation let it through: the batch is split until the bad call is alone

/** The pool, counting the statements that write calls. */
function countingWrites(pool: DatabasePool): { pool: DatabasePool; writes: () => number } {
  let writes = 0;
  const counted = new Proxy(pool, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const query = args[0] as { sql?: string } | undefined;
        if (query?.sql && /SELECT ai_cost\.insert_calls\(|INSERT INTO/.test(query.sql)) writes += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { pool: counted, writes: () => writes };
}

test('a call the database refuses (a CHECK) is isolated by splitting the batch: exactly that call is rejected, the rest written', async (t) => {
  const counting = countingWrites(db.pool);
  const { recorder: r, events } = recorder({ pool: counting.pool });
  const prefix = 'split-';
  for (let i = 0; i < 64; i += 1) r.record({ ...good(`${prefix}${String(i).padStart(2, '0')}`), feature: i === 37 ? 'refused-by-check' : 'fine' });
  await within(FLUSH_LIMIT_MS, r.flush(), 'flush()');
  const ids = await storedIds(prefix);
  t.is(ids.length, 63);
  t.false(ids.includes(`${prefix}37`));
  t.like(r.metrics(), { recorded: 64, written: 63, rejected: 1, invalid: 0, retried: 0, queued: 0 });
  t.is(events.length, 1);
  const [event] = events;
  t.is(event?.kind, 'rejected');
  t.is(event?.kind === 'rejected' ? event.call.requestId : undefined, `${prefix}37`);
  t.regex(eventMessage(event!), /violates check constraint "feature must not start with refused"/);
  // 1 whole batch + 2 per level of the split (64 = 2^6): far fewer than one statement per call.
  t.true(counting.writes() <= 1 + 2 * 6, `${counting.writes()} write statements for 64 calls`);
  t.log(`${counting.writes()} write statements to isolate one bad call of 64`);
  await r.close();
});

test('several refused calls in one batch, by a CHECK and by a trigger that raises, are each isolated', async (t) => {
  const { recorder: r, events } = recorder();
  const prefix = 'several-';
  const bad = new Map([[3, 'refused-a'], [4, 'raised'], [50, 'refused-b'], [99, 'raised']]);
  for (let i = 0; i < 100; i += 1) r.record({ ...good(`${prefix}${String(i).padStart(2, '0')}`), feature: bad.get(i) ?? 'fine' });
  await within(FLUSH_LIMIT_MS, r.flush(), 'flush()');
  const ids = await storedIds(prefix);
  t.is(ids.length, 96);
  t.like(r.metrics(), { written: 96, rejected: 4, retried: 0, queued: 0 });
  t.deepEqual(events.map((event) => (event.kind === 'rejected' ? event.call.requestId : event.kind)),
    [3, 4, 50, 99].map((i) => `${prefix}${String(i).padStart(2, '0')}`));
  t.regex(eventMessage(events[1]!), /calls with feature raised are not taken here/);
});

test('recordCall names what the database refused in one line', async (t) => {
  const error = await t.throwsAsync(recordCall(db.pool, { ...good('rc-check'), feature: 'refused-by-check' }));
  t.regex(error!.message, /^the database refused the call: new row for relation "calls.*" violates check constraint "feature must not start with refused"$/);
  t.is(error!.name, 'RejectedCallError');
});

// --- flush() and close() resolve within their timeouts while the database cannot take the calls ------------

test.serial('flush() and close() resolve within their timeouts while every write waits on a lock', async (t) => {
  const blocker = await db.pool.connect(async (connection) => {
    await connection.query(sql.unsafe`BEGIN`);
    await connection.query(sql.unsafe`LOCK TABLE ai_cost.calls IN ACCESS EXCLUSIVE MODE`);
    const { recorder: r, events } = recorder({ flushTimeoutMs: 300, closeTimeoutMs: 500 });
    for (let i = 0; i < 5; i += 1) r.record(good(`locked-${i}`));
    let started = Date.now();
    const flushed = await within(5_000, r.flush(), 'flush()');
    const flushMs = Date.now() - started;
    t.false(flushed, 'flush() says it timed out');
    t.true(flushMs >= 250 && flushMs < 3_000, `flush() took ${flushMs} ms`);
    t.is(r.metrics().queued, 5, 'a timed-out flush() drops nothing');
    started = Date.now();
    await within(5_000, r.close(), 'close()');
    const closeMs = Date.now() - started;
    t.true(closeMs >= 450 && closeMs < 3_000, `close() took ${closeMs} ms`);
    t.like(r.metrics(), { queued: 0, dropped: 5 });
    t.true(events.some((event) => event.kind === 'dropped' && event.reason === 'close timed out'));
    await connection.query(sql.unsafe`ROLLBACK`);
    return r;
  });
  // The batch that was waiting on the lock lands after all: it is not counted as lost.
  const start = Date.now();
  while (blocker.metrics().written < 5 && Date.now() - start < 5_000) await new Promise((resolve) => setTimeout(resolve, 20));
  t.like(blocker.metrics(), { written: 5, dropped: 0 });
});

test('flush() resolves true when everything it waited for is settled', async (t) => {
  const { recorder: r } = recorder();
  t.true(await r.flush(), 'nothing to wait for');
  r.record(good('flush-true'));
  t.true(await within(FLUSH_LIMIT_MS, r.flush(), 'flush()'));
  await r.close();
});
