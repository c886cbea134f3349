import { randomUUID } from 'node:crypto';
import type { DatabasePool } from 'slonik';
import { callSchema, InvalidCallError, type Call, type CallInput } from './call.js';
import { createPool } from '../db.js';
import { chooseInsertPath, describeDatabaseError, insertCalls, isRowError, type InsertPath, type QueuedCall } from './insert.js';
import { prometheusText, type RecorderMetrics } from './metrics.js';

/** Something that went wrong off the caller's path, reported instead of thrown. */
export type RecorderEvent =
  /** record() got a call that failed validation; the message names each bad field. Nothing was queued. */
  | { kind: 'invalid'; error: InvalidCallError; call: unknown }
  /** The database refused this call (a CHECK, a bad value); the other calls of its batch were written. */
  | { kind: 'rejected'; error: Error; call: Call }
  /** A write failed and will be retried after delayMs; nothing is lost while the queue has room. */
  | { kind: 'retrying'; error: Error; attempt: number; delayMs: number }
  /** Calls were lost. For a full queue this is sent once per episode; metrics().dropped counts every call. */
  | { kind: 'dropped'; reason: 'queue full' | 'recorder closed' | 'close timed out'; count: number };

export interface RecorderOptions {
  /** Where to write; the recorder opens (and on close ends) its own small pool. */
  databaseUrl?: string;
  /** Or a slonik pool of yours (e.g. from createPool); the recorder never ends it. */
  pool?: DatabasePool;
  /** Write as soon as this many calls are queued (default 500). */
  batchSize?: number;
  /** Write a partial batch when its oldest call has waited this long (default 1000 ms). */
  flushIntervalMs?: number;
  /** At most this many calls in memory; more are dropped and counted (default 10,000). */
  maxQueue?: number;
  /** Retry delays: exponential from minDelayMs to maxDelayMs, with jitter (default 100 ms to 10 s). */
  retry?: { minDelayMs?: number; maxDelayMs?: number };
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
  /** Resolves when every call recorded before it has been written, refused or dropped. Never rejects; waits through retries. */
  flush(): Promise<void>;
  /** Stops accepting calls, writes what is queued (for at most closeTimeoutMs, then drops the rest) and ends its own pool. */
  close(): Promise<void>;
  /** A snapshot of the counters. */
  metrics(): RecorderMetrics;
  /** The metrics in the Prometheus text format. */
  prometheus(labels?: Record<string, string>): string;
}

const EXIT_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const POOL_END_GRACE_MS = 1_000;

/**
 * A recorder for the request path: record() validates and queues in
 * microseconds; a single background writer inserts batches (by size or
 * interval), retries with backoff while the database is away, and keeps
 * memory bounded by dropping, and counting, what does not fit.
 */
