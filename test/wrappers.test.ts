import Anthropic from '@anthropic-ai/sdk';
import test from 'ava';
import OpenAI from 'openai';
import type { CallInput } from '../src/recorder/call.js';
import { createRecorder } from '../src/recorder/index.js';
import { instrumentAnthropic, instrumentOpenAI } from '../src/wrappers/index.js';
import { useTestDatabase } from './support/database.js';
import { FIRST_TOKEN_DELAY_MS, startFakeProvider, type FakeProvider } from './support/fake-provider.js';

const db = useTestDatabase(test);
let provider: FakeProvider;
test.before(async () => {
  provider = await startFakeProvider();
});
test.after.always(async () => {
  await provider?.close();
});

function sink() {
  const calls: CallInput[] = [];
  return { calls, record: (call: CallInput) => void calls.push(call) };
}

function openai(recorder: ReturnType<typeof sink>, context?: Partial<CallInput>): OpenAI {
  // The return type is the client's own: this assignment is the type check.
  const client: OpenAI = instrumentOpenAI(new OpenAI({ apiKey: 'test', baseURL: `${provider.baseURL}/v1`, maxRetries: 0 }), { recorder, context });
  return client;
}

function anthropic(recorder: ReturnType<typeof sink>): Anthropic {
  const client: Anthropic = instrumentAnthropic(new Anthropic({ apiKey: 'test', baseURL: provider.baseURL, maxRetries: 0 }), { recorder });
  return client;
}

/** The same request through a client without the wrapper, to compare what the caller gets. */
const plainOpenAI = () => new OpenAI({ apiKey: 'test', baseURL: `${provider.baseURL}/v1`, maxRetries: 0 });

test('OpenAI chat: the caller gets exactly what an unwrapped client returns; the call is recorded with usage and latency', async (t) => {
  const recorder = sink();
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };
  const completion = await openai(recorder, { tenantId: 'acme', feature: 'chat' }).chat.completions.create(params);
  t.deepEqual(completion, await plainOpenAI().chat.completions.create(params));
  t.is(completion._request_id, 'req_fake');
  t.is(recorder.calls.length, 1);
  t.like(recorder.calls[0], {
    provider: 'openai', model: 'gpt-4o-mini', operation: 'chat', status: 'success', streamed: false, requestId: 'chatcmpl-fake-1',
    tenantId: 'acme', feature: 'chat', inputTokens: 2_006, outputTokens: 300, cacheReadTokens: 1_920, reasoningTokens: 192,
  });
  t.true(typeof recorder.calls[0]!.totalMs === 'number' && recorder.calls[0]!.totalMs >= 0);
  t.true(recorder.calls[0]!.createdAt instanceof Date);
});

test('OpenAI chat: withResponse() still works and is recorded; asResponse() leaves the body to the caller', async (t) => {
  const recorder = sink();
  const client = openai(recorder);
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };
  const { data, response } = await client.chat.completions.create(params).withResponse();
  t.is(data.id, 'chatcmpl-fake-1');
  t.is(response.status, 200);
  const raw = await client.chat.completions.create(params).asResponse();
  t.is((await raw.json() as { id: string }).id, 'chatcmpl-fake-1', 'the raw body is still unread');
  t.is(recorder.calls.length, 1, 'the call read only through asResponse() is not recorded (its body is the caller\'s)');
});

test('OpenAI chat stream with include_usage: same chunks, time to first token, usage from the last chunk', async (t) => {
  const recorder = sink();
  const params = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'Hi' }], stream: true as const, stream_options: { include_usage: true } };
  const chunks = [];
  for await (const chunk of await openai(recorder).chat.completions.create(params)) chunks.push(chunk);
  const plain = [];
  for await (const chunk of await plainOpenAI().chat.completions.create(params)) plain.push(chunk);
  t.deepEqual(chunks, plain);
  const [call] = recorder.calls;
  t.like(call, { streamed: true, status: 'success', requestId: 'chatcmpl-fake-2', model: 'gpt-4o', inputTokens: 2_006, outputTokens: 300 });
  t.true(call!.ttftMs! >= FIRST_TOKEN_DELAY_MS - 5, `ttft ${call!.ttftMs} ms covers the wait for the first content`);
  t.true(call!.totalMs! >= call!.ttftMs!);
});

