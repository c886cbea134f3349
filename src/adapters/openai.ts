import type { CallInput } from '../recorder/call.js';
import { dollarsToMicros } from './provided-cost.js';
import { count, defined, type UsageFields } from './tokens.js';

/**
 * `usage` of an OpenAI Chat Completion (also the final streamed chunk when
 * the request set `stream_options.include_usage`, and of embeddings).
 * prompt_tokens already includes cached_tokens and audio_tokens;
 * completion_tokens already includes reasoning_tokens and audio_tokens.
 */
export interface OpenAIChatUsage {
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  total_tokens?: number | null;
  prompt_tokens_details?: { cached_tokens?: number | null; audio_tokens?: number | null; cache_write_tokens?: number | null } | null;
  completion_tokens_details?: {
    reasoning_tokens?: number | null;
    audio_tokens?: number | null;
    accepted_prediction_tokens?: number | null;
    rejected_prediction_tokens?: number | null;
  } | null;
}

/** `usage` of an OpenAI Responses API response (also inside the streamed `response.completed` event). */
export interface OpenAIResponsesUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  total_tokens?: number | null;
  input_tokens_details?: { cached_tokens?: number | null } | null;
  output_tokens_details?: { reasoning_tokens?: number | null } | null;
}

/**
 * `usage` of an OpenAI Images API response (gpt-image-1: images.generate and
 * images.edit, also the streamed `image_generation.completed` event).
 * input_tokens includes the text and image tokens of the prompt;
 * output_tokens is the generated image, and its details (where given) split
 * it into image and text tokens.
 */
export interface OpenAIImagesUsage {
  input_tokens?: number | null;
  output_tokens?: number | null;
  total_tokens?: number | null;
  input_tokens_details?: { image_tokens?: number | null; text_tokens?: number | null } | null;
  output_tokens_details?: { image_tokens?: number | null; text_tokens?: number | null } | null;
}

/**
 * OpenAI Chat Completions usage as call fields. The detail counts are parts
 * of the totals, so they are copied, never added: adding cached_tokens to
 * prompt_tokens is the classic double count.
 */
export function openAIChatUsage(usage: OpenAIChatUsage | null | undefined): UsageFields {
  if (!usage) return {};
  return defined({
    inputTokens: count(usage.prompt_tokens),
    outputTokens: count(usage.completion_tokens),
    cacheReadTokens: count(usage.prompt_tokens_details?.cached_tokens),
    cacheWriteTokens: count(usage.prompt_tokens_details?.cache_write_tokens),
    reasoningTokens: count(usage.completion_tokens_details?.reasoning_tokens),
    audioInputTokens: count(usage.prompt_tokens_details?.audio_tokens),
    audioOutputTokens: count(usage.completion_tokens_details?.audio_tokens),
  });
}

/** OpenAI Responses API usage as call fields (input includes cached, output includes reasoning). */
export function openAIResponsesUsage(usage: OpenAIResponsesUsage | null | undefined): UsageFields {
  if (!usage) return {};
  return defined({
    inputTokens: count(usage.input_tokens),
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: count(usage.input_tokens_details?.cached_tokens),
    reasoningTokens: count(usage.output_tokens_details?.reasoning_tokens),
  });
}

/**
 * OpenAI Images API usage as call fields. Without output details every
 * output token is image: the API documents output_tokens as "the number of
 * image tokens in the output image".
 */
export function openAIImagesUsage(usage: OpenAIImagesUsage | null | undefined): UsageFields {
  if (!usage) return {};
  const outputTokens = count(usage.output_tokens);
  return defined({
    inputTokens: count(usage.input_tokens),
    outputTokens,
    imageInputTokens: count(usage.input_tokens_details?.image_tokens),
    imageOutputTokens: usage.output_tokens_details ? count(usage.output_tokens_details.image_tokens) : outputTokens,
  });
}

/** The identifying fields and usage of a call; spread it into what you pass to record(). */
export type CallFields = Partial<CallInput>;

/** The service tier OpenAI reports ('default', 'flex', 'priority', ...) as an ai_cost tier. */
export function openAIServiceTier(tier: string | null | undefined): CallInput['serviceTier'] {
  if (tier === 'flex' || tier === 'priority') return tier;
  // 'default' and 'auto' run on the standard tier; 'scale' is prepaid capacity billed outside per-token prices.
  return 'standard';
}

/** A Chat Completion (or its final streamed chunk) as call fields: provider, model, id, tier, tokens. */
export function openAIChatCompletionCall(completion: {
  id?: string | null;
  model?: string | null;
  service_tier?: string | null;
  usage?: OpenAIChatUsage | null;
}): CallFields {
  return defined({
    provider: 'openai',
    model: completion.model || undefined,
    requestId: completion.id || undefined,
    serviceTier: openAIServiceTier(completion.service_tier),
    ...openAIChatUsage(completion.usage),
  });
}

/** A Responses API response (or the `response` of a streamed `response.completed` event) as call fields. */
export function openAIResponseCall(response: {
  id?: string | null;
  model?: string | null;
  service_tier?: string | null;
  status?: string | null;
  error?: { message?: string | null } | null;
  usage?: OpenAIResponsesUsage | null;
}): CallFields {
  const failed = response.status === 'failed';
  return defined({
    provider: 'openai',
    model: response.model || undefined,
    requestId: response.id || undefined,
    serviceTier: openAIServiceTier(response.service_tier),
    status: failed ? 'error' : response.status === 'cancelled' ? 'cancelled' : undefined,
    errorMessage: failed ? (response.error?.message ?? 'response failed') : undefined,
    ...openAIResponsesUsage(response.usage),
  });
}

/**
 * An Images API response as call fields. The response names neither the
 * model nor itself, so the model is the one the request asked for.
 */
export function openAIImagesResponseCall(response: { usage?: OpenAIImagesUsage | null }, model: string): CallFields {
  return defined({
    provider: 'openai',
    model: model || undefined,
    operation: 'image' as const,
    ...openAIImagesUsage(response.usage),
  });
}

/**
 * `usage` of OpenRouter and other OpenAI-compatible gateways that bill and
 * report the cost themselves: `cost` is in dollars (credits). With your own
 * provider key (BYOK) `cost` is only the gateway's fee and the provider's
 * charge is `cost_details.upstream_inference_cost`; the call cost both.
 */
export interface OpenRouterUsage extends OpenAIChatUsage {
  cost?: number | null;
  is_byok?: boolean | null;
  cost_details?: { upstream_inference_cost?: number | null } | null;
}

/** OpenRouter usage as call fields: the tokens, and the reported cost as providedCostMicros. */
export function openRouterUsage(usage: OpenRouterUsage | null | undefined): UsageFields {
  if (!usage) return {};
  const fields = openAIChatUsage(usage);
  if (typeof usage.cost !== 'number') return fields;
  const upstream = usage.is_byok ? usage.cost_details?.upstream_inference_cost : undefined;
  const providedCostMicros = dollarsToMicros(usage.cost) + (typeof upstream === 'number' ? dollarsToMicros(upstream) : 0n);
  return { ...fields, providedCostMicros };
}

/** An OpenRouter chat completion as call fields; provider 'openrouter', model as OpenRouter names it. */
export function openRouterCompletionCall(completion: {
  id?: string | null;
  model?: string | null;
  usage?: OpenRouterUsage | null;
}): CallFields {
  return defined({
    provider: 'openrouter',
    model: completion.model || undefined,
    requestId: completion.id || undefined,
    ...openRouterUsage(completion.usage),
  });
}
