import test from 'ava';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

test('every row of the built-in catalog says where its price was read and when', async (t) => {
  const rows = await db.query<{ catalog: string; rows: number; unsourced: number; unchecked: number }>(`
    SELECT catalog, count(*)::int AS rows,
           count(*) FILTER (WHERE source IS NULL OR source !~ '^https://')::int AS unsourced,
           count(*) FILTER (WHERE checked_on IS NULL)::int AS unchecked
      FROM ai_cost.prices WHERE catalog IS NOT NULL GROUP BY catalog ORDER BY catalog`);
  t.deepEqual(rows.map((r) => [r.catalog, r.unsourced, r.unchecked]), [['0.1.0', 0, 0], ['0.2.0', 0, 0]]);
  t.true(rows.every((r) => r.rows > 100));
});

test('the families the community list knows each have current models in the catalog', async (t) => {
  const families = await db.query<{ family: string; models: number }>(`
    SELECT family, count(DISTINCT (p.provider, p.model))::int AS models
      FROM ai_cost.prices p
      JOIN (VALUES ('openai', '^(gpt|o[0-9]|text-embedding)', 'OpenAI'), ('anthropic', '^claude', 'Anthropic'),
                   ('google', '^gemini', 'Gemini API'), ('vertex', '^gemini', 'Gemini on Vertex'),
                   ('xai', '^grok', 'xAI'), ('mistral', '.', 'Mistral'), ('deepseek', '^deepseek', 'DeepSeek'),
                   ('amazon', '^meta\\.llama', 'Llama on Bedrock'), ('vertex', '^meta/llama', 'Llama on Vertex'),
                   ('cohere', '^(command|embed|rerank)', 'Cohere'), ('amazon', '^amazon\\.(nova|titan)', 'Amazon Nova and Titan'))
             AS f (provider, pattern, family) ON p.provider = f.provider AND p.model ~ f.pattern
     WHERE p.catalog IS NOT NULL AND p.valid_to IS NULL
     GROUP BY family ORDER BY family`);
  t.deepEqual(families.map((f) => f.family), ['Amazon Nova and Titan', 'Anthropic', 'Cohere', 'DeepSeek', 'Gemini API',
    'Gemini on Vertex', 'Llama on Bedrock', 'Llama on Vertex', 'Mistral', 'OpenAI', 'xAI']);
  t.true(families.every((f) => f.models >= 2), JSON.stringify(families));
});