export function createRecorder(options: RecorderOptions): Recorder {
  if (!options.pool && !options.databaseUrl) throw new TypeError('createRecorder needs databaseUrl or pool');
  const batchSize = positive('batchSize', options.batchSize ?? 500);
  const flushIntervalMs = positive('flushIntervalMs', options.flushIntervalMs ?? 1_000);
  const maxQueue = positive('maxQueue', options.maxQueue ?? 10_000);
  const minDelayMs = positive('retry.minDelayMs', options.retry?.minDelayMs ?? 100);
  const maxDelayMs = Math.max(minDelayMs, options.retry?.maxDelayMs ?? 10_000);
  const closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
  const report = safeReporter(options.onError ?? logToStderr);

  const counters: Omit<RecorderMetrics, 'queued'> = {
    recorded: 0, written: 0, duplicates: 0, invalid: 0, rejected: 0, retried: 0, dropped: 0, lastError: null,
  };
  let queue: QueuedCall[] = [];
  let enqueued = 0; // calls ever queued
  let settled = 0; // of those, written, refused or dropped (in queue order)
  const waiters: { target: number; resolve: () => void }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing = false;
  let overflowing = false;
  let closing: Promise<void> | undefined;
  let givenUp = false;
  let wake: (() => void) | undefined;
  let poolPromise: Promise<DatabasePool> | undefined = options.pool ? Promise.resolve(options.pool) : undefined;
  // Chosen on the first write and again after any failed one: a migration or
  // a grant may have changed what this login can use.
  let insertPath: InsertPath | undefined;

  const fail = (error: Error | string) => {
    counters.lastError = { message: typeof error === 'string' ? error : error.message, at: new Date() };
  };

  const getPool = (): Promise<DatabasePool> => {
    poolPromise ??= createPool(options.databaseUrl!, 2).catch((error: unknown) => {
      poolPromise = undefined; // try again on the next attempt
      throw error;
    });
    return poolPromise;
  };

  /** The first `count` queued calls are done with. */
  const settle = (count: number) => {
    queue.splice(0, count);
    settled += count;
    for (let i = waiters.length - 1; i >= 0; i -= 1) {
      if (waiters[i]!.target <= settled) waiters.splice(i, 1)[0]!.resolve();
    }
  };

  const writeRowByRow = async (db: DatabasePool, path: InsertPath, batch: readonly QueuedCall[]) => {
    for (const call of batch) {
      if (givenUp) return; // close() timed out: the rest is counted as dropped
      try {
        const inserted = await insertCalls(db, [call], path);
        counters.written += inserted;
        counters.duplicates += 1 - inserted;
      } catch (error) {
        if (!isRowError(error)) throw error; // the database went away: retry from this call on
        counters.rejected += 1;
        const described = describeDatabaseError(error);
        fail(described);
        report({ kind: 'rejected', error: described, call });
      }
      // Settled after close() timed out and counted it as dropped: it was not lost after all.
      if (givenUp) counters.dropped -= 1;
      else settle(1);
    }
  };

  const writeLoop = async () => {
    if (writing) return;
    writing = true;
    let attempt = 0;
    try {
      while (queue.length > 0 && !givenUp) {
        const batch = queue.slice(0, batchSize);
        try {
          const db = await getPool();
          const path = insertPath ??= await chooseInsertPath(db);
          try {
            const inserted = await insertCalls(db, batch, path);
            counters.written += inserted;
            counters.duplicates += batch.length - inserted;
            if (givenUp) {
              // close() timed out while this batch was in flight and counted it as dropped; it landed after all.
              counters.dropped -= batch.length;
            } else {
              settle(batch.length);
            }
          } catch (error) {
            // One bad row fails a multi-row INSERT; write the batch row by row so it only costs itself.
            if (!isRowError(error)) throw error;
            await writeRowByRow(db, path, batch);
          }
          attempt = 0;
          overflowing = false;
        } catch (error) {
          insertPath = undefined;
          attempt += 1;
          counters.retried += 1;
          const described = describeDatabaseError(error);
          fail(described);
          const delayMs = backoff(attempt, minDelayMs, maxDelayMs);
          report({ kind: 'retrying', error: described, attempt, delayMs });
          await new Promise<void>((resolve) => {
            const sleep = setTimeout(resolve, delayMs);
            // A retry alone does not keep the process alive (exit handling flushes);
            // one that flush() or close() is waiting for does.
            if (!closing && waiters.length === 0) sleep.unref();
            wake = () => {
              clearTimeout(sleep);
              resolve();
            };
          });
          wake = undefined;
        }
      }
    } finally {
      writing = false;
    }
  };

  const kick = () => {
    clearTimeout(timer);
    timer = undefined;
    writeLoop().catch((error: unknown) => fail(error as Error));
  };

  const record = (input: CallInput): void => {
    try {
      if (closing) {
        counters.dropped += 1;
        fail('call recorded after close()');
        report({ kind: 'dropped', reason: 'recorder closed', count: 1 });
        return;
      }
      const parsed = callSchema.safeParse(input);
      if (!parsed.success) {
        counters.invalid += 1;
        const error = new InvalidCallError(parsed.error.issues);
        fail(error);
        report({ kind: 'invalid', error, call: input });
        return;
      }
      if (queue.length >= maxQueue) {
        counters.dropped += 1;
        fail(`queue full (${maxQueue} calls): call dropped`);
        if (!overflowing) report({ kind: 'dropped', reason: 'queue full', count: 1 });
        overflowing = true;
        return;
      }
      queue.push({ ...parsed.data, requestId: parsed.data.requestId ?? randomUUID(), createdAt: parsed.data.createdAt ?? new Date() });
      enqueued += 1;
      counters.recorded += 1;
      if (queue.length >= batchSize) kick();
      else if (!timer && !writing) {
        timer = setTimeout(kick, flushIntervalMs);
        timer.unref();
      }
    } catch (error) {
      // A bug of ours must not become the caller's problem.
      fail(error as Error);
    }
  };

  const flush = (): Promise<void> => {
    const target = enqueued;
    if (settled >= target) return Promise.resolve();
    const done = new Promise<void>((resolve) => waiters.push({ target, resolve }));
    wake?.(); // retry now rather than at the end of the current backoff
    kick();
    return done;
  };

  const giveUp = () => {
    givenUp = true;
    const lost = queue.length;
    if (lost > 0) {
      counters.dropped += lost;
      fail(`close() timed out after ${closeTimeoutMs} ms: ${lost} calls dropped`);
      report({ kind: 'dropped', reason: 'close timed out', count: lost });
    }
    queue = [];
    settled = enqueued;
    for (const waiter of waiters.splice(0)) waiter.resolve();
    wake?.();
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      removeExitHandlers();
      clearTimeout(timer);
      const deadline = setTimeout(giveUp, closeTimeoutMs);
      await flush();
      clearTimeout(deadline);
      if (!options.pool && poolPromise) {
        const pool = await poolPromise.catch(() => undefined);
        // Ending a pool whose connections died with the server can wait on
        // them indefinitely (with nothing keeping the process alive): give it
        // a second, then let it finish, or not, in the background.
        const ended = pool?.end().catch(() => {});
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
    if (queue.length > 0) void close();
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

  const metrics = (): RecorderMetrics => ({ queued: queue.length, ...counters });
  return { record, flush, close, metrics, prometheus: (labels) => prometheusText(metrics(), labels) };
}

/** Exponential backoff with full jitter in its upper half, so many recorders do not retry in step. */
function backoff(attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
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
