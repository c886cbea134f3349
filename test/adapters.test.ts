import test from 'ava';
import { parseCall } from '../src/recorder/call.js';
import {
  aiSdkUsage, anthropicMessageCall, anthropicStreamCall, anthropicUsage, dollarsToMicros, geminiResponseCall, geminiUsage,
  openAIChatCompletionCall, openAIChatUsage, openAIImagesResponseCall, openAIImagesUsage, openAIResponseCall, openAIResponsesUsage,
  openRouterCompletionCall, openRouterUsage,
} from '../src/adapters/index.js';

/** Every adapter result must pass the call schema's part-of-whole checks when recorded. */
function valid(fields: object) {
  return parseCall({ provider: 'p', model: 'm', ...fields });
}

// ---------------------------------------------------------------- OpenAI

test('OpenAI chat: cached_tokens is part of prompt_tokens and reasoning part of completion_tokens (copied, never added)', (t) => {
  const fields = openAIChatUsage({
    prompt_tokens: 2_006, completion_tokens: 300, total_tokens: 2_306,
    prompt_tokens_details: { cached_tokens: 1_920, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 192, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  });
  t.deepEqual(fields, { inputTokens: 2_006, outputTokens: 300, cacheReadTokens: 1_920, reasoningTokens: 192, audioInputTokens: 0, audioOutputTokens: 0 });
  t.notThrows(() => valid(fields));
});

test('OpenAI chat: audio tokens are parts of prompt and completion', (t) => {
  const fields = openAIChatUsage({
    prompt_tokens: 120, completion_tokens: 500,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 100 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 450 },
  });
  t.like(fields, { inputTokens: 120, outputTokens: 500, audioInputTokens: 100, audioOutputTokens: 450 });
  t.notThrows(() => valid(fields));
});

test('OpenAI chat: missing details and null usage leave counts out, never 0', (t) => {
  t.deepEqual(openAIChatUsage({ prompt_tokens: 8, completion_tokens: 2, prompt_tokens_details: null }), { inputTokens: 8, outputTokens: 2 });
  t.deepEqual(openAIChatUsage(null), {});
  t.deepEqual(openAIChatUsage(undefined), {});
  // Embeddings report prompt tokens only.
  t.deepEqual(openAIChatUsage({ prompt_tokens: 8, total_tokens: 8 }), { inputTokens: 8 });
});

test('OpenAI chat completion and final streamed chunk: id, model, tier and usage', (t) => {
  const completion = { id: 'chatcmpl-1', model: 'gpt-4o-mini-2024-07-18', service_tier: 'default', usage: { prompt_tokens: 10, completion_tokens: 5 } };
  t.deepEqual(openAIChatCompletionCall(completion),
    { provider: 'openai', model: 'gpt-4o-mini-2024-07-18', requestId: 'chatcmpl-1', serviceTier: 'standard', inputTokens: 10, outputTokens: 5 });
  // The last chunk of a stream with stream_options.include_usage: no choices, the usage of the whole call.
  const finalChunk = { id: 'chatcmpl-2', object: 'chat.completion.chunk', model: 'gpt-4o', choices: [], service_tier: 'flex',
    usage: { prompt_tokens: 50, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } } };
  t.like(openAIChatCompletionCall(finalChunk), { requestId: 'chatcmpl-2', serviceTier: 'flex', inputTokens: 50, cacheReadTokens: 0 });
  // Earlier chunks carry usage: null.
  t.deepEqual(openAIChatCompletionCall({ id: 'chatcmpl-2', model: 'gpt-4o', usage: null }),
    { provider: 'openai', model: 'gpt-4o', requestId: 'chatcmpl-2', serviceTier: 'standard' });
});

test('OpenAI Responses: input includes cached, output includes reasoning', (t) => {
  const fields = openAIResponsesUsage({
    input_tokens: 36, input_tokens_details: { cached_tokens: 12 },
    output_tokens: 87, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 123,
  });
  t.deepEqual(fields, { inputTokens: 36, outputTokens: 87, cacheReadTokens: 12, reasoningTokens: 64 });
  t.notThrows(() => valid(fields));
});

