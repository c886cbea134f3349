// Recording calls from Go with pgx (v4, as Debian packages it; with pgx v5
// change the import to github.com/jackc/pgx/v5, the code is the same).
//
//	DATABASE_URL=postgres://... go run ./examples/go demo
//
// The database prices each row on insert; request_id makes a retried insert
// harmless. input_tokens counts ALL prompt tokens (cache reads and writes
// included); output_tokens includes reasoning tokens.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v4"
)

const insertCall = `
	INSERT INTO ai_cost.calls
	  (request_id, provider, model, tenant_id, feature, input_tokens, output_tokens,
	   cache_read_tokens, cache_write_tokens, reasoning_tokens, provided_cost_micros, total_ms)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
	ON CONFLICT DO NOTHING`

// Call is one row of ai_cost.calls; nil pointers are NULL (not applicable, not 0).
type Call struct {
	RequestID, Provider, Model, TenantID, Feature string
	InputTokens, OutputTokens                     int64
	CacheReadTokens, CacheWriteTokens             *int64
	ReasoningTokens, ProvidedCostMicros           *int64
	TotalMs                                       int32
}

func ptr(v int64) *int64 { return &v }

func main() {
	prefix := "go"
	if len(os.Args) > 1 {
		prefix = os.Args[1]
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer conn.Close(ctx)

	calls := []Call{
		// OpenAI: prompt_tokens 1200 of which 1024 cached, completion_tokens 300 of which 120 reasoning.
		{prefix + "-1", "openai", "gpt-4o-mini", "acme", "support-bot", 1200, 300, ptr(1024), nil, ptr(120), nil, 840},
		// Anthropic: input_tokens 50 + cache_read_input_tokens 1000 + cache_creation_input_tokens 3000.
		{prefix + "-2", "anthropic", "claude-sonnet-4-6", "acme", "summarize", 4050, 20, ptr(1000), ptr(3000), nil, nil, 1210},
		// OpenRouter reported the cost itself ($0.001234): it is kept as is.
		{prefix + "-3", "openrouter", "meta-llama/llama-3.3-70b-instruct", "globex", "search", 900, 150, nil, nil, nil, ptr(1234), 400},
	}
	batch := &pgx.Batch{}
	for _, c := range calls {
		batch.Queue(insertCall, c.RequestID, c.Provider, c.Model, c.TenantID, c.Feature, c.InputTokens, c.OutputTokens,
			c.CacheReadTokens, c.CacheWriteTokens, c.ReasoningTokens, c.ProvidedCostMicros, c.TotalMs)
	}
	// One round trip, one implicit transaction for the whole batch.
	if err := conn.SendBatch(ctx, batch).Close(); err != nil {
		fmt.Fprintln(os.Stderr, "insert:", err)
		os.Exit(1)
	}
	fmt.Println("recorded", len(calls), "calls")
}
