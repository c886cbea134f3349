import { randomUUID } from 'node:crypto';
import type { DatabasePool } from 'slonik';
import { checkCall, type InvalidCallError, type Call, type CallInput } from './call.js';
import { createPool } from '../db.js';
import { describeDatabaseError, insertCalls, isDataError, learnLedger, type InsertPath, type Ledger, type QueuedCall } from './insert.js';
import { prometheusText, type RecorderMetrics } from './metrics.js';
import { describeThrown } from './storable.js';

/** Something that went wrong off the caller's path, reported instead of thrown. */
export type RecorderEvent =
  /**
   * record() got a call that failed validation, or could not be read (a getter that throws); the
   * message, one line, names each bad field and why. Nothing was queued.
   */
  | { kind: 'invalid'; error: InvalidCallError; call: unknown }
  /** The database refused this call (a CHECK, a bad value, a trigger); the other calls of its batch were written. */
  | { kind: 'rejected'; error: Error; call: Call }
  /** A write failed and will be retried after delayMs; nothing is lost while the queue has room. */
  | { kind: 'retrying'; error: Error; attempt: number; delayMs: number }
  /** Calls were lost. For a full queue this is sent once per episode; metrics().dropped counts every call. */
  | { kind: 'dropped'; reason: 'queue full' | 'recorder closed' | 'close timed out' | 'recorder error'; count: number };

export interface RecorderOptions {
  /** Where to write; the recorder opens (and on close ends) its own small pool. */
  databaseUrl?: string;
  /** Or a slonik pool of yours (e.g. from createPool); the recorder never ends it. */
  pool?: DatabasePool;
  /**
   * Write as soon as this many calls are queued (default 500; on a ledger
   * distributed over Citus, 64 per shard of the calls when that is more, up
   * to a quarter of maxQueue).
   */
  batchSize?: number;
  /**
   * At most this many batches written at once, each on its own connection
   * (default 2): while the database inserts one, the next is encoded and sent.
   * The recorder's own pool has this many connections; a `pool` of yours
   * should have at least as many.
   */
  concurrency?: number;
  /** Write a partial batch when its oldest call has waited this long (default 1000 ms). */
  flushIntervalMs?: number;
  /** At most this many calls in memory; more are dropped and counted (default 10,000). */
  maxQueue?: number;
  /** Retry delays: exponential from minDelayMs to maxDelayMs, with jitter (default 100 ms to 10 s). */
  retry?: { minDelayMs?: number; maxDelayMs?: number };
  /** How long flush() waits before it resolves false, leaving the calls queued and retried (default 10 s). */
  flushTimeoutMs?: number;
  /** How long close() keeps trying before it drops what is left (default 10 s). */
  closeTimeoutMs?: number;
  /** Flush on SIGINT/SIGTERM and when the event loop empties (default true). */
  flushOnExit?: boolean;
  /** Gets every RecorderEvent; default: one line on stderr (retries from the 1st, then every 10th). Errors it throws are ignored. */
  onError?: (event: RecorderEvent) => void;
}

export interface Recorder {
  /**
   * Queues a call and returns at once; never throws and never waits. An
   * invalid call is reported through onError with the field named. Calls
   * without a requestId get a random one and calls without createdAt get
   * the current time, so a retried batch can never count a call twice.
   */
  record(call: CallInput): void;
  /**
   * Resolves true when every call recorded before it has been written, refused or dropped, or false
   * after flushTimeoutMs if some are still queued (they stay queued and are retried). Never rejects.
   */
  flush(): Promise<boolean>;
  /**
   * Stops accepting calls, writes what is queued (for at most closeTimeoutMs, then drops the rest and
   * counts it) and ends its own pool (waiting at most 1 s more for that). Never rejects.
   */
  close(): Promise<void>;
  /** A snapshot of the counters. */
  metrics(): RecorderMetrics;
  /** The metrics in the Prometheus text format. */
  prometheus(labels?: Record<string, string>): string;
}

const EXIT_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const POOL_END_GRACE_MS = 1_000;