test('OpenAI Responses: a response, a streamed response.completed, and a failed response', (t) => {
  const response = { id: 'resp_1', model: 'o4-mini', status: 'completed', service_tier: 'priority',
    usage: { input_tokens: 5, output_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 4 } } };
  t.deepEqual(openAIResponseCall(response), {
    provider: 'openai', model: 'o4-mini', requestId: 'resp_1', serviceTier: 'priority',
    inputTokens: 5, outputTokens: 9, cacheReadTokens: 0, reasoningTokens: 4,
  });
  const event = { type: 'response.completed', response };
  t.deepEqual(openAIResponseCall(event.response), openAIResponseCall(response));
  t.like(openAIResponseCall({ id: 'resp_2', model: 'o3', status: 'failed', error: { message: 'server_error' }, usage: null }),
    { status: 'error', errorMessage: 'server_error' });
});

test('OpenRouter: tokens plus the cost it reports, as exact micro-dollars', (t) => {
  const fields = openRouterUsage({
    prompt_tokens: 194, completion_tokens: 2, total_tokens: 196, cost: 0.0001234,
    prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 100 },
  });
  // 0.0001234 * 1e6 is 123.39999999999999 in floating point; the adapter reads the decimal: 123.4 -> 124 (rounded up).
  t.deepEqual(fields, { inputTokens: 194, outputTokens: 2, cacheReadTokens: 0, cacheWriteTokens: 100, providedCostMicros: 124n });
  t.notThrows(() => valid(fields));
  // Bring-your-own-key: cost is the gateway fee, the provider's charge is upstream_inference_cost.
  t.is(openRouterUsage({ prompt_tokens: 1, cost: 0.00002, is_byok: true, cost_details: { upstream_inference_cost: 0.0004 } }).providedCostMicros, 420n);
  t.is(openRouterUsage({ prompt_tokens: 1, cost: 0 }).providedCostMicros, 0n, 'free is 0, not unpriced');
  t.is(openRouterUsage({ prompt_tokens: 1 }).providedCostMicros, undefined, 'no reported cost: the tokens are priced');
  t.like(openRouterCompletionCall({ id: 'gen-1', model: 'anthropic/claude-sonnet-4.6', usage: { prompt_tokens: 1, cost: 1.5 } }),
    { provider: 'openrouter', model: 'anthropic/claude-sonnet-4.6', requestId: 'gen-1', providedCostMicros: 1_500_000n });
});

test('dollarsToMicros reads decimals exactly and rounds up once', (t) => {
  t.is(dollarsToMicros(0), 0n);
  t.is(dollarsToMicros(1), 1_000_000n);
  t.is(dollarsToMicros(0.000001), 1n);
  t.is(dollarsToMicros(1.2e-7), 1n, 'a fraction of a micro-dollar rounds up to one');
  t.is(dollarsToMicros(2.5e-5), 25n);
  t.is(dollarsToMicros(1e21), 10n ** 27n, 'String(1e21) is "1e+21"');
  t.is(dollarsToMicros('0.0000010000'), 1n, 'trailing zeros past the sixth digit do not round up');
  t.is(dollarsToMicros('12.3456789'), 12_345_679n);
  t.throws(() => dollarsToMicros(-0.5), { message: /non-negative amount of dollars, got -0.5/ });
  t.throws(() => dollarsToMicros(Number.NaN), { message: /got NaN/ });
  t.throws(() => dollarsToMicros('1e-3'), { message: /got "1e-3"/ });
  t.throws(() => dollarsToMicros('.'), { message: /non-negative amount/ });
});

