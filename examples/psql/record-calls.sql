-- Recording calls from psql (or any SQL client): a plain INSERT; the cost
-- trigger prices each row. request_id makes a retried insert harmless.
--
--   psql "$DATABASE_URL" -v prefix=demo -f examples/psql/record-calls.sql
--
-- input_tokens counts ALL prompt tokens, cache reads and writes included;
-- output_tokens includes reasoning tokens.
INSERT INTO ai_cost.calls
  (request_id, provider, model, tenant_id, feature, input_tokens, output_tokens,
   cache_read_tokens, cache_write_tokens, reasoning_tokens, provided_cost_micros, total_ms)
VALUES
  -- OpenAI: prompt_tokens 1200 of which 1024 cached, completion_tokens 300 of which 120 reasoning.
  (:'prefix' || '-1', 'openai', 'gpt-4o-mini', 'acme', 'support-bot', 1200, 300, 1024, NULL, 120, NULL, 840),
  -- Anthropic: input_tokens 50 + cache_read_input_tokens 1000 + cache_creation_input_tokens 3000.
  (:'prefix' || '-2', 'anthropic', 'claude-sonnet-4-6', 'acme', 'summarize', 4050, 20, 1000, 3000, NULL, NULL, 1210),
  -- OpenRouter reported the cost itself ($0.001234): it is kept as is.
  (:'prefix' || '-3', 'openrouter', 'meta-llama/llama-3.3-70b-instruct', 'globex', 'search', 900, 150, NULL, NULL, NULL, 1234, 400)
ON CONFLICT DO NOTHING
RETURNING request_id, cost_micros;
