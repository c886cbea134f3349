-- Sample traffic for `ai-cost demo`: two weeks of calls from a small SaaS app
-- with five tenants, a few features and models from three providers, plus the
-- awkward cases a real ledger sees: failed and cancelled calls, answers served
-- from the app's own cache, prompt-cache reads and writes, reasoning tokens,
-- embeddings with no output tokens, and a model nobody has priced.
-- Re-running it replaces the previous sample (rows tagged source=ai-cost demo).

DELETE FROM ai_cost.calls WHERE metadata @> '{"source": "ai-cost demo"}';

SELECT setseed(0.42);

WITH models (provider, model, operation, feature, lo, hi, input_mean, output_mean, caches, reasons) AS (
  VALUES
    ('openai',    'gpt-4o-mini',            'chat',      'support-bot',  0.00, 0.30,  1800,  350, true,  false),
    ('openai',    'gpt-4.1',                'chat',      'code-review',  0.30, 0.40,  6000,  900, true,  false),
    ('openai',    'o4-mini',                'chat',      'code-review',  0.40, 0.46,  3000, 2200, true,  true),
    ('openai',    'text-embedding-3-small', 'embedding', 'search',       0.46, 0.62,   600,    0, false, false),
    ('anthropic', 'claude-sonnet-4-6',      'chat',      'summarize',    0.62, 0.80,  9000,  700, true,  false),
    ('anthropic', 'claude-haiku-4-5',       'chat',      'support-bot',  0.80, 0.90,  2500,  300, true,  false),
    ('google',    'gemini-2.5-flash',       'chat',      'summarize',    0.90, 0.98,  7000,  500, true,  false),
    ('acme',      'in-house-llm-v2',        'chat',      'support-bot',  0.98, 1.00,  1200,  200, false, false)
),
draws AS (
  SELECT g.i, random() AS pick, random() AS outcome, random() AS size, random() AS cache,
         random() AS tenant, random() AS age, random() AS speed, random() AS stream
    FROM generate_series(1, 2400) AS g(i)
),
shaped AS (
  SELECT d.*, m.*,
         (200 + floor(d.size * d.size * m.input_mean * 2))::bigint AS prompt,
         (CASE WHEN m.output_mean = 0 THEN NULL
               ELSE 20 + floor(d.size * m.output_mean * 2) END)::bigint AS completion,
         CASE WHEN d.outcome < 0.035 THEN 'error'
              WHEN d.outcome < 0.045 THEN 'cancelled'
              ELSE 'success' END AS status,
         m.operation = 'chat' AND d.outcome > 0.95 AS app_cache_hit
    FROM draws d
    JOIN models m ON d.pick >= m.lo AND d.pick < m.hi
),
counted AS (
  -- A rate-limited call fails before any token is read: no output at all;
  -- a cancelled stream was billed for what it produced until then.
  SELECT s.*,
         CASE WHEN s.status = 'error' THEN NULL
              WHEN s.status = 'cancelled' THEN s.completion / 3
              ELSE s.completion END AS output
    FROM shaped s
)
INSERT INTO ai_cost.calls (
  created_at, provider, model, operation, status, tenant_id, user_id, feature,
  conversation_id, request_id, input_tokens, output_tokens, cache_read_tokens,
  cache_write_tokens, reasoning_tokens, streamed, cached, ttft_ms, total_ms,
  error_message, metadata)
SELECT
  now() - s.age * interval '14 days',
  s.provider, s.model, s.operation, s.status,
  CASE WHEN s.tenant < 0.40 THEN 'acme-corp' WHEN s.tenant < 0.65 THEN 'globex'
       WHEN s.tenant < 0.82 THEN 'initech' WHEN s.tenant < 0.94 THEN 'umbrella' ELSE 'hooli' END,
  'user-' || (1 + floor(s.tenant * 997)::int % 40),
  s.feature,
  'conv-' || (s.i / 4),
  'demo-' || s.i,
  CASE WHEN s.status = 'error' THEN NULL ELSE s.prompt END,
  s.output,
  CASE WHEN s.status <> 'error' AND s.caches AND s.cache < 0.45 THEN floor(s.prompt * 0.6)::bigint END,
  CASE WHEN s.status <> 'error' AND s.caches AND s.provider = 'anthropic' AND s.cache >= 0.45 AND s.cache < 0.55
       THEN floor(s.prompt * 0.3)::bigint END,
  CASE WHEN s.reasons THEN floor(s.output * 0.6)::bigint END,
  s.operation = 'chat' AND s.stream < 0.7,
  s.app_cache_hit,
  CASE WHEN s.operation = 'chat' AND s.stream < 0.7 AND s.status = 'success'
       THEN (150 + s.speed * s.speed * 1500)::int END,
  CASE WHEN s.app_cache_hit THEN (2 + s.speed * 10)::int
       ELSE (300 + s.speed * s.speed * coalesce(s.completion, 50) * 25)::int END,
  CASE WHEN s.status = 'error' THEN '429 Too Many Requests: rate limit reached' END,
  '{"source": "ai-cost demo"}'
FROM counted s;