test('OpenAI Images: image input is part of input_tokens, and every output token is image unless the details say otherwise', (t) => {
  // images.edit with gpt-image-1: a prompt and an input image, one 1024x1024 high-quality image out.
  const edit = openAIImagesUsage({
    input_tokens: 1_033, output_tokens: 4_160, total_tokens: 5_193,
    input_tokens_details: { image_tokens: 617, text_tokens: 416 },
  });
  t.deepEqual(edit, { inputTokens: 1_033, outputTokens: 4_160, imageInputTokens: 617, imageOutputTokens: 4_160 });
  t.notThrows(() => valid(edit));
  // The streamed image_generation.completed event splits the output too.
  const streamed = openAIImagesUsage({
    input_tokens: 50, output_tokens: 4_200, total_tokens: 4_250,
    input_tokens_details: { image_tokens: 0, text_tokens: 50 },
    output_tokens_details: { image_tokens: 4_160, text_tokens: 40 },
  });
  t.deepEqual(streamed, { inputTokens: 50, outputTokens: 4_200, imageInputTokens: 0, imageOutputTokens: 4_160 });
  t.deepEqual(openAIImagesResponseCall({ usage: { input_tokens: 20, output_tokens: 272 } }, 'gpt-image-1-mini'), {
    provider: 'openai', model: 'gpt-image-1-mini', operation: 'image', inputTokens: 20, outputTokens: 272, imageOutputTokens: 272,
  });
  t.deepEqual(openAIImagesUsage(undefined), {});
});

// ---------------------------------------------------------------- Anthropic

test('Anthropic: input_tokens EXCLUDES the cache, so input = input + cache writes + cache reads', (t) => {
  const fields = anthropicUsage({ input_tokens: 21, cache_creation_input_tokens: 188_086, cache_read_input_tokens: 0, output_tokens: 393 });
  t.deepEqual(fields, { inputTokens: 188_107, outputTokens: 393, cacheReadTokens: 0, cacheWriteTokens: 188_086 });
  t.notThrows(() => valid(fields));
  // The trap: recording input_tokens as the input with the cache counts beside it fails the part-of-whole check.
  t.throws(() => valid({ inputTokens: 21, cacheWriteTokens: 188_086 }), { message: /inputTokens: must include cacheReadTokens \+ cacheWriteTokens/ });
});

test('Anthropic: the 5m/1h split gives cacheWriteTokens (all writes) and cacheWrite1hTokens (the 1-hour part)', (t) => {
  const fields = anthropicUsage({
    input_tokens: 50, cache_read_input_tokens: 1_000, cache_creation_input_tokens: 3_000, output_tokens: 20,
    cache_creation: { ephemeral_5m_input_tokens: 2_000, ephemeral_1h_input_tokens: 1_000 },
  });
  t.deepEqual(fields, { inputTokens: 4_050, outputTokens: 20, cacheReadTokens: 1_000, cacheWriteTokens: 3_000, cacheWrite1hTokens: 1_000 });
  t.notThrows(() => valid(fields));
  // Only the split given (no total): the total is the sum of both parts, not the 1h part alone.
  t.like(anthropicUsage({ input_tokens: 1, cache_creation: { ephemeral_5m_input_tokens: 5, ephemeral_1h_input_tokens: 7 } }),
    { inputTokens: 13, cacheWriteTokens: 12, cacheWrite1hTokens: 7 });
  // No cache fields at all (older responses, Bedrock): input is input_tokens.
  t.deepEqual(anthropicUsage({ input_tokens: 9, output_tokens: 3 }), { inputTokens: 9, outputTokens: 3 });
});

test('Anthropic message: id, model, tier, and web searches kept in metadata', (t) => {
  t.deepEqual(anthropicMessageCall({
    id: 'msg_01', model: 'claude-sonnet-4-6',
    usage: { input_tokens: 10, output_tokens: 2, service_tier: 'priority', server_tool_use: { web_search_requests: 3 } },
  }), {
    provider: 'anthropic', model: 'claude-sonnet-4-6', requestId: 'msg_01', serviceTier: 'priority',
    metadata: { web_search_requests: 3 }, inputTokens: 10, outputTokens: 2,
  });
});

test('Anthropic message in fast mode: the fast service tier', (t) => {
  t.like(anthropicMessageCall({
    id: 'msg_fast', model: 'claude-opus-4-6', usage: { input_tokens: 10, output_tokens: 2, service_tier: 'standard', speed: 'fast' },
  }), { serviceTier: 'fast' });
  t.like(anthropicMessageCall({
    id: 'msg_std', model: 'claude-opus-4-6', usage: { input_tokens: 10, output_tokens: 2, service_tier: 'standard', speed: 'standard' },
  }), { serviceTier: 'standard' });
});

