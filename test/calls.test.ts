import test from 'ava';
import { InvalidCallError, parseCall, recordCall } from '../src/recorder/index.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                    VALUES ('test', 'mini', '2024-01-01', 0.15, 0.60)`);
  },
});

/** The error an INSERT with these columns raises, as any client sees it. */
async function insertError(columns: Record<string, unknown>): Promise<string> {
  const row: Record<string, unknown> = { provider: 'test', model: 'mini', ...columns };
  const names = Object.keys(row);
  const values = Object.values(row);
  const placeholders = values.map((_, i) => `$${i + 1}`);
  try {
    await db.query(`INSERT INTO ai_cost.calls (${names.join(', ')}) VALUES (${placeholders.join(', ')})`, values);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`insert with ${JSON.stringify(columns)} was accepted`);
}

const checks: Array<[string, Record<string, unknown>, RegExp]> = [
  ['an Anthropic-style uncached count with cache reads on top',
    { input_tokens: 100, cache_read_tokens: 900 }, /input_tokens must include cache_read and cache_write tokens/],
  ['cache writes beyond input', { input_tokens: 10, cache_write_tokens: 11 }, /input_tokens must include cache_read and cache_write/],
  ['reasoning beyond output', { output_tokens: 10, reasoning_tokens: 11 }, /output_tokens must include reasoning_tokens/],
  ['negative input', { input_tokens: -1 }, /token counts must not be negative/],
  ['negative output', { output_tokens: -5 }, /token counts must not be negative/],
  ['negative reasoning', { output_tokens: 5, reasoning_tokens: -1 }, /token counts must not be negative/],
  ['1h cache writes beyond all cache writes', { input_tokens: 100, cache_write_tokens: 5, cache_write_1h_tokens: 6 },
    /cache_write_tokens must include cache_write_1h_tokens/],
  ['audio input beyond input', { input_tokens: 5, audio_input_tokens: 6 }, /input_tokens must include audio_input_tokens/],
  ['audio output beyond output', { output_tokens: 5, audio_output_tokens: 6 }, /output_tokens must include audio_output_tokens/],
  ['cached audio beyond the cache reads', { input_tokens: 100, cache_read_tokens: 5, audio_input_tokens: 50, cache_read_audio_tokens: 6 },
    /cache_read_tokens must include cache_read_audio_tokens/],
  ['cached audio beyond the audio input', { input_tokens: 100, cache_read_tokens: 50, audio_input_tokens: 5, cache_read_audio_tokens: 6 },
    /audio_input_tokens must include cache_read_audio_tokens/],
  ['negative cached audio', { input_tokens: 100, cache_read_tokens: 50, audio_input_tokens: 50, cache_read_audio_tokens: -1 },
    /cache_read_audio_tokens must not be negative/],
  ['image input beyond input', { input_tokens: 5, image_input_tokens: 6 }, /input_tokens must include image_input_tokens/],
  ['video input beyond input', { input_tokens: 5, video_input_tokens: 6 }, /input_tokens must include video_input_tokens/],
  ['image output beyond output', { output_tokens: 5, image_output_tokens: 6 }, /output_tokens must include image_output_tokens/],
  ['negative image output', { output_tokens: 5, image_output_tokens: -1 }, /image and video token counts must not be negative/],
  ['units without a unit', { units: 3 }, /units must not be negative and need a unit/],
  ['negative units', { units: -1, unit: 'image' }, /units must not be negative and need a unit/],
  ['negative latency', { total_ms: -1 }, /ttft_ms and total_ms must not be negative/],
  ['negative provided cost', { provided_cost_micros: -1 }, /provided_cost_micros must not be negative/],
  ['an unknown status', { status: 'ok' }, /status must be success, error or cancelled/],
  ['an unknown operation', { operation: 'chatting' }, /operation must be a known ai_cost operation/],
  ['a service tier that is not one word', { service_tier: 'Fast Mode' }, /service_tier must be 1-100 lowercase letters, digits, _ or -/],
  ['metadata that is not an object', { metadata: '[1,2]' }, /metadata must be a JSON object/],
  ['oversized metadata', { metadata: JSON.stringify({ blob: 'x'.repeat(70_000) }) }, /metadata must be at most 64 kB/],
  ['an oversized label', { tenant_id: 't'.repeat(1_001) }, /labels and request_id must be at most 1000 characters/],
  ['an oversized model id', { model: 'm'.repeat(501) }, /provider must be at most 200 characters, model at most 500/],
  ['an oversized error message', { error_message: 'e'.repeat(10_001) }, /error_message must be at most 10000 characters/],
  ['an absurd token count', { input_tokens: '10000000001' }, /token counts must be at most 1e10/],
  ['NaN units', { units: 'NaN', unit: 'image' }, /units must be finite/],
  ['infinite units', { units: 'Infinity', unit: 'image' }, /units must be finite/],
  ['a call at the end of time', { created_at: 'infinity' }, /created_at must be a finite time/],
  ['an empty model', { model: '' }, /provider and model must not be empty/],
];

