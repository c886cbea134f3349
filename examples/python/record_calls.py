"""Recording calls from Python with psycopg2 (psycopg 3 takes the same code with `import psycopg`).

    DATABASE_URL=postgres://... python3 examples/python/record_calls.py demo

The database prices each row on insert; request_id makes a retried insert harmless.
input_tokens counts ALL prompt tokens (cache reads and writes included);
output_tokens includes reasoning tokens.
"""
import os
import sys

import psycopg2

INSERT = """
    INSERT INTO ai_cost.calls
      (request_id, provider, model, tenant_id, feature, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, reasoning_tokens, provided_cost_micros, total_ms)
    VALUES (%(request_id)s, %(provider)s, %(model)s, %(tenant_id)s, %(feature)s, %(input_tokens)s, %(output_tokens)s,
            %(cache_read_tokens)s, %(cache_write_tokens)s, %(reasoning_tokens)s, %(provided_cost_micros)s, %(total_ms)s)
    ON CONFLICT DO NOTHING
    RETURNING cost_micros
"""


def record_calls(conn, prefix):
    calls = [
        # OpenAI: prompt_tokens 1200 of which 1024 cached, completion_tokens 300 of which 120 reasoning.
        dict(request_id=f"{prefix}-1", provider="openai", model="gpt-4o-mini", tenant_id="acme", feature="support-bot",
             input_tokens=1200, output_tokens=300, cache_read_tokens=1024, cache_write_tokens=None,
             reasoning_tokens=120, provided_cost_micros=None, total_ms=840),
        # Anthropic: input_tokens 50 + cache_read_input_tokens 1000 + cache_creation_input_tokens 3000.
        dict(request_id=f"{prefix}-2", provider="anthropic", model="claude-sonnet-4-6", tenant_id="acme", feature="summarize",
             input_tokens=4050, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=3000,
             reasoning_tokens=None, provided_cost_micros=None, total_ms=1210),
        # OpenRouter reported the cost itself ($0.001234): it is kept as is.
        dict(request_id=f"{prefix}-3", provider="openrouter", model="meta-llama/llama-3.3-70b-instruct", tenant_id="globex",
             feature="search", input_tokens=900, output_tokens=150, cache_read_tokens=None, cache_write_tokens=None,
             reasoning_tokens=None, provided_cost_micros=1234, total_ms=400),
    ]
    with conn, conn.cursor() as cur:  # one transaction, committed on success
        for call in calls:
            cur.execute(INSERT, call)
            row = cur.fetchone()  # None when the request_id was already recorded
            print(call["request_id"], row[0] if row else "already recorded")


if __name__ == "__main__":
    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        record_calls(connection, sys.argv[1] if len(sys.argv) > 1 else "python")
    finally:
        connection.close()
