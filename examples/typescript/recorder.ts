// Recording calls from TypeScript with the batching recorder: record()
// returns at once, a background writer inserts batches and retries while the
// database is away. Adapters map each SDK's usage object to the call fields.
//
//   DATABASE_URL=postgres://... npx tsx examples/typescript/recorder.ts demo
import { anthropicUsage, createRecorder, openAIChatUsage, openRouterUsage } from 'pg-ai-cost';

const prefix = process.argv[2] ?? 'recorder';
const recorder = createRecorder({ databaseUrl: process.env.DATABASE_URL! });

// What the SDKs returned, as their usage objects.
const openaiUsage = {
  prompt_tokens: 1200, completion_tokens: 300,
  prompt_tokens_details: { cached_tokens: 1024 }, completion_tokens_details: { reasoning_tokens: 120 },
};
const claudeUsage = { input_tokens: 50, cache_read_input_tokens: 1000, cache_creation_input_tokens: 3000, output_tokens: 20 };
const openrouterUsage = { prompt_tokens: 900, completion_tokens: 150, cost: 0.001234 };

recorder.record({ requestId: `${prefix}-1`, provider: 'openai', model: 'gpt-4o-mini', tenantId: 'acme', feature: 'support-bot', totalMs: 840, ...openAIChatUsage(openaiUsage) });
recorder.record({ requestId: `${prefix}-2`, provider: 'anthropic', model: 'claude-sonnet-4-6', tenantId: 'acme', feature: 'summarize', totalMs: 1210, ...anthropicUsage(claudeUsage) });
recorder.record({ requestId: `${prefix}-3`, provider: 'openrouter', model: 'meta-llama/llama-3.3-70b-instruct', tenantId: 'globex', feature: 'search', totalMs: 400, ...openRouterUsage(openrouterUsage) });

// A server keeps the recorder for its lifetime; a script closes it, which writes what is queued.
await recorder.close();
console.log(recorder.metrics());
