import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A local stand-in for the OpenAI and Anthropic HTTP APIs on 127.0.0.1, so
 * the official SDKs can be pointed at it with baseURL. It answers with the
 * documented shapes (JSON or server-sent events) and fixed usage numbers; a
 * model named "fail" gets a 400 error. Streams wait FIRST_TOKEN_DELAY_MS
 * before the first content, so time to first token is measurable.
 */
export const FIRST_TOKEN_DELAY_MS = 40;

export interface FakeProvider {
  baseURL: string;
  /** Request bodies received, in order. */
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startFakeProvider(): Promise<FakeProvider> {
  const requests: FakeProvider['requests'] = [];
  const server = createServer((request, response) => {
    void handle(request, response, requests).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function handle(request: IncomingMessage, response: ServerResponse, requests: FakeProvider['requests']): Promise<void> {
  let text = '';
  for await (const chunk of request) text += chunk;
  const body = JSON.parse(text || '{}') as Record<string, unknown>;
  const path = new URL(request.url ?? '/', 'http://x').pathname;
  requests.push({ path, body });
  if (body.model === 'fail') {
    const error = path === '/v1/messages'
      ? { type: 'error', error: { type: 'invalid_request_error', message: 'model: fail is not a model' } }
      : { error: { message: 'The model `fail` does not exist', type: 'invalid_request_error', code: 'model_not_found' } };
    return json(response, 400, error);
  }
  switch (path) {
    case '/v1/chat/completions': return body.stream ? chatStream(response, body) : json(response, 200, chatCompletion(body));
    case '/v1/responses': return body.stream ? responsesStream(response, body) : json(response, 200, responseObject(body));
    case '/v1/embeddings': return json(response, 200, {
      object: 'list', model: body.model, data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
      usage: { prompt_tokens: 8, total_tokens: 8 },
    });
    case '/v1/messages': return body.stream ? messageStream(response, body) : json(response, 200, message(body));
    default: return json(response, 404, { error: { message: `no route ${path}` } });
  }
}

function json(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_fake' }).end(JSON.stringify(value));
}

const chatUsage = {
  prompt_tokens: 2_006, completion_tokens: 300, total_tokens: 2_306,
  prompt_tokens_details: { cached_tokens: 1_920, audio_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 192, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
};

function chatCompletion(body: Record<string, unknown>) {
  return {
    id: 'chatcmpl-fake-1', object: 'chat.completion', created: 1_700_000_000, model: body.model, service_tier: 'default',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there.', refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: chatUsage,
  };
}

async function sse(response: ServerResponse, events: { event?: string; data: unknown }[], firstContentIndex: number) {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [index, { event, data }] of events.entries()) {
    if (index === firstContentIndex) await sleep(FIRST_TOKEN_DELAY_MS);
    response.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }
  response.end();
}

function chatStream(response: ServerResponse, body: Record<string, unknown>) {
  const base = { id: 'chatcmpl-fake-2', object: 'chat.completion.chunk', created: 1_700_000_000, model: body.model, service_tier: 'default' };
  const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const chunk = (delta: object, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }], ...(includeUsage ? { usage: null } : {}) });
  const events = [
    { data: chunk({ role: 'assistant', content: '' }) },
    { data: chunk({ content: 'Hel' }) },
    { data: chunk({ content: 'lo.' }) },
    { data: chunk({}, 'stop') },
    ...(includeUsage ? [{ data: { ...base, choices: [], usage: chatUsage } }] : []),
    { data: '[DONE]' },
  ];
  return sse(response, events, 1);
}

const responsesUsage = {
  input_tokens: 36, input_tokens_details: { cached_tokens: 12 }, output_tokens: 87, output_tokens_details: { reasoning_tokens: 64 }, total_tokens: 123,
};

function responseObject(body: Record<string, unknown>, status = 'completed') {
  return {
    id: 'resp_fake_1', object: 'response', created_at: 1_700_000_000, status, model: body.model, service_tier: 'default', error: null,
    output: status === 'completed'
      ? [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hi.', annotations: [] }] }]
      : [],
    usage: status === 'completed' ? responsesUsage : null,
  };
}

function responsesStream(response: ServerResponse, body: Record<string, unknown>) {
  return sse(response, [
    { event: 'response.created', data: { type: 'response.created', sequence_number: 0, response: responseObject(body, 'in_progress') } },
    { event: 'response.output_item.added', data: { type: 'response.output_item.added', sequence_number: 1, output_index: 0,
      item: { type: 'message', id: 'msg_1', status: 'in_progress', role: 'assistant', content: [] } } },
    { event: 'response.content_part.added', data: { type: 'response.content_part.added', sequence_number: 2, item_id: 'msg_1', output_index: 0, content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] } } },
    { event: 'response.output_text.delta', data: { type: 'response.output_text.delta', sequence_number: 3, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hi' } },
    { event: 'response.output_text.delta', data: { type: 'response.output_text.delta', sequence_number: 4, item_id: 'msg_1', output_index: 0, content_index: 0, delta: '.' } },
    { event: 'response.completed', data: { type: 'response.completed', sequence_number: 5, response: responseObject(body) } },
  ], 3);
}

const anthropicUsage = {
  input_tokens: 50, cache_creation_input_tokens: 3_000, cache_read_input_tokens: 1_000, output_tokens: 20,
  cache_creation: { ephemeral_5m_input_tokens: 2_000, ephemeral_1h_input_tokens: 1_000 }, service_tier: 'standard',
};

function message(body: Record<string, unknown>) {
  return {
    id: 'msg_fake_1', type: 'message', role: 'assistant', model: body.model,
    content: [{ type: 'text', text: 'Hello.' }], stop_reason: 'end_turn', stop_sequence: null, usage: anthropicUsage,
  };
}

function messageStream(response: ServerResponse, body: Record<string, unknown>) {
  const start = { ...message(body), id: 'msg_fake_2', content: [], stop_reason: null, usage: { ...anthropicUsage, output_tokens: 1 } };
  return sse(response, [
    { event: 'message_start', data: { type: 'message_start', message: start } },
    { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
    { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } } },
    { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'lo.' } } },
    { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
    { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 20 } } },
    { event: 'message_stop', data: { type: 'message_stop' } },
  ], 2);
}