/**
 * A batch taken from the queue: being written, or waiting for a retry. Its
 * calls are settled in order (a batch the database refuses in part is
 * written in halves, first half first), `answered` of them so far.
 */
interface Batch {
  calls: QueuedCall[];
  /** The sequence number (see `enqueued`) of calls[0]. */
  firstSeq: number;
  answered: number;
  writing: boolean;
}

/**
 * On a Citus coordinator (docs/scaling.md), a batch of many tenants writes
 * every shard, over up to 16 connections per worker
 * (citus.max_adaptive_executor_pool_size), and by default a session keeps
 * one of them between transactions and opens the others again for the next
 * batch: the recorder then wrote 300 calls/s against 6,000 with them kept
 * (bench/recorder-client.ts by hand, on a coordinator and two workers on
 * one machine). Its own connections keep them. Elsewhere the setting is an
 * unused placeholder: PostgreSQL accepts any two-part name.
 */
const CITUS_KEEPS_SHARD_CONNECTIONS = '-c citus.max_cached_conns_per_worker=16';

const DEFAULT_BATCH_SIZE = 500;

/**
 * On a distributed ledger a batch is split into one statement per shard it
 * touches, and each of those costs the worker about as much to start as a
 * few dozen rows cost to insert: a batch of 500 calls from 300 tenants is
 * 32 statements of about 16 rows. Batches of 64 calls per shard carry those
 * costs over more calls (2,048 for 32 shards: 14,600 calls/s against 3,700
 * with 500, two writers on a coordinator and two workers on one machine, by
 * hand; 4,000 gave 16,900). Fewer shards keep the one-server default,
 * and a batch never takes more than a quarter of maxQueue, so that the
 * batches being written leave room for the calls that keep arriving.
 */
const CALLS_PER_SHARD = 64;

function batchSizeFor(shards: number, maxQueue: number): number {
  return Math.max(DEFAULT_BATCH_SIZE, Math.min(shards * CALLS_PER_SHARD, Math.floor(maxQueue / 4)));
}

/**
 * A recorder for the request path: record() validates and queues in
 * microseconds; background writers insert batches (by size or interval), up
 * to `concurrency` at a time, retry with backoff while the database is
 * away, and keep memory bounded by dropping, and counting, what does not fit.
 */
