import { openAIChatCompletionCall, openAIChatUsage, openAIResponseCall } from '../adapters/openai.js';
import type { CallInput } from '../recorder/call.js';
import { emit, failureOf, isStream, observeStream, wrapMethod, type InstrumentOptions } from './observe.js';

/** The parts of an `openai` client (v5 and later) the wrapper instruments; any it lacks are skipped. */
export interface OpenAIClientLike {
  chat: { completions: object };
  responses?: object;
  embeddings?: object;
}

/**
 * Records every call made through an official `openai` client:
 * chat.completions.create (and the helpers built on it: stream(), parse()),
 * responses.create (and responses.stream()), embeddings.create. Latency,
 * time to first token for streams, status and error message are recorded
 * with the usage. The client is changed in place and returned: same object,
 * same type, same return values.
 *
 * Chat Completions streams report usage only when the request sets
 * `stream_options: { include_usage: true }`; the wrapper does not add it
 * (it adds a final chunk without choices to what your code iterates), so
 * set it yourself, or such calls are recorded without tokens.
 */
export function instrumentOpenAI<T extends OpenAIClientLike>(client: T, options: InstrumentOptions): T {
  const record = (operation: CallInput['operation'], params: Record<string, unknown>, startedAt: Date, fields: Partial<CallInput>,
    outcome: { status: 'success' | 'error' | 'cancelled'; errorMessage?: string; ttftMs?: number; totalMs: number }, streamed: boolean) =>
    emit(options, operation, params.model, { startedAt, streamed, ...outcome, fields: { provider: 'openai', ...fields } });

  wrapMethod(client.chat.completions as Record<string, unknown>, 'create', (params, startedAt, started, result, failure) => {
    const elapsed = () => performance.now() - started;
    if (failure !== undefined) return record('chat', params, startedAt, {}, { ...failureOf(failure), totalMs: elapsed() }, params.stream === true);
    if (!isStream(result)) {
      return record('chat', params, startedAt, openAIChatCompletionCall(result as never), { status: 'success', totalMs: elapsed() }, false);
    }
    let fields: Partial<CallInput> = {};
    observeStream(result, started, {
      onItem: (chunk) => {
        const value = chunk as { id?: string; model?: string; usage?: unknown; service_tier?: string };
        // Every chunk names the id and model; the usage comes with the last one (include_usage).
        fields = { ...fields, ...openAIChatCompletionCall(value as never) };
      },
      isContent: (chunk) => ((chunk as { choices?: { delta?: Record<string, unknown> }[] }).choices ?? [])
        .some(({ delta }) => Object.entries(delta ?? {}).some(([key, value]) => key !== 'role' && Boolean(value) && (!Array.isArray(value) || value.length > 0))),
      done: (outcome) => record('chat', params, startedAt, usageNoted(fields), outcome, true),
    });
  });

  wrapMethod(client.responses as Record<string, unknown> | undefined, 'create', (params, startedAt, started, result, failure) => {
    const elapsed = () => performance.now() - started;
    if (failure !== undefined) return record('chat', params, startedAt, {}, { ...failureOf(failure), totalMs: elapsed() }, params.stream === true);
    if (!isStream(result)) {
      const fields = openAIResponseCall(result as never);
      return record('chat', params, startedAt, fields, { status: fields.status ?? 'success', errorMessage: fields.errorMessage ?? undefined, totalMs: elapsed() }, false);
    }
    let fields: Partial<CallInput> = {};
    observeStream(result, started, {
      onItem: (event) => {
        const value = event as { type?: string; response?: object };
        // response.created names the call; completed, incomplete and failed carry the final usage.
        if (value.response && /^response\.(created|completed|incomplete|failed)$/.test(value.type ?? '')) {
          fields = { ...fields, ...openAIResponseCall(value.response as never) };
        }
      },
      isContent: (event) => /\.delta$/.test((event as { type?: string }).type ?? ''),
      done: (outcome) => record('chat', params, startedAt, fields,
        outcome.status === 'success' && fields.status ? { ...outcome, status: fields.status, errorMessage: fields.errorMessage ?? undefined } : outcome, true),
    });
  });

  wrapMethod(client.embeddings as Record<string, unknown> | undefined, 'create', (params, startedAt, started, result, failure) => {
    const totalMs = performance.now() - started;
    if (failure !== undefined) return record('embedding', params, startedAt, {}, { ...failureOf(failure), totalMs }, false);
    const value = result as { model?: string; usage?: never };
    record('embedding', params, startedAt, { model: value.model, ...openAIChatUsage(value.usage) }, { status: 'success', totalMs }, false);
  });

  return client;
}

/** A streamed chat call that reported no usage is marked, so it is not mistaken for a free one. */
function usageNoted(fields: Partial<CallInput>): Partial<CallInput> {
  if (fields.inputTokens !== undefined || fields.outputTokens !== undefined) return fields;
  return { ...fields, metadata: { ...fields.metadata, usage_missing: 'stream without stream_options.include_usage' } };
}