test('OpenAI chat stream without include_usage is recorded and marked as missing its usage', async (t) => {
  const recorder = sink();
  const stream = await openai(recorder).chat.completions.create({ model: 'gpt-4o', messages: [], stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  t.is(text, 'Hello.');
  t.like(recorder.calls[0], { streamed: true, inputTokens: undefined, metadata: { usage_missing: 'stream without stream_options.include_usage' } });
});

test('OpenAI chat stream: stopping early records a cancelled call; the helper stream() is recorded too', async (t) => {
  const recorder = sink();
  const client = openai(recorder);
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [], stream: true, stream_options: { include_usage: true } });
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) break;
  }
  t.like(recorder.calls[0], { status: 'cancelled', streamed: true });
  const helper = client.chat.completions.stream({ model: 'gpt-4o', messages: [], stream_options: { include_usage: true } });
  const final = await helper.finalChatCompletion();
  t.is(final.choices[0]?.message.content, 'Hello.');
  t.like(recorder.calls[1], { status: 'success', streamed: true, inputTokens: 2_006 });
  // parse() derives its own promise from create()'s: recorded once, from the derived one.
  const parsed = await client.chat.completions.parse({ model: 'gpt-4o-mini', messages: [] });
  t.is(parsed.choices[0]?.message.content, 'Hello there.');
  t.like(recorder.calls[2], { status: 'success', streamed: false, requestId: 'chatcmpl-fake-1' });
  t.is(recorder.calls.length, 3);
});

test('OpenAI: a failed call throws the SDK\'s own error to the caller and is recorded as an error', async (t) => {
  const recorder = sink();
  const error = await t.throwsAsync(openai(recorder).chat.completions.create({ model: 'fail', messages: [] }));
  t.true(error instanceof OpenAI.BadRequestError);
  t.like(recorder.calls[0], { status: 'error', model: 'fail', provider: 'openai' });
  t.regex(recorder.calls[0]!.errorMessage ?? '', /does not exist/);
});

