import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';
import { UsageError } from './db.js';

/** One thing ai_cost.distribute() did, in its words. */
export interface DistributionStep {
  step: string;
  detail: string;
}

/** The most shards Citus gives a table (its citus.shard_count range). */
const MAX_SHARD_COUNT = 64_000;

export interface DistributeOptions {
  /**
   * Shards of ai_cost.calls when they are first distributed (Citus's
   * citus.shard_count, 32 unless set). A batch of many tenants writes every
   * shard it touches, so fewer shards record faster; shards are also what
   * Citus moves to new workers, so more leave room to grow (docs/scaling.md).
   * A ledger already distributed keeps its shards.
   */
  shardCount?: number;
}

const stepSchema = z.object({ step: z.string(), detail: z.string() });

/**
 * Runs ai_cost.distribute() on a Citus coordinator: calls distributed by
 * tenant_id, the price tables as reference tables, a price lookup and book
 * on every node (docs/scaling.md). Idempotent; run it again after adding a
 * worker. Refuses with a one-line reason on a server without Citus.
 */
export async function distribute(db: CommonQueryMethods, options: DistributeOptions = {}): Promise<DistributionStep[]> {
  const run = async (on: CommonQueryMethods) => [...await on.any(sql.type(stepSchema)`SELECT step, detail FROM ai_cost.distribute()`)];
  const { shardCount } = options;
  if (shardCount === undefined) return run(db);
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > MAX_SHARD_COUNT) {
    throw new UsageError(`the shard count must be a whole number from 1 to ${MAX_SHARD_COUNT} (Citus's range), not ${shardCount}`);
  }
  // The setting lasts for this transaction only, and create_distributed_table() reads it.
  return db.transaction(async (transaction) => {
    await transaction.query(sql.unsafe`SELECT pg_catalog.set_config('citus.shard_count', ${String(shardCount)}, true)`);
    return run(transaction);
  });
}

/**
 * Whether ai_cost.calls is distributed already, so that ai_cost.distribute()
 * keeps the shards it has. False where the ledger is not installed:
 * ai_cost.distribute() then says so.
 */
export async function callsAreDistributed(db: CommonQueryMethods): Promise<boolean> {
  const installed = await db.oneFirst(sql.type(z.object({ installed: z.boolean() }))`
    SELECT pg_catalog.to_regprocedure('ai_cost_internal.calls_are_distributed()') IS NOT NULL AS installed`);
  return installed && db.oneFirst(sql.type(z.object({ distributed: z.boolean() }))`
    SELECT ai_cost_internal.calls_are_distributed() AS distributed`);
}
