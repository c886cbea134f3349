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

function ofModality(details: ModalityCount[] | null | undefined, modality: string): number | undefined {
  return sum(...(details ?? []).filter((detail) => detail.modality === modality).map((detail) => detail.tokenCount));
}

/**
 * The prompt tokens of a modality not read from the cache. Gemini bills
 * cached image and video as other cached tokens, so ai_cost counts them in
 * the cache reads only (cached audio has a rate of its own, and a column).
 */
function uncached(usage: GeminiUsageMetadata, modality: string): number | undefined {
  const all = ofModality(usage.promptTokensDetails, modality);
  return all === undefined ? undefined : Math.max(all - (ofModality(usage.cacheTokensDetails, modality) ?? 0), 0);
}

/**
 * Gemini usage as call fields: output = candidates + thoughts (recording
 * candidatesTokenCount alone loses the thinking, which is usually most of a
 * thinking model's bill); input = prompt + tool-use prompt. The AUDIO, IMAGE
 * and VIDEO entries of the details become the audio, image and video parts.
 */
export function geminiUsage(usage: GeminiUsageMetadata | null | undefined): UsageFields {
  if (!usage) return {};
  const thoughts = count(usage.thoughtsTokenCount);
  return defined({
    inputTokens: sum(usage.promptTokenCount, usage.toolUsePromptTokenCount),
    outputTokens: sum(usage.candidatesTokenCount, thoughts),
    cacheReadTokens: count(usage.cachedContentTokenCount),
    reasoningTokens: thoughts,
    audioInputTokens: ofModality(usage.promptTokensDetails, 'AUDIO'),
    cacheReadAudioTokens: ofModality(usage.cacheTokensDetails, 'AUDIO'),
    audioOutputTokens: ofModality(usage.candidatesTokensDetails, 'AUDIO'),
    imageInputTokens: uncached(usage, 'IMAGE'),
    videoInputTokens: uncached(usage, 'VIDEO'),
    imageOutputTokens: ofModality(usage.candidatesTokensDetails, 'IMAGE'),
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
