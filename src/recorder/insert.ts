import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Call } from '../calls.js';

/** A validated call on its way to the database: requestId and createdAt are always set. */
export type QueuedCall = Call & { requestId: string; createdAt: Date };

/** One call as a JSON object whose keys are ai_cost.calls columns (bigints as decimal strings). */
function toRow(call: QueuedCall): Record<string, unknown> {
  const big = (value: bigint | null | undefined) => (value === null || value === undefined ? null : value.toString());
  return {
    created_at: call.createdAt.toISOString(),
    provider: call.provider,
    model: call.model,
    operation: call.operation,
    status: call.status,
    service_tier: call.serviceTier,
    tenant_id: call.tenantId ?? null,
    user_id: call.userId ?? null,
    feature: call.feature ?? null,
    conversation_id: call.conversationId ?? null,
    prompt_id: call.promptId ?? null,
    prompt_version: call.promptVersion ?? null,
    metadata: call.metadata,
    request_id: call.requestId,
    input_tokens: big(call.inputTokens),
    output_tokens: big(call.outputTokens),
    cache_read_tokens: big(call.cacheReadTokens),
    cache_write_tokens: big(call.cacheWriteTokens),
    reasoning_tokens: big(call.reasoningTokens),
    cache_write_1h_tokens: big(call.cacheWrite1hTokens),
    audio_input_tokens: big(call.audioInputTokens),
    audio_output_tokens: big(call.audioOutputTokens),
    units: call.units ?? null,
    unit: call.unit ?? null,
    provided_cost_micros: big(call.providedCostMicros),
    streamed: call.streamed,
    cached: call.cached,
    ttft_ms: call.ttftMs ?? null,
    total_ms: call.totalMs ?? null,
    error_message: call.errorMessage ?? null,
  };
}

/**
 * How a batch reaches ai_cost.calls. 'insert_calls': through
 * ai_cost.insert_calls() (migration 0012), which prices list-priced calls in
 * its own statement instead of calling the cost trigger per row. 'statement':
 * a plain INSERT that the trigger prices, for a database that predates 0012
 * or a login without EXECUTE on the function. Both write the same rows.
 */
export type InsertPath = 'insert_calls' | 'statement';

/** The path this login can take: insert_calls where it exists and may be executed. */
export async function chooseInsertPath(db: CommonQueryMethods): Promise<InsertPath> {
  const usable = await db.oneFirst(sql.type(z.object({ usable: z.boolean() }))`
    SELECT coalesce(has_function_privilege(to_regprocedure('ai_cost.insert_calls(jsonb)'), 'EXECUTE'), false) AS usable`);
  return usable ? 'insert_calls' : 'statement';
}

const insertedSchema = z.object({ request_id: z.string() });
const countSchema = z.object({ inserted: z.number() });

/**
 * Writes calls in one statement: the batch travels as a single jsonb
 * parameter, so a batch of any size is one round trip with one bind
 * parameter. Retried batches are idempotent: a request_id already recorded
 * is skipped (ON CONFLICT DO NOTHING, in ai_cost.insert_calls() too), so rows
 * that reached the table before a lost acknowledgement are not counted
 * twice. The plain statement names no conflict target on purpose: a
 * partitioned ai_cost.calls (ai_cost.partition_calls()) has no UNIQUE
 * (request_id) to name, and skips a known request_id in a trigger instead;
 * without a target the statement works in both layouts, and the only other
 * unique key, the generated id, cannot conflict.
 * Returns how many rows were new.
 */
export async function insertCalls(db: CommonQueryMethods, calls: readonly QueuedCall[], path: InsertPath): Promise<number> {
  const batch = sql.jsonb(calls.map(toRow) as never);
  if (path === 'insert_calls') {
    return db.oneFirst(sql.type(countSchema)`SELECT ai_cost.insert_calls(${batch})::int AS inserted`);
  }
  const rows = await db.any(sql.type(insertedSchema)`
    INSERT INTO ai_cost.calls (
      created_at, provider, model, operation, status, service_tier,
      tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
      cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit, provided_cost_micros,
      streamed, cached, ttft_ms, total_ms, error_message
    )
    SELECT
      created_at, provider, model, operation, status, service_tier,
      tenant_id, user_id, feature, conversation_id, prompt_id, prompt_version, metadata, request_id,
      input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
      cache_write_1h_tokens, audio_input_tokens, audio_output_tokens, units, unit, provided_cost_micros,
      streamed, cached, ttft_ms, total_ms, error_message
    FROM jsonb_to_recordset(${batch}) AS c(
      created_at timestamptz, provider text, model text, operation text, status text, service_tier text,
      tenant_id text, user_id text, feature text, conversation_id text, prompt_id text, prompt_version text,
      metadata jsonb, request_id text,
      input_tokens bigint, output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint,
      reasoning_tokens bigint, cache_write_1h_tokens bigint, audio_input_tokens bigint, audio_output_tokens bigint,
      units numeric, unit text, provided_cost_micros bigint,
      streamed boolean, cached boolean, ttft_ms integer, total_ms integer, error_message text
    )
    ON CONFLICT DO NOTHING
    RETURNING request_id
  `);
  return rows.length;
}

/** The SQLSTATE of a database error, looked up through slonik's wrapping (error.cause). */
export function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The database's own message for an error (slonik wraps it in a generic one,
 * e.g. "Query violates a check integrity constraint."), so reports name the
 * constraint: `new row ... violates check constraint "token counts must not be negative"`.
 */
export function describeDatabaseError(error: unknown): Error {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && typeof message === 'string' && current !== error) {
      return new Error(message, { cause: error });
    }
    current = (current as { cause?: unknown }).cause;
  }
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * True when the database refused the data itself (a CHECK, a bad value):
 * class 22 (data exception) or 23 (integrity constraint violation).
 * Retrying such a batch can never succeed; anything else (connection lost,
 * server starting up or shutting down, timeouts) may, so it is retried.
 */
export function isRowError(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}
