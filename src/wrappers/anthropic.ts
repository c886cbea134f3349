import { anthropicMessageCall, anthropicStreamCall, type AnthropicStreamEvent } from '../adapters/anthropic.js';
import type { CallInput } from '../recorder/call.js';
import { emit, failureOf, isStream, observeStream, wrapMethod, type InstrumentOptions } from './observe.js';

/** The part of an `@anthropic-ai/sdk` client the wrapper instruments. */
export interface AnthropicClientLike {
  messages: object;
}

/**
 * Records every call made through an official `@anthropic-ai/sdk` client:
 * messages.create, and messages.stream() and messages.parse(), which are
 * built on it. Latency, time to first token for streams, status and error
 * message are recorded with the usage (cache writes with their 1-hour part,
 * cache reads). The client is changed in place and returned: same object,
 * same type, same return values.
 */
export function instrumentAnthropic<T extends AnthropicClientLike>(client: T, options: InstrumentOptions): T {
  const record = (params: Record<string, unknown>, startedAt: Date, fields: Partial<CallInput>,
    outcome: { status: 'success' | 'error' | 'cancelled'; errorMessage?: string; ttftMs?: number; totalMs: number }, streamed: boolean) =>
    emit(options, 'chat', params.model, { startedAt, streamed, ...outcome, fields: { provider: 'anthropic', ...fields } });

  wrapMethod(client.messages as Record<string, unknown>, 'create', (params, startedAt, started, result, failure) => {
    const elapsed = () => performance.now() - started;
    if (failure !== undefined) return record(params, startedAt, {}, { ...failureOf(failure), totalMs: elapsed() }, params.stream === true);
    if (!isStream(result)) {
      return record(params, startedAt, anthropicMessageCall(result as never), { status: 'success', totalMs: elapsed() }, false);
    }
    // Only the events that carry usage are kept, not the streamed text.
    const usageEvents: AnthropicStreamEvent[] = [];
    observeStream(result, started, {
      onItem: (event) => {
        const type = (event as { type?: string }).type;
        if (type === 'message_start' || type === 'message_delta') usageEvents.push(event as AnthropicStreamEvent);
      },
      isContent: (event) => (event as { type?: string }).type === 'content_block_delta',
      done: (outcome) => record(params, startedAt, anthropicStreamCall(usageEvents), outcome, true),
    });
  });
  return client;
}