test('Anthropic stream: message_delta counts are cumulative, so the last one wins (no summing)', (t) => {
  const events = [
    { type: 'message_start', message: { id: 'msg_02', model: 'claude-haiku-4-5', usage: { input_tokens: 472, cache_read_input_tokens: 2_000, cache_creation_input_tokens: 0, output_tokens: 2 } } },
    { type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi' } },
    { type: 'message_delta', usage: { output_tokens: 40 } },
    { type: 'message_delta', usage: { output_tokens: 89, input_tokens: null } },
    { type: 'message_stop' },
  ];
  const fields = anthropicStreamCall(events);
  t.like(fields, { requestId: 'msg_02', model: 'claude-haiku-4-5', inputTokens: 2_472, cacheReadTokens: 2_000, outputTokens: 89 });
  // Newer API versions repeat the input and cache counts in message_delta: still counted once.
  t.like(anthropicStreamCall([events[0]!, { type: 'message_delta', usage: { input_tokens: 472, cache_read_input_tokens: 2_000, output_tokens: 89 } }]),
    { inputTokens: 2_472, outputTokens: 89 });
});

// ---------------------------------------------------------------- Gemini

test('Gemini: thoughts are billed as output but are NOT in candidatesTokenCount, so output = candidates + thoughts', (t) => {
  const fields = geminiUsage({ promptTokenCount: 11, candidatesTokenCount: 90, thoughtsTokenCount: 1_024, totalTokenCount: 1_125 });
  t.deepEqual(fields, { inputTokens: 11, outputTokens: 1_114, reasoningTokens: 1_024 });
  t.is(Number(fields.inputTokens) + Number(fields.outputTokens), 1_125, 'adds up to totalTokenCount');
  t.notThrows(() => valid(fields));
  // The trap: candidatesTokenCount as output with the thoughts as its reasoning part fails the check.
  t.throws(() => valid({ outputTokens: 90, reasoningTokens: 1_024 }), { message: /outputTokens: must include reasoningTokens/ });
});

test('Gemini: cached content is part of the prompt; tool-use prompt tokens and audio are input too', (t) => {
  const fields = geminiUsage({
    promptTokenCount: 10_000, cachedContentTokenCount: 8_000, candidatesTokenCount: 50, toolUsePromptTokenCount: 300, totalTokenCount: 10_350,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 9_000 }, { modality: 'AUDIO', tokenCount: 1_000 }],
    candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: 50 }],
  });
  t.deepEqual(fields, { inputTokens: 10_300, outputTokens: 50, cacheReadTokens: 8_000, audioInputTokens: 1_000 });
  t.notThrows(() => valid(fields));
  t.like(geminiResponseCall({ responseId: 'r1', modelVersion: 'gemini-2.5-flash-001', usageMetadata: { promptTokenCount: 3 } }, 'gemini-2.5-flash'),
    { provider: 'google', model: 'gemini-2.5-flash', requestId: 'r1', inputTokens: 3 });
  t.like(geminiResponseCall({ modelVersion: 'gemini-2.5-flash' }), { model: 'gemini-2.5-flash' });
});

test('Gemini: cached audio is in the cache reads and in the audio input, and cacheTokensDetails says how much', (t) => {
  const fields = geminiUsage({
    promptTokenCount: 10_000, cachedContentTokenCount: 8_000, candidatesTokenCount: 50, totalTokenCount: 10_050,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 7_000 }, { modality: 'AUDIO', tokenCount: 3_000 }],
    cacheTokensDetails: [{ modality: 'TEXT', tokenCount: 6_000 }, { modality: 'AUDIO', tokenCount: 2_000 }],
  });
  t.deepEqual(fields, { inputTokens: 10_000, outputTokens: 50, cacheReadTokens: 8_000, audioInputTokens: 3_000, cacheReadAudioTokens: 2_000 });
  t.notThrows(() => valid(fields));
});