for (const [what, columns, message] of checks) {
  test(`the database refuses ${what}, saying why`, async (t) => {
    t.regex(await insertError(columns), message);
  });
}

test('request_id is an idempotency key: a retried insert never counts twice', async (t) => {
  const insert = `INSERT INTO ai_cost.calls (provider, model, request_id, input_tokens) VALUES ('test', 'mini', 'req-1', 1000)
                  ON CONFLICT (request_id) DO NOTHING`;
  await db.query(insert);
  await db.query(insert);
  const [row] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.calls WHERE request_id = 'req-1'`);
  t.is(row!.n, '1');
  const duplicate = await t.throwsAsync(db.query(
    `INSERT INTO ai_cost.calls (provider, model, request_id) VALUES ('test', 'mini', 'req-1')`));
  t.regex(duplicate!.message, /duplicate key/);
});

test('calls without a request_id are never treated as duplicates', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (provider, model, feature) VALUES ('test', 'mini', 'no-key'), ('test', 'mini', 'no-key')`);
  const [row] = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ai_cost.calls WHERE feature = 'no-key'`);
  t.is(row!.n, '2');
});

test('unpriced calls say why', async (t) => {
  const [unknown] = await db.query<{ unpriced_reason: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ('test', 'unknown', 5) RETURNING unpriced_reason`);
  t.regex(unknown!.unpriced_reason, /no price for model test\/unknown/);
  const [tier] = await db.query<{ cost_micros: string | null; unpriced_reason: string }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, service_tier) VALUES ('test', 'mini', 5, 'priority')
     RETURNING cost_micros, unpriced_reason`);
  t.is(tier!.cost_micros, null);
  t.regex(tier!.unpriced_reason, /no priority-tier price for model test\/mini/);
});

test('a cost the provider reported is kept as is', async (t) => {
  const [row] = await db.query<{ cost_micros: string; price_id: string | null }>(
    `INSERT INTO ai_cost.calls (provider, model, input_tokens, provided_cost_micros)
     VALUES ('openrouter', 'some/model', 1000, 4321) RETURNING cost_micros, price_id`);
  t.is(row!.cost_micros, '4321');
  t.is(row!.price_id, null);
});

test('recordCall inserts a validated call and returns its exact cost as a bigint', async (t) => {
  const recorded = await recordCall(db.pool, { provider: 'test', model: 'mini', inputTokens: 7, outputTokens: 3, feature: 'tests' });
  t.is(recorded.costMicros, 3n);
  t.false(recorded.duplicate);
  t.is(typeof recorded.id, 'bigint');
});

test('recordCall with a repeated requestId writes nothing and returns the first row', async (t) => {
  const first = await recordCall(db.pool, { provider: 'test', model: 'mini', inputTokens: 1000, requestId: 'rc-1' });
  const again = await recordCall(db.pool, { provider: 'test', model: 'mini', inputTokens: 999_999, requestId: 'rc-1' });
  t.true(again.duplicate);
  t.is(again.id, first.id);
  t.is(again.costMicros, 150n);
});

test('recordCall keeps unpriced apart from free', async (t) => {
  t.is((await recordCall(db.pool, { provider: 'test', model: 'nope', inputTokens: 10 })).costMicros, null);
  t.is((await recordCall(db.pool, { provider: 'test', model: 'mini', inputTokens: 0 })).costMicros, 0n);
});

test('a bad call is refused before the database with every bad field named', (t) => {
  const error = t.throws(() => parseCall({ provider: 'openai', model: '', inputTokens: -3, status: 'ok', extra: 1 }), {
    instanceOf: InvalidCallError,
  });
  t.regex(error!.message, /model:/);
  t.regex(error!.message, /inputTokens:/);
  t.regex(error!.message, /status:/);
  t.regex(error!.message, /extra/);
});

test('a refused count is named once, without the sums it cannot take part in', (t) => {
  for (const inputTokens of [-3, 1.5, '12']) {
    const error = t.throws(() => parseCall({ provider: 'openai', model: 'gpt-4o-mini', inputTokens, cacheReadTokens: 1, audioInputTokens: 1 }));
    t.regex(error!.message, /^invalid call: inputTokens: [^;]+$/, `inputTokens ${JSON.stringify(inputTokens)}`);
  }
  const error = t.throws(() => parseCall({ provider: 'openai', model: 'gpt-4o-mini', inputTokens: 10, cacheReadTokens: -1, outputTokens: 5, reasoningTokens: 6 }));
  t.regex(error!.message, /cacheReadTokens: /);
  t.regex(error!.message, /outputTokens: must include reasoningTokens \(6\)/);
  t.notRegex(error!.message, /must include cacheReadTokens/);
});

test('an uncached-only input count is refused with the OpenTelemetry rule spelled out', (t) => {
  const error = t.throws(() => parseCall({ provider: 'anthropic', model: 'claude-haiku-4-5', inputTokens: 10, cacheReadTokens: 900 }));
  t.regex(error!.message, /inputTokens: must include cacheReadTokens \+ cacheWriteTokens \(900\)/);
});

test('cached audio must be counted in both the cache reads and the audio input, before the database too', (t) => {
  const call = { provider: 'openai', model: 'gpt-realtime', inputTokens: 100, cacheReadTokens: 50, audioInputTokens: 40 };
  t.is(parseCall({ ...call, cacheReadAudioTokens: 40 }).cacheReadAudioTokens, 40n);
  t.throws(() => parseCall({ ...call, cacheReadAudioTokens: 45 }),
    { message: /audioInputTokens: must include cacheReadAudioTokens \(45\): audioInputTokens counts all audio input, cached or not/ });
  t.throws(() => parseCall({ ...call, cacheReadTokens: 30, cacheReadAudioTokens: 35 }),
    { message: /cacheReadTokens: must include cacheReadAudioTokens \(35\): cacheReadTokens counts all cache reads, text and audio/ });
});

test('image and video are parts of the input and output, before the database too', (t) => {
  const call = { provider: 'openai', model: 'gpt-image-1', inputTokens: 100, outputTokens: 50 };
  t.like(parseCall({ ...call, imageInputTokens: 60, videoInputTokens: 40, imageOutputTokens: 50 }),
    { imageInputTokens: 60n, videoInputTokens: 40n, imageOutputTokens: 50n });
  t.throws(() => parseCall({ ...call, imageInputTokens: 101 }), { message: /inputTokens: must include imageInputTokens \(101\)/ });
  t.throws(() => parseCall({ ...call, videoInputTokens: 101 }), { message: /inputTokens: must include videoInputTokens \(101\)/ });
  t.throws(() => parseCall({ ...call, imageOutputTokens: 51 }), { message: /outputTokens: must include imageOutputTokens \(51\)/ });
});

test('token counts are whole numbers up to ten billion, as numbers or bigints', (t) => {
  t.is(parseCall({ provider: 'p', model: 'm', inputTokens: 1e10 }).inputTokens, 10_000_000_000n);
  t.throws(() => parseCall({ provider: 'p', model: 'm', inputTokens: 1e10 + 1 }), { message: /inputTokens/ });
  t.is(parseCall({ provider: 'p', model: 'm', inputTokens: 123n }).inputTokens, 123n);
  t.throws(() => parseCall({ provider: 'p', model: 'm', inputTokens: 2 ** 60 }), { message: /inputTokens/ });
  t.throws(() => parseCall({ provider: 'p', model: 'm', inputTokens: 2n ** 60n }), { message: /inputTokens/ });
  t.throws(() => parseCall({ provider: 'p', model: 'm', inputTokens: 1.5 }), { message: /inputTokens/ });
  t.throws(() => parseCall({ provider: 'p', model: 'm', inputTokens: Number.NaN }), { message: /inputTokens/ });
});
