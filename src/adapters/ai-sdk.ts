import { count, defined, sum, type UsageFields } from './tokens.js';

/**
 * The `usage` of a Vercel AI SDK result (generateText, streamText's
 * `await result.usage`, onFinish). AI SDK 6 reports totals with a
 * breakdown (inputTokenDetails, outputTokenDetails), the totals including
 * the details. AI SDK 5 reports inputTokens/outputTokens plus
 * cachedInputTokens and reasoningTokens whose inclusion depends on the
 * provider package. AI SDK 4 reports promptTokens/completionTokens.
 */
export interface AiSdkUsage {
  inputTokens?: number | null;
  outputTokens?: number | null;
  totalTokens?: number | null;
  inputTokenDetails?: { noCacheTokens?: number | null; cacheReadTokens?: number | null; cacheWriteTokens?: number | null } | null;
  outputTokenDetails?: { textTokens?: number | null; reasoningTokens?: number | null } | null;
  reasoningTokens?: number | null;
  cachedInputTokens?: number | null;
  promptTokens?: number | null;
  completionTokens?: number | null;
}

/** AI SDK usage as call fields (set provider and model from the model you called). */
export function aiSdkUsage(usage: AiSdkUsage | null | undefined): UsageFields {
  if (!usage) return {};
  if (usage.inputTokenDetails || usage.outputTokenDetails) return aiSdk6Usage(usage);
  if (usage.inputTokens === undefined && usage.outputTokens === undefined) {
    return defined({ inputTokens: count(usage.promptTokens), outputTokens: count(usage.completionTokens) });
  }
  return aiSdk5Usage(usage);
}

function aiSdk6Usage(usage: AiSdkUsage): UsageFields {
  const input = usage.inputTokenDetails;
  const output = usage.outputTokenDetails;
  return defined({
    inputTokens: count(usage.inputTokens) ?? sum(input?.noCacheTokens, input?.cacheReadTokens, input?.cacheWriteTokens),
    outputTokens: count(usage.outputTokens) ?? sum(output?.textTokens, output?.reasoningTokens),
    cacheReadTokens: count(input?.cacheReadTokens),
    cacheWriteTokens: count(input?.cacheWriteTokens),
    reasoningTokens: count(output?.reasoningTokens),
  });
}

/**
 * AI SDK 5 passes each provider's numbers through: with @ai-sdk/openai the
 * input includes cachedInputTokens and the output reasoningTokens, with
 * @ai-sdk/anthropic the input EXCLUDES the cache reads, with @ai-sdk/google
 * the output EXCLUDES the reasoning. totalTokens tells which: when it equals
 * input + output + reasoning, reasoning was outside output, and likewise for
 * the cache reads. A part larger than its whole can only be outside it.
 */
function aiSdk5Usage(usage: AiSdkUsage): UsageFields {
  let input = count(usage.inputTokens);
  let output = count(usage.outputTokens);
  const cacheRead = count(usage.cachedInputTokens);
  const reasoning = count(usage.reasoningTokens);
  const total = count(usage.totalTokens);
  const reported = (input ?? 0) + (output ?? 0);
  if (reasoning !== undefined && (reasoning > (output ?? 0) || (total !== undefined && total !== reported && total === reported + reasoning))) {
    output = (output ?? 0) + reasoning;
  }
  if (cacheRead !== undefined && (cacheRead > (input ?? 0) || (total !== undefined && total === (input ?? 0) + cacheRead + (output ?? 0) && total !== (input ?? 0) + (output ?? 0)))) {
    input = (input ?? 0) + cacheRead;
  }
  return defined({ inputTokens: input, outputTokens: output, cacheReadTokens: cacheRead, reasoningTokens: reasoning });
}