export function createRecorder(options: RecorderOptions): Recorder {
  if (!options.pool && !options.databaseUrl) throw new TypeError('createRecorder needs databaseUrl or pool');
  let batchSize = positive('batchSize', options.batchSize ?? DEFAULT_BATCH_SIZE);
  const concurrency = positiveInteger('concurrency', options.concurrency ?? 2);
  const flushIntervalMs = positive('flushIntervalMs', options.flushIntervalMs ?? 1_000);
  const maxQueue = positive('maxQueue', options.maxQueue ?? 10_000);
  const minDelayMs = positive('retry.minDelayMs', options.retry?.minDelayMs ?? 100);
  const maxDelayMs = Math.max(minDelayMs, options.retry?.maxDelayMs ?? 10_000);
  const flushTimeoutMs = positive('flushTimeoutMs', options.flushTimeoutMs ?? 10_000);
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const report = safeReporter(options.onError ?? logToStderr);

  const counters: Omit<RecorderMetrics, 'queued'> = {
    recorded: 0, written: 0, duplicates: 0, invalid: 0, rejected: 0, retried: 0, dropped: 0, lastError: null,
  };
  // Every queued call has a sequence number, its place in record() order:
  // the calls of `batches` (oldest first) come before those of `queue`.
  let queue: QueuedCall[] = []; // recorded, not yet in a batch
  let queueStart = 0; // the sequence number of queue[0]
  let enqueued = 0; // calls ever queued: the next sequence number
  let batches: Batch[] = [];
  let inBatches = 0; // calls of `batches` not yet answered
  let writers = 0; // batches being written
  const waiters: { target: number; resolve: (settledAll: boolean) => void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let overflowing = false;
  let closing: Promise<void> | undefined;
  let givenUp = false;
  // While a failed write waits out its backoff, no batch is started; wake() ends the wait early.
  let pausedFor: number | undefined;
  let attempt = 0;
  let wake: (() => void) | undefined;
  let poolPromise: Promise<DatabasePool> | undefined = options.pool ? Promise.resolve(options.pool) : undefined;
  // Learned on the first write and again after any failed one: a migration,
  // a grant or ai-cost distribute may have changed what this login can use.
  let ledger: Promise<Ledger> | undefined;

  const fail = (error: Error | string) => {
    counters.lastError = { message: typeof error === 'string' ? error : error.message, at: new Date() };
  };

  const getPool = (): Promise<DatabasePool> => {
    poolPromise ??= createPool(options.databaseUrl!, concurrency, [CITUS_KEEPS_SHARD_CONNECTIONS]).catch((error: unknown) => {
      poolPromise = undefined; // try again on the next attempt
      throw error;
    });
    return poolPromise;
  };

  /** Calls in memory: queued, or in a batch and not yet answered. */
  const held = () => queue.length + inBatches;

  /** The sequence number of the oldest call not yet settled (written, refused or dropped). */
  const oldestUnsettled = () => {
    const oldest = batches[0];
    if (oldest) return oldest.firstSeq + oldest.answered;
    return queue.length > 0 ? queueStart : enqueued;
  };

  /** How many calls with a sequence number below `target` are not yet settled. */
  const unsettledBefore = (target: number) => {
    let count = Math.max(0, Math.min(target, enqueued) - queueStart);
    for (const batch of batches) count += Math.max(0, Math.min(target, batch.firstSeq + batch.calls.length) - (batch.firstSeq + batch.answered));
    return count;
  };

  const resolveWaiters = () => {
    if (waiters.length === 0) return;
    const oldest = oldestUnsettled();
    for (let i = waiters.length - 1; i >= 0; i -= 1) {
      if (waiters[i]!.target <= oldest) waiters.splice(i, 1)[0]!.resolve(true);
    }
  };

  /** The next `count` calls of the batch reached the database, which wrote or refused them. */
  const answered = (batch: Batch, count: number) => {
    // close() timed out while they were in flight and counted them as dropped: they were not lost after all.
    if (givenUp) {
      counters.dropped -= count;
      return;
    }
    batch.answered += count;
    inBatches -= count;
    if (batch.answered === batch.calls.length) batches.splice(batches.indexOf(batch), 1);
    resolveWaiters();
  };

  /**
   * Writes calls of a batch, in order. When the database refuses their
   * data, one bad call fails the whole statement, so the calls are split in
   * halves, each written the same way, until every refused call is alone: it
   * is counted as rejected with the database's message, and the others are
   * written (about 2·log2(n) statements per bad call, in queue order). Any
   * other error is thrown: the database went away, and the batch is retried
   * from its first call not yet answered.
   */
  const writeSplitting = async (db: DatabasePool, path: InsertPath, batch: Batch, calls: readonly QueuedCall[]): Promise<void> => {
    if (givenUp) return; // close() timed out: the rest is counted as dropped
    try {
      const inserted = await insertCalls(db, calls, path);
      counters.written += inserted;
      counters.duplicates += calls.length - inserted;
      answered(batch, calls.length);
    } catch (error) {
      if (!isDataError(error)) throw error;
      if (calls.length === 1) {
        counters.rejected += 1;
        const described = describeDatabaseError(error);
        fail(described);
        report({ kind: 'rejected', error: described, call: calls[0]! });
        answered(batch, 1);
        return;
      }
      const half = Math.ceil(calls.length / 2);
      await writeSplitting(db, path, batch, calls.slice(0, half));
      await writeSplitting(db, path, batch, calls.slice(half));
    }
  };

  /** Waits out the backoff of a failed write before any batch is started again. */
  const pause = (delayMs: number) => {
    pausedFor = delayMs;
    const sleep = setTimeout(() => wake?.(), delayMs);
    // A retry alone does not keep the process alive (exit handling flushes);
    // one that flush() or close() is waiting for does.
    if (!closing && waiters.length === 0) sleep.unref();
    wake = () => {
      clearTimeout(sleep);
      wake = undefined;
      pausedFor = undefined;
      pump();
    };
  };

  const writeBatch = async (batch: Batch) => {
    try {
      const db = await getPool();
      const { path, shards } = await (ledger ??= learnLedger(db));
      if (options.batchSize === undefined) batchSize = batchSizeFor(shards, maxQueue);
      await writeSplitting(db, path, batch, batch.calls.slice(batch.answered));
      attempt = 0;
      overflowing = false;
    } catch (error) {
      if (givenUp) return; // close() gave up on these calls and counted them as dropped
      ledger = undefined;
      batch.writing = false; // retried, before any newer batch
      counters.retried += 1;
      const described = describeDatabaseError(error);
      fail(described);
      // Concurrent writes that fail together wait out one backoff.
      if (pausedFor === undefined) {
        attempt += 1;
        pause(backoff(attempt, minDelayMs, maxDelayMs));
      }
      report({ kind: 'retrying', error: described, attempt, delayMs: pausedFor! });
    } finally {
      writers -= 1;
      pump();
    }
  };

  /**
   * Starts writes while fewer than `concurrency` run: a batch waiting for
   * its retry first, then a new one from the queue. A partial batch is sent
   * only when no other write is running (its calls' interval ran out, a
   * flush() waits, or a write just finished): under load, batches are full.
   */
  const pump = () => {
    if (givenUp || pausedFor !== undefined) return;
    while (writers < concurrency) {
      let batch = batches.find((waiting) => !waiting.writing);
      if (!batch) {
        if (queue.length === 0 || (queue.length < batchSize && writers > 0)) return;
        const calls = queue.splice(0, batchSize);
        batch = { calls, firstSeq: queueStart, answered: 0, writing: false };
        queueStart += calls.length;
        inBatches += calls.length;
        batches.push(batch);
      }
      clearTimeout(timer);
      timer = undefined;
      batch.writing = true;
      writers += 1;
      writeBatch(batch).catch((error: unknown) => fail(describeThrown(error)));
    }
  };

  const onInterval = () => {
    timer = undefined;
    pump();
  };

  const record = (input: CallInput): void => {
    let counted = false;
    try {
      if (closing) {
        counted = true;
        counters.dropped += 1;
        fail('call recorded after close()');
        report({ kind: 'dropped', reason: 'recorder closed', count: 1 });
        return;
      }
      const parsed = checkCall(input);
      if (!parsed.success) {
        counted = true;
        counters.invalid += 1;
        fail(parsed.error);
        report({ kind: 'invalid', error: parsed.error, call: input });
        return;
      }
      if (held() >= maxQueue) {
        counters.dropped += 1;
        fail(`queue full (${maxQueue} calls): call dropped`);
        if (!overflowing) report({ kind: 'dropped', reason: 'queue full', count: 1 });
        overflowing = true;
        return;
      }
      // parsed.data is the validator's own copy: completed in place rather than copied again.
      const call = parsed.data as QueuedCall;
      call.requestId ??= randomUUID();
      call.createdAt ??= new Date();
      queue.push(call);
      counted = true;
      enqueued += 1;
      counters.recorded += 1;
      if (queue.length >= batchSize) pump();
      else if (!timer && writers === 0 && pausedFor === undefined) {
        // With a write running, its end sends this call; after a failure, the retry does.
        timer = setTimeout(onInterval, flushIntervalMs);
        timer.unref();
      }
    } catch (error) {
      // A bug of ours must not become the caller's problem, nor lose the call unseen.
      fail(describeThrown(error));
      if (!counted) {
        counters.dropped += 1;
        report({ kind: 'dropped', reason: 'recorder error', count: 1 });
      }
    }
  };

  /**
   * Resolves true when every call queued so far is settled, or false after
   * timeoutMs (if given) with calls still queued: those stay queued.
   */
  const settledUpToNow = (timeoutMs?: number): Promise<boolean> => {
    const target = enqueued;
    if (oldestUnsettled() >= target) return Promise.resolve(true);
    const done = new Promise<boolean>((resolve) => {
      let timeout: NodeJS.Timeout | undefined;
      const waiter = {
        target,
        resolve: (settledAll: boolean) => {
          clearTimeout(timeout);
          resolve(settledAll);
        },
      };
      if (timeoutMs !== undefined) {
        timeout = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          fail(`flush() timed out after ${timeoutMs} ms with ${unsettledBefore(target)} calls not yet written; they stay queued`);
          resolve(false);
        }, timeoutMs);
      }
      waiters.push(waiter);
    });
    wake?.(); // retry now rather than at the end of the current backoff
    pump();
    return done;
  };

  const flush = (): Promise<boolean> => settledUpToNow(flushTimeoutMs);

  const giveUp = () => {
    givenUp = true;
    const lost = held();
    if (lost > 0) {
      counters.dropped += lost;
      fail(`close() timed out after ${closeTimeoutMs} ms: ${lost} calls dropped`);
      report({ kind: 'dropped', reason: 'close timed out', count: lost });
    }
    queue = [];
    queueStart = enqueued;
    batches = [];
    inBatches = 0;
    for (const waiter of waiters.splice(0)) waiter.resolve(true);
    wake?.();
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      removeExitHandlers();
      clearTimeout(timer);
      const deadline = setTimeout(giveUp, closeTimeoutMs);
      await settledUpToNow(); // giveUp() ends the wait at the deadline
      clearTimeout(deadline);
      if (!options.pool && poolPromise) {
        // Opening a pool to an unreachable server, or ending one whose
        // connections died with the server or wait on a lock, can take
        // indefinitely (with nothing keeping the process alive): give it a
        // second, then let it finish, or not, in the background.
        const ended = poolPromise.then((pool) => pool.end()).catch(() => {});
        let grace: NodeJS.Timeout | undefined;
        await Promise.race([ended, new Promise((resolve) => (grace = setTimeout(resolve, POOL_END_GRACE_MS)))]);
        clearTimeout(grace);
      }
    })();
    return closing;
  };

  // Exit handling: flush when the event loop empties, and on SIGINT/SIGTERM
  // flush, then let the signal take its default course if nobody else handles it.
  const onBeforeExit = () => {
    if (held() > 0) void close();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    void close().finally(() => {
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  };
  function removeExitHandlers() {
    process.off('beforeExit', onBeforeExit);
    for (const signal of EXIT_SIGNALS) process.off(signal, onSignal);
  }
  if (options.flushOnExit ?? true) {
    process.on('beforeExit', onBeforeExit);
    for (const signal of EXIT_SIGNALS) process.once(signal, onSignal);
  }

  const metrics = (): RecorderMetrics => ({ queued: held(), ...counters });
  return { record, flush, close, metrics, prometheus: (labels) => prometheusText(metrics(), labels) };
}

/** Exponential backoff with full jitter in its upper half, so many recorders do not retry in step. */
function backoff(attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`createRecorder: ${name} must be a positive integer, got ${value}`);
  return value;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`createRecorder: ${name} must be a positive number, got ${value}`);
  return value;
}

function safeReporter(report: (event: RecorderEvent) => void): (event: RecorderEvent) => void {
  return (event) => {
    try {
      report(event);
    } catch {
      // The error callback failing must not break the recorder or the caller.
    }
  };
}

function logToStderr(event: RecorderEvent): void {
  const prefix = 'pg-ai-cost recorder:';
  switch (event.kind) {
    case 'invalid':
      console.warn(`${prefix} ${event.error.message}`);
      break;
    case 'rejected':
      console.warn(`${prefix} the database refused call ${event.call.requestId ?? ''}: ${event.error.message}`);
      break;
    case 'retrying':
      if (event.attempt === 1 || event.attempt % 10 === 0) {
        console.warn(`${prefix} write failed (attempt ${event.attempt}), retrying in ${event.delayMs} ms: ${event.error.message}`);
      }
      break;
    case 'dropped':
      console.warn(`${prefix} dropped ${event.count} call(s): ${event.reason}`);
      break;
  }
}
