import type { CallFields } from './openai.js';
import { count, defined, sum, type UsageFields } from './tokens.js';

interface ModalityCount {
  modality?: string | null;
  tokenCount?: number | null;
}

/**
 * `usageMetadata` of a Google Gemini response (@google/genai). promptTokenCount
 * includes cachedContentTokenCount, and promptTokensDetails breaks down all of
 * it by modality, cached tokens included; cacheTokensDetails breaks down the
 * cached ones. thoughtsTokenCount is billed as output
 * but is NOT part of candidatesTokenCount; toolUsePromptTokenCount (the
 * results of tools such as search, fed back to the model) is billed as input
 * and is not part of promptTokenCount. totalTokenCount is the sum of all four.
 */
export interface GeminiUsageMetadata {
  promptTokenCount?: number | null;
  candidatesTokenCount?: number | null;
  cachedContentTokenCount?: number | null;
  thoughtsTokenCount?: number | null;
  toolUsePromptTokenCount?: number | null;
  totalTokenCount?: number | null;
  promptTokensDetails?: ModalityCount[] | null;
  cacheTokensDetails?: ModalityCount[] | null;
  candidatesTokensDetails?: ModalityCount[] | null;
}

function audio(details: ModalityCount[] | null | undefined): number | undefined {
  return sum(...(details ?? []).filter((detail) => detail.modality === 'AUDIO').map((detail) => detail.tokenCount));
}

/**
 * Gemini usage as call fields: output = candidates + thoughts (recording
 * candidatesTokenCount alone loses the thinking, which is usually most of a
 * thinking model's bill); input = prompt + tool-use prompt.
 */
export function geminiUsage(usage: GeminiUsageMetadata | null | undefined): UsageFields {
  if (!usage) return {};
  const thoughts = count(usage.thoughtsTokenCount);
  return defined({
    inputTokens: sum(usage.promptTokenCount, usage.toolUsePromptTokenCount),
    outputTokens: sum(usage.candidatesTokenCount, thoughts),
    cacheReadTokens: count(usage.cachedContentTokenCount),
    reasoningTokens: thoughts,
    audioInputTokens: audio(usage.promptTokensDetails),
    cacheReadAudioTokens: audio(usage.cacheTokensDetails),
    audioOutputTokens: audio(usage.candidatesTokensDetails),
  });
}

/**
 * A Gemini response as call fields. When streaming, every chunk carries the
 * usage so far: pass the last chunk, never a sum of chunks.
 */
export function geminiResponseCall(
  response: { responseId?: string | null; modelVersion?: string | null; usageMetadata?: GeminiUsageMetadata | null },
  model?: string,
): CallFields {
  return defined({
    provider: 'google',
    // The request's model id is what prices are listed under; modelVersion may name a dated snapshot.
    model: model || response.modelVersion || undefined,
    requestId: response.responseId || undefined,
    ...geminiUsage(response.usageMetadata),
  });
}
