import type { CallInput } from '../recorder/call.js';

/** Anything with a record() that returns at once, such as a Recorder. */
export interface CallSink {
  record(call: CallInput): void;
}

export interface InstrumentOptions {
  /** Where the calls go, usually a Recorder. */
  recorder: CallSink;
  /**
   * Fields for every call made through the client (tenantId, feature,
   * metadata, ...); a function is called at each request, e.g. to read the
   * tenant from an AsyncLocalStorage.
   */
  context?: Partial<CallInput> | (() => Partial<CallInput>);
  /** Provider id to record instead of the default (e.g. 'azure' for an Azure OpenAI endpoint). */
  provider?: string;
}

/** What a wrapper knows about one request when it settles. */
interface Observation {
  startedAt: Date;
  totalMs: number;
  ttftMs?: number;
  streamed: boolean;
  status: 'success' | 'error' | 'cancelled';
  errorMessage?: string;
  /** Provider, model, id and usage read from the response (by an adapter). */
  fields: Partial<CallInput>;
}

/**
 * The SDKs' APIPromise: a Promise whose then/catch/finally/withResponse parse
 * the body once (memoized), whose asResponse() hands over the raw Response,
 * and whose _thenUnwrap() (used by helpers such as parse()) derives another.
 */
interface ApiPromiseLike {
  then: (...args: unknown[]) => unknown;
  catch?: (...args: unknown[]) => unknown;
  finally?: (...args: unknown[]) => unknown;
  withResponse?: (...args: unknown[]) => unknown;
  _thenUnwrap?: (...args: unknown[]) => unknown;
}

type Settled = (result: unknown, failure: unknown) => void;

/**
 * Wraps `owner[method]` so every call through it is observed, without
 * changing what the caller gets: the SDK's own APIPromise is returned, the
 * same parsed object resolves from it, and a stream is the SDK's own Stream.
 *
 * The result is read only when the caller reads it (then/await/catch/
 * finally/withResponse): a caller who takes the raw body with asResponse()
 * reads it alone, and that call is not recorded (its usage is in the body).
 */
export function wrapMethod(
  owner: Record<string, unknown> | undefined,
  method: string,
  observe: (params: Record<string, unknown>, startedAt: Date, started: number, result: unknown, failure: unknown) => void,
): void {
  const original = owner?.[method];
  if (typeof original !== 'function' || (original as { __aiCostWrapped?: true }).__aiCostWrapped) return;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const params = (args[0] ?? {}) as Record<string, unknown>;
    const startedAt = new Date();
    const started = performance.now();
    const promise = original.apply(this, args) as ApiPromiseLike;
    return observeWhenRead(promise, (result, failure) => observe(params, startedAt, started, result, failure));
  };
  Object.defineProperty(wrapped, '__aiCostWrapped', { value: true });
  owner![method] = wrapped;
}

function observeWhenRead(promise: ApiPromiseLike, settled: Settled): ApiPromiseLike {
  if (!promise || typeof promise.then !== 'function') return promise;
  const originalThen = promise.then;
  let observed = false;
  const observeOnce = () => {
    if (observed) return;
    observed = true;
    // Registered before the caller's own callbacks, so a stream is instrumented before it is iterated.
    originalThen.call(
      promise,
      (result: unknown) => settled(result, undefined),
      (failure: unknown) => settled(undefined, failure ?? new Error('request failed')),
    );
  };
  const readers = ['then', 'catch', 'finally', 'withResponse'] as const;
  for (const name of readers) {
    const reader = promise[name];
    if (typeof reader !== 'function') continue;
    promise[name] = function (this: unknown, ...args: unknown[]) {
      observeOnce();
      return reader.apply(this, args);
    };
  }
  const thenUnwrap = promise._thenUnwrap;
  if (typeof thenUnwrap === 'function') {
    // A derived promise parses the body itself: observe it instead of this one.
    promise._thenUnwrap = function (this: unknown, ...args: unknown[]) {
      observed = true;
      return observeWhenRead(thenUnwrap.apply(this, args) as ApiPromiseLike, settled);
    };
  }
  return promise;
}

/** The SDK error a call failed with, as a status and a message. */
export function failureOf(error: unknown): { status: 'error' | 'cancelled'; errorMessage: string } {
  const name = (error as { name?: unknown })?.name;
  const message = error instanceof Error ? error.message : String(error);
  const cancelled = name === 'APIUserAbortError' || name === 'AbortError';
  return { status: cancelled ? 'cancelled' : 'error', errorMessage: message || String(name ?? 'error') };
}

/** A Stream of the SDKs: an async iterable whose items all come from its `iterator` function. */
interface StreamLike {
  iterator: () => AsyncIterator<unknown>;
}

export function isStream(value: unknown): value is StreamLike {
  return typeof (value as StreamLike | undefined)?.iterator === 'function'
    && typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/**
 * Observes a streamed response as the caller consumes it, in place: the
 * Stream object stays the SDK's own (iteration, tee(), toReadableStream()
 * all go through its `iterator`). `onItem` sees every event; `isContent`
 * marks the first one that carries output (time to first token); `done` runs
 * once, when the stream ends, fails, or the caller stops early (cancelled).
 */
export function observeStream(
  stream: StreamLike,
  started: number,
  hooks: {
    onItem: (item: unknown) => void;
    isContent: (item: unknown) => boolean;
    done: (outcome: { status: 'success' | 'error' | 'cancelled'; errorMessage?: string; ttftMs?: number; totalMs: number }) => void;
  },
): void {
  const original = stream.iterator;
  stream.iterator = function (this: unknown) {
    const inner = original.call(this);
    return (async function* observed() {
      let ttftMs: number | undefined;
      let outcome: { status: 'success' | 'error' | 'cancelled'; errorMessage?: string } = { status: 'cancelled', errorMessage: 'stream closed before its end' };
      try {
        for (let step = await inner.next(); !step.done; step = await inner.next()) {
          const item = step.value;
          if (ttftMs === undefined && safe(() => hooks.isContent(item))) ttftMs = Math.round(performance.now() - started);
          safe(() => hooks.onItem(item));
          yield item;
        }
        outcome = { status: 'success' };
      } catch (error) {
        outcome = failureOf(error);
        throw error;
      } finally {
        if (outcome.status === 'cancelled') await inner.return?.();
        safe(() => hooks.done({ ...outcome, ttftMs, totalMs: Math.round(performance.now() - started) }));
      }
    })();
  };
}

/** Runs an observer; its failure must never reach the application. */
export function safe<T>(work: () => T): T | undefined {
  try {
    return work();
  } catch {
    return undefined;
  }
}

/** Builds the call from an observation and the context, and hands it to the sink. Never throws. */
export function emit(options: InstrumentOptions, operation: CallInput['operation'], model: unknown, observation: Observation): void {
  safe(() => {
    const context = typeof options.context === 'function' ? options.context() : options.context;
    const fields = observation.fields;
    options.recorder.record({
      ...context,
      ...fields,
      provider: options.provider ?? fields.provider ?? 'unknown',
      model: fields.model ?? (typeof model === 'string' && model ? model : 'unknown'),
      operation,
      status: observation.status,
      errorMessage: observation.errorMessage,
      streamed: observation.streamed,
      ttftMs: observation.ttftMs,
      totalMs: Math.round(observation.totalMs),
      createdAt: observation.startedAt,
      metadata: { ...context?.metadata, ...fields.metadata },
    });
  });
}