test('OpenAI Responses API, plain and streamed, and embeddings', async (t) => {
  const recorder = sink();
  const client = openai(recorder);
  const response = await client.responses.create({ model: 'o4-mini', input: 'Hi' });
  t.is(response.output_text, 'Hi.', 'SDK helpers on the result still work');
  const stream = await client.responses.create({ model: 'o4-mini', input: 'Hi', stream: true });
  const types = [];
  for await (const event of stream) types.push(event.type);
  t.deepEqual(types, ['response.created', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta', 'response.completed']);
  await client.embeddings.create({ model: 'text-embedding-3-small', input: 'Hi' });
  const helper = await client.responses.stream({ model: 'o4-mini', input: 'Hi' }).finalResponse();
  t.is(helper.id, 'resp_fake_1');
  const [plain, streamed, embedding, helperCall] = recorder.calls;
  t.like(helperCall, { streamed: true, status: 'success', inputTokens: 36 });
  t.is(recorder.calls.length, 4);
  const usage = { inputTokens: 36, outputTokens: 87, cacheReadTokens: 12, reasoningTokens: 64 };
  t.like(plain, { requestId: 'resp_fake_1', streamed: false, ...usage });
  t.like(streamed, { requestId: 'resp_fake_1', streamed: true, status: 'success', ...usage });
  t.true(streamed!.ttftMs! >= FIRST_TOKEN_DELAY_MS - 5);
  t.like(embedding, { operation: 'embedding', model: 'text-embedding-3-small', inputTokens: 8, outputTokens: undefined });
});

test('Anthropic: messages.create records cache reads, writes and the 1-hour part; the message is unchanged', async (t) => {
  const recorder = sink();
  const params = { model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Hi' }] };
  const message = await anthropic(recorder).messages.create(params);
  const plain = await new Anthropic({ apiKey: 'test', baseURL: provider.baseURL, maxRetries: 0 }).messages.create(params);
  t.deepEqual(message, plain);
  t.like(recorder.calls[0], {
    provider: 'anthropic', model: 'claude-sonnet-4-6', requestId: 'msg_fake_1', status: 'success', streamed: false,
    inputTokens: 4_050, cacheReadTokens: 1_000, cacheWriteTokens: 3_000, cacheWrite1hTokens: 1_000, outputTokens: 20,
  });
});

test('Anthropic: a stream (create with stream: true, and the messages.stream() helper) records ttft and the final usage once', async (t) => {
  const recorder = sink();
  const client = anthropic(recorder);
  const stream = await client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [], stream: true });
  let text = '';
  for await (const event of stream) if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
  t.is(text, 'Hello.');
  const final = await client.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [] }).finalMessage();
  t.is(final.usage.output_tokens, 20);
  const streamCalls = recorder.calls.splice(0);
  // parse() is built on create(): recorded once, the parsed message unchanged.
  const parsed = await client.messages.parse({ model: 'claude-haiku-4-5', max_tokens: 100, messages: [] });
  t.is(parsed.id, 'msg_fake_1');
  t.like(recorder.calls, [{ streamed: false, requestId: 'msg_fake_1' }]);
  for (const call of streamCalls) {
    t.like(call, { streamed: true, status: 'success', requestId: 'msg_fake_2', inputTokens: 4_050, outputTokens: 20, cacheWrite1hTokens: 1_000 });
    t.true(call.ttftMs! >= FIRST_TOKEN_DELAY_MS - 5);
  }
  t.is(streamCalls.length, 2);
});

test('Anthropic: an error reaches the caller as the SDK error and is recorded', async (t) => {
  const recorder = sink();
  const error = await t.throwsAsync(anthropic(recorder).messages.create({ model: 'fail', max_tokens: 1, messages: [] }));
  t.true(error instanceof Anthropic.BadRequestError);
  t.like(recorder.calls[0], { status: 'error', provider: 'anthropic', model: 'fail' });
  t.regex(recorder.calls[0]!.errorMessage ?? '', /fail is not a model/);
});

test('a recorder that throws never breaks the client', async (t) => {
  const client = instrumentOpenAI(plainOpenAI(), { recorder: { record: () => { throw new Error('broken'); } } });
  const completion = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
  t.is(completion.id, 'chatcmpl-fake-1');
});

test('wrapping twice records once; end to end through the recorder, the call is priced in the database', async (t) => {
  const recorder = createRecorder({ pool: db.pool, flushOnExit: false });
  const client = instrumentAnthropic(instrumentAnthropic(new Anthropic({ apiKey: 'test', baseURL: provider.baseURL, maxRetries: 0 }), { recorder }), { recorder });
  await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [] });
  await recorder.flush();
  const [wrapped, ...others] = await db.query<{ cost_micros: string | null; unpriced_reason: string | null }>(
    "SELECT cost_micros, unpriced_reason FROM ai_cost.calls WHERE request_id = 'msg_fake_1'");
  t.is(others.length, 0, 'recorded once');
  // The same call inserted by hand with the token counts Anthropic reported, mapped by hand: the same cost.
  const [byHand] = await db.query<{ cost_micros: string | null; unpriced_reason: string | null }>(
    `INSERT INTO ai_cost.calls (provider, model, created_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens)
     SELECT 'anthropic', 'claude-sonnet-4-6', created_at, 50 + 1000 + 3000, 20, 1000, 3000, 1000 FROM ai_cost.calls WHERE request_id = 'msg_fake_1'
     RETURNING cost_micros, unpriced_reason`);
  t.deepEqual(wrapped, byHand);
  await recorder.close();
});
