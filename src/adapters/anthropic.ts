import type { CallInput } from '../recorder/call.js';
import type { CallFields } from './openai.js';
import { count, defined, sum, type UsageFields } from './tokens.js';

/**
 * `usage` of an Anthropic Message. Unlike OpenAI, input_tokens counts only
 * the uncached prompt tokens: cache writes (cache_creation_input_tokens,
 * split into 5-minute and 1-hour writes by cache_creation) and cache reads
 * (cache_read_input_tokens) come on top. output_tokens includes thinking.
 */
export interface AnthropicUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
  cache_creation?: { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null } | null;
  server_tool_use?: { web_search_requests?: number | null; web_fetch_requests?: number | null } | null;
  service_tier?: string | null;
  /** "fast" for a call in fast mode, billed as the fast service tier. */
  speed?: string | null;
}

/**
 * Anthropic usage as call fields with the OpenTelemetry semantics: input is
 * input_tokens + cache writes + cache reads. Recording input_tokens alone as
 * the input makes every cached token vanish from the input; recording it as
 * the input AND the cache counts fails the "input includes cache" check.
 */
export function anthropicUsage(usage: AnthropicUsage | null | undefined): UsageFields {
  if (!usage) return {};
  const split = usage.cache_creation;
  // The total is authoritative; the 5m/1h split only says how much of it lives an hour.
  const cacheWrite = count(usage.cache_creation_input_tokens)
    ?? sum(split?.ephemeral_5m_input_tokens, split?.ephemeral_1h_input_tokens);
  const cacheRead = count(usage.cache_read_input_tokens);
  return defined({
    inputTokens: sum(usage.input_tokens, cacheWrite, cacheRead),
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    cacheWrite1hTokens: count(split?.ephemeral_1h_input_tokens),
  });
}

/** The service tier Anthropic reports in usage as an ai_cost tier; fast mode (usage.speed "fast") is the fast tier. */
export function anthropicServiceTier(tier: string | null | undefined, speed?: string | null): CallInput['serviceTier'] {
  if (speed === 'fast') return 'fast';
  return tier === 'priority' || tier === 'batch' ? tier : 'standard';
}

/** Server tool requests (web search, web fetch) billed per request, kept in metadata. */
function serverToolMetadata(usage: AnthropicUsage | null | undefined): Record<string, number> | undefined {
  const searches = count(usage?.server_tool_use?.web_search_requests);
  const fetches = count(usage?.server_tool_use?.web_fetch_requests);
  const metadata = defined({ web_search_requests: searches || undefined, web_fetch_requests: fetches || undefined });
  return Object.keys(metadata).length > 0 ? (metadata as Record<string, number>) : undefined;
}

/** An Anthropic Message as call fields: provider, model, id, tier, tokens. */
export function anthropicMessageCall(message: { id?: string | null; model?: string | null; usage?: AnthropicUsage | null }): CallFields {
  return defined({
    provider: 'anthropic',
    model: message.model || undefined,
    requestId: message.id || undefined,
    serviceTier: anthropicServiceTier(message.usage?.service_tier, message.usage?.speed),
    metadata: serverToolMetadata(message.usage),
    ...anthropicUsage(message.usage),
  });
}

/** The streamed events that carry usage; others are ignored. */
export type AnthropicStreamEvent =
  | { type: 'message_start'; message: { id?: string | null; model?: string | null; usage?: AnthropicUsage | null } }
  | { type: 'message_delta'; usage?: AnthropicUsage | null }
  | { type: string };

/**
 * A streamed Message as call fields. message_start carries the input and
 * cache counts; each message_delta carries CUMULATIVE counts (output so far,
 * and on newer API versions the input and cache counts again), so the last
 * value of each field wins. Summing the deltas' output_tokens, or adding
 * message_start's output to them, counts output twice.
 */
export function anthropicStreamCall(events: Iterable<AnthropicStreamEvent>): CallFields {
  let message: { id?: string | null; model?: string | null; usage?: AnthropicUsage | null } = {};
  let usage: AnthropicUsage = {};
  for (const event of events) {
    if (event.type === 'message_start' && 'message' in event) {
      message = event.message;
      usage = { ...(event.message.usage ?? {}) };
    } else if (event.type === 'message_delta' && 'usage' in event && event.usage) {
      for (const [key, value] of Object.entries(event.usage)) {
        if (value !== null && value !== undefined) (usage as Record<string, unknown>)[key] = value;
      }
    }
  }
  return anthropicMessageCall({ ...message, usage });
}
