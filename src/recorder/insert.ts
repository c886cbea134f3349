import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Call } from './call.js';
import { callColumnList, callJson, callRecordColumns } from './call-columns.js';
import { describeThrown, oneLine } from './storable.js';

/** A validated call on its way to the database: requestId and createdAt are always set. */
export type QueuedCall = Call & { requestId: string; createdAt: Date };

/**
 * How a batch reaches ai_cost.calls. 'insert_calls': through
 * ai_cost.insert_calls(), which prices list-priced calls in its own
 * statement instead of calling the cost trigger per row. 'statement': a
 * plain INSERT that the trigger prices, for a database without that function
 * or a login without EXECUTE on it. Both write the same rows.
 */
export type InsertPath = 'insert_calls' | 'statement';

/** What the recorder learns of the ledger on its first write, and again after every failed one. */
export interface Ledger {
  path: InsertPath;
  /** How many shards hold ai_cost.calls when it is distributed over Citus (docs/scaling.md); 0 on one server. */
  shards: number;
}

/**
 * The path this login can take (insert_calls where it exists and may be
 * executed), and how many shards the calls are spread over. Citus's
 * catalog of shards is readable by every login; a server without Citus
 * has none, so it is asked only where it exists.
 */
export async function learnLedger(db: CommonQueryMethods): Promise<Ledger> {
  const { usable, citus } = await db.one(sql.type(z.object({ usable: z.boolean(), citus: z.boolean() }))`
    SELECT coalesce(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure('ai_cost.insert_calls(pg_catalog.jsonb)'), 'EXECUTE'), false) AS usable,
           pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NOT NULL AS citus`);
  const shards = citus
    ? await db.oneFirst(sql.type(z.object({ shards: z.number() }))`
        SELECT pg_catalog.count(*)::int AS shards FROM pg_catalog.pg_dist_shard
         WHERE logicalrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('ai_cost.calls')`)
    : 0;
  return { path: usable ? 'insert_calls' : 'statement', shards };
}

const insertedSchema = z.object({ request_id: z.string() });
const countSchema = z.object({ inserted: z.number() });

/** A batch that could not be encoded as JSON: the calls themselves are at fault, so it is split like a refused one. */
export class UnencodableBatchError extends Error {
  override name = 'UnencodableBatchError';
}

/** The calls as the JSON array text insert_calls() and the plain statement read. */
function batchJson(calls: readonly QueuedCall[]): string {
  try {
    return `[${calls.map(callJson).join(',')}]`;
  } catch (error) {
    // Validation lets through only what can be encoded; this is the net under it.
    throw new UnencodableBatchError(`a call could not be encoded as JSON: ${describeThrown(error)}`, { cause: error });
  }
}

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
  const batch = sql.fragment`${batchJson(calls)}::jsonb`;
  if (path === 'insert_calls') {
    return db.oneFirst(sql.type(countSchema)`SELECT ai_cost.insert_calls(${batch})::int AS inserted`);
  }
  const rows = await db.any(sql.type(insertedSchema)`
    INSERT INTO ai_cost.calls (${callColumnList})
    SELECT ${callColumnList} FROM jsonb_to_recordset(${batch}) AS c(${callRecordColumns})
    ON CONFLICT DO NOTHING
    RETURNING request_id
  `);
  return rows.length;
}

/** The SQLSTATE of a database error, looked up through slonik's wrapping (error.cause). */
function sqlState(error: unknown): string | undefined {
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
 * Always one line.
 */
export function describeDatabaseError(error: unknown): Error {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && typeof message === 'string' && current !== error) {
      return new Error(oneLine(message), { cause: error });
    }
    current = (current as { cause?: unknown }).cause;
  }
  if (error instanceof Error && oneLine(error.message) === error.message) return error;
  return new Error(error instanceof Error ? oneLine(error.message) : describeThrown(error), { cause: error });
}

/**
 * The SQLSTATE classes in which the database refuses what a statement
 * carries, so that the same calls would be refused again: 22 data exception
 * (a bad value, U+0000 in jsonb), 23 integrity constraint violation (a
 * CHECK, NOT NULL), 54 program limit exceeded (too deep, too large, too
 * complex), P0 raised by PL/pgSQL (a trigger that refuses a row).
 */
const DATA_ERROR_CLASSES = new Set(['22', '23', '54', 'P0']);

/**
 * True when the calls themselves were refused: by the database (see
 * DATA_ERROR_CLASSES), or before sending because they could not be encoded
 * (UnencodableBatchError). Retrying them can never succeed, so a batch is
 * split until the refused call is alone. Anything else (connection lost,
 * server starting, shutting down or read-only, a lock or statement timeout,
 * a missing grant or function) may pass later, so it is retried.
 */
export function isDataError(error: unknown): boolean {
  if (error instanceof UnencodableBatchError) return true;
  const state = sqlState(error);
  return state !== undefined && DATA_ERROR_CLASSES.has(state.slice(0, 2));
}
