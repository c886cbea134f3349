// Recording calls from Node with `pg`, awaiting each insert (for the request
// path, prefer the batching recorder: examples/typescript/recorder.ts).
//
//   DATABASE_URL=postgres://... node examples/node/record-calls.mjs demo
//
// input_tokens counts ALL prompt tokens (cache reads and writes included);
// output_tokens includes reasoning tokens. Token counts and money are int8:
// pg returns them as strings, so never add them as JS numbers.
import pg from 'pg';

const prefix = process.argv[2] ?? 'node';
const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
await client.connect();
try {
  const calls = [
    // OpenAI: prompt_tokens 1200 of which 1024 cached, completion_tokens 300 of which 120 reasoning.
    [`${prefix}-1`, 'openai', 'gpt-4o-mini', 'acme', 'support-bot', 1200, 300, 1024, null, 120, null, 840],
    // Anthropic: input_tokens 50 + cache_read_input_tokens 1000 + cache_creation_input_tokens 3000.
    [`${prefix}-2`, 'anthropic', 'claude-sonnet-4-6', 'acme', 'summarize', 4050, 20, 1000, 3000, null, null, 1210],
    // OpenRouter reported the cost itself ($0.001234): it is kept as is.
    [`${prefix}-3`, 'openrouter', 'meta-llama/llama-3.3-70b-instruct', 'globex', 'search', 900, 150, null, null, null, 1234, 400],
  ];
  for (const values of calls) {
    const { rows } = await client.query(
      `INSERT INTO ai_cost.calls
         (request_id, provider, model, tenant_id, feature, input_tokens, output_tokens,
          cache_read_tokens, cache_write_tokens, reasoning_tokens, provided_cost_micros, total_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT DO NOTHING
       RETURNING cost_micros`,
      values,
    );
    console.log(values[0], rows[0]?.cost_micros ?? 'already recorded');
  }
} finally {
  await client.end();
}