test('Gemini: image and video input are the uncached IMAGE and VIDEO prompt tokens; image output the IMAGE candidates', (t) => {
  const fields = geminiUsage({
    promptTokenCount: 9_000, cachedContentTokenCount: 3_000, candidatesTokenCount: 1_300, thoughtsTokenCount: 200,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 1_000 }, { modality: 'IMAGE', tokenCount: 2_000 }, { modality: 'VIDEO', tokenCount: 6_000 }],
    cacheTokensDetails: [{ modality: 'IMAGE', tokenCount: 500 }, { modality: 'VIDEO', tokenCount: 2_500 }],
    candidatesTokensDetails: [{ modality: 'TEXT', tokenCount: 10 }, { modality: 'IMAGE', tokenCount: 1_290 }],
  });
  // Cached image and video are cache reads only, billed as Gemini bills them, at the cache read rate.
  t.deepEqual(fields, {
    inputTokens: 9_000, outputTokens: 1_500, cacheReadTokens: 3_000, reasoningTokens: 200,
    imageInputTokens: 1_500, videoInputTokens: 3_500, imageOutputTokens: 1_290,
  });
  t.notThrows(() => valid(fields));
  // Text only: no image or video counts at all, not zeros.
  t.deepEqual(geminiUsage({ promptTokenCount: 10, candidatesTokenCount: 5, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 10 }] }),
    { inputTokens: 10, outputTokens: 5 });
});

// ---------------------------------------------------------------- Vercel AI SDK

test('AI SDK 6: totals include their breakdown', (t) => {
  const fields = aiSdkUsage({
    inputTokens: 1_200, inputTokenDetails: { noCacheTokens: 200, cacheReadTokens: 900, cacheWriteTokens: 100 },
    outputTokens: 300, outputTokenDetails: { textTokens: 100, reasoningTokens: 200 }, totalTokens: 1_500,
  });
  t.deepEqual(fields, { inputTokens: 1_200, outputTokens: 300, cacheReadTokens: 900, cacheWriteTokens: 100, reasoningTokens: 200 });
  t.notThrows(() => valid(fields));
});

test('AI SDK 5: totalTokens tells whether reasoning and cache reads were inside the totals', (t) => {
  // @ai-sdk/openai: both inside.
  t.deepEqual(aiSdkUsage({ inputTokens: 100, outputTokens: 50, totalTokens: 150, reasoningTokens: 30, cachedInputTokens: 40 }),
    { inputTokens: 100, outputTokens: 50, cacheReadTokens: 40, reasoningTokens: 30 });
  // @ai-sdk/google: reasoning outside outputTokens (candidates).
  t.like(aiSdkUsage({ inputTokens: 100, outputTokens: 50, totalTokens: 180, reasoningTokens: 30 }), { outputTokens: 80, reasoningTokens: 30 });
  // @ai-sdk/anthropic: cache reads outside inputTokens.
  t.like(aiSdkUsage({ inputTokens: 10, outputTokens: 5, totalTokens: 1_015, cachedInputTokens: 1_000 }), { inputTokens: 1_010, cacheReadTokens: 1_000 });
  // No total: a part larger than its whole can only be outside it.
  t.like(aiSdkUsage({ inputTokens: 10, outputTokens: 5, cachedInputTokens: 1_000, reasoningTokens: 20 }), { inputTokens: 1_010, outputTokens: 25 });
  for (const usage of [
    { inputTokens: 100, outputTokens: 50, totalTokens: 180, reasoningTokens: 30 },
    { inputTokens: 10, outputTokens: 5, totalTokens: 1_015, cachedInputTokens: 1_000 },
  ]) t.notThrows(() => valid(aiSdkUsage(usage)));
});

test('AI SDK 4: promptTokens and completionTokens', (t) => {
  t.deepEqual(aiSdkUsage({ promptTokens: 7, completionTokens: 3, totalTokens: 10 }), { inputTokens: 7, outputTokens: 3 });
  t.deepEqual(aiSdkUsage(undefined), {});
});

test('counts that are not counts (negative, fractional, strings) are left out rather than recorded wrong', (t) => {
  t.deepEqual(openAIChatUsage({ prompt_tokens: -1, completion_tokens: 2.5, total_tokens: 3 }), {});
  t.deepEqual(anthropicUsage({ input_tokens: '10' as never, output_tokens: 4 }), { outputTokens: 4 });
});
