import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';
import { parseCall, type CallInput } from './call.js';
import { callColumnList, callValues } from './call-columns.js';
import { describeDatabaseError, isDataError } from './insert.js';

const recordedSchema = z.object({
  id: z.bigint(),
  cost_micros: z.bigint().nullable(),
  price_id: z.bigint().nullable(),
});

export interface RecordedCall {
  id: bigint;
  /** Micro-dollars; null when unpriced. */
  costMicros: bigint | null;
  priceId: bigint | null;
  /** True when a call with the same requestId was already recorded: nothing was written. */
  duplicate: boolean;
}

/** The database refused a call that passed validation (a CHECK, a trigger); the message, one line, is the database's. */
export class RejectedCallError extends Error {
  override name = 'RejectedCallError';
}

/**
 * Validates and inserts one call, awaiting the database, and returns the cost
 * the trigger computed. A repeated requestId writes nothing and returns the
 * row recorded first. (For the request path, the batching recorder does not
 * make the caller wait.) Throws InvalidCallError for a call that cannot be
 * sent, RejectedCallError (with the database's error as its cause) for one
 * the database refuses, and the database's own error when it is unavailable.
 */
export async function recordCall(db: CommonQueryMethods, input: CallInput): Promise<RecordedCall> {
  const call = parseCall(input);
  const inserted = await db.maybeOne(sql.type(recordedSchema)`
    INSERT INTO ai_cost.calls (${callColumnList}) VALUES (${callValues(call)})
    ON CONFLICT DO NOTHING
    RETURNING id, cost_micros, price_id
  `).catch((error: unknown) => {
    if (!isDataError(error)) throw error;
    throw new RejectedCallError(`the database refused the call: ${describeDatabaseError(error).message}`, { cause: error });
  });
  const row = inserted ?? (await db.one(sql.type(recordedSchema)`
    SELECT id, cost_micros, price_id FROM ai_cost.calls WHERE request_id = ${call.requestId ?? null}
  `));
  return { id: row.id, costMicros: row.cost_micros, priceId: row.price_id, duplicate: inserted === null };
}