// Each figure is the provider's published price in USD per 1M tokens (per
// unit for unit_price), as its pricing page and the community list of
// 2026-07-24 give it.
const PUBLISHED = [
  // Anthropic, Claude Opus 5: $5 input, $25 output, $0.50 cache hits, $6.25 5-minute and $10 1-hour cache writes.
  { provider: 'anthropic', model: 'claude-opus-5', tier: 'standard', above: 0, input: 5, output: 25, cacheRead: 0.5, cacheWrite: 6.25, cacheWrite1h: 10 },
  // Anthropic, Claude Sonnet 5 through the Message Batches API: 50% of $2 / $10.
  { provider: 'anthropic', model: 'claude-sonnet-5', tier: 'batch', above: 0, input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25, cacheWrite1h: 2 },
  // OpenAI, GPT-5.6 above 272k input tokens: $10 input, $45 output, $1 cached input.
  { provider: 'openai', model: 'gpt-5.6', tier: 'standard', above: 272000, input: 10, output: 45, cacheRead: 1 },
  // OpenAI, GPT-5.6 luna: $1 input, $6 output, $0.10 cached input.
  { provider: 'openai', model: 'gpt-5.6-luna', tier: 'standard', above: 0, input: 1, output: 6, cacheRead: 0.1 },
  // OpenAI, gpt-realtime: text $4 / $16, cached $0.40; audio $32 / $64.
  { provider: 'openai', model: 'gpt-realtime', tier: 'standard', above: 0, input: 4, output: 16, cacheRead: 0.4, audioInput: 32, audioOutput: 64 },
  // Google, Gemini 3.5 Flash: $1.50 input (audio $1), $9 output, $0.15 context cache.
  { provider: 'google', model: 'gemini-3.5-flash', tier: 'standard', above: 0, input: 1.5, output: 9, cacheRead: 0.15, audioInput: 1 },
  // Google, Gemini 3.1 Flash Image: $0.25 input, $1.50 text output, $60 image output, $0.045 an image.
  { provider: 'google', model: 'gemini-3.1-flash-image-preview', tier: 'standard', above: 0, input: 0.25, output: 1.5, imageOutput: 60, unitPrice: 0.045 },
  // xAI, Grok 4.20 reasoning: $2 input, $6 output, $0.20 cached input.
  { provider: 'xai', model: 'grok-4.20-0309-reasoning', tier: 'standard', above: 0, input: 2, output: 6, cacheRead: 0.2 },
  // Amazon Bedrock, Nova Premier: $2.50 input, $12.50 output.
  { provider: 'amazon', model: 'amazon.nova-premier-v1:0', tier: 'standard', above: 0, input: 2.5, output: 12.5 },
  // Vertex AI, Llama 4 Maverick (MaaS): $0.35 input, $1.15 output.
  { provider: 'vertex', model: 'meta/llama-4-maverick-17b-128e-instruct-maas', tier: 'standard', above: 0, input: 0.35, output: 1.15 },
  // Cohere, Embed Multilingual Light v3: $0.10 (the community list has 100, a slip of the decimal point).
  { provider: 'cohere', model: 'embed-multilingual-light-v3.0', tier: 'standard', above: 0, input: 0.1, output: 0 },
  // Mistral, Mistral Medium 3.5: $1.50 input, $7.50 output.
  { provider: 'mistral', model: 'mistral-medium-2604', tier: 'standard', above: 0, input: 1.5, output: 7.5 },
];

test('the models the catalog gained cost what their providers publish', async (t) => {
  for (const expected of PUBLISHED) {
    const [row] = await db.query<Record<string, number | null | string>>(`
      SELECT catalog, input_per_mtok::float8 AS input, output_per_mtok::float8 AS output,
             cache_read_per_mtok::float8 AS "cacheRead", cache_write_per_mtok::float8 AS "cacheWrite",
             cache_write_1h_per_mtok::float8 AS "cacheWrite1h", audio_input_per_mtok::float8 AS "audioInput",
             audio_output_per_mtok::float8 AS "audioOutput", image_output_per_mtok::float8 AS "imageOutput",
             unit_price::float8 AS "unitPrice"
        FROM ai_cost.prices
       WHERE provider = $1 AND model = $2 AND service_tier = $3 AND above_input_tokens = $4 AND valid_to IS NULL`,
    [expected.provider, expected.model, expected.tier, expected.above]);
    const { provider, model, tier, above, ...rates } = expected;
    t.like(row, { catalog: '0.2.0', ...rates }, `${provider}/${model} ${tier} above ${above}`);
  }
});

test('snapshot and version ids the catalog gained are priced as their model', async (t) => {
  const cost = async (provider: string, model: string) => (await db.query<{ cost: string; price: string }>(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ($1, $2, 1000, 1000)
    RETURNING cost_micros::text AS cost, price_id::text AS price`, [provider, model]))[0];
  // gpt-image-2: 1,000 text input at $5 + 1,000 output at $10 = 15,000 micro-dollars, for the snapshot too.
  t.deepEqual(await cost('openai', 'gpt-image-2-2026-04-21'), await cost('openai', 'gpt-image-2'));
  t.is((await cost('openai', 'gpt-image-2'))!.cost, '15000');
  // Claude Sonnet 5 on Vertex AI by its @default id: 1,000 x $2 + 1,000 x $10 = 12,000.
  t.deepEqual(await cost('vertex', 'claude-sonnet-5@default'), await cost('vertex', 'claude-sonnet-5'));
  t.is((await cost('vertex', 'claude-sonnet-5'))!.cost, '12000');
  // grok-4-0709 is Grok 4: 1,000 x $3 + 1,000 x $15 = 18,000.
  t.is((await cost('xai', 'grok-4-0709'))!.cost, '18000');
});
