/**
 * Pure functions from each SDK's usage object to the token fields of a call,
 * with the OpenTelemetry semantics ai_cost.calls uses: inputTokens includes
 * cache reads and writes, outputTokens includes reasoning. No SDK is imported:
 * the shapes are described structurally, so the SDKs stay optional.
 */
export { type UsageFields } from './tokens.js';
export { dollarsToMicros } from './provided-cost.js';
export {
  openAIChatUsage, openAIResponsesUsage, openAIImagesUsage, openAIChatCompletionCall, openAIResponseCall,
  openAIImagesResponseCall, openAIServiceTier, openRouterUsage, openRouterCompletionCall,
  type OpenAIChatUsage, type OpenAIResponsesUsage, type OpenAIImagesUsage, type OpenRouterUsage, type CallFields,
} from './openai.js';
export { anthropicUsage, anthropicMessageCall, anthropicStreamCall, anthropicServiceTier, type AnthropicUsage, type AnthropicStreamEvent } from './anthropic.js';
export { geminiUsage, geminiResponseCall, type GeminiUsageMetadata } from './gemini.js';
export { aiSdkUsage, type AiSdkUsage } from './ai-sdk.js';
