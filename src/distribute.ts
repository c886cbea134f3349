import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';

/** One thing ai_cost.distribute() did, in its words. */
export interface DistributionStep {
  step: string;
  detail: string;
}

/**
 * Runs ai_cost.distribute() on a Citus coordinator: calls distributed by
 * tenant_id, the price tables as reference tables, a price lookup and book
 * on every node (docs/scaling.md). Idempotent; run it again after adding a
 * worker. Refuses with a one-line reason on a server without Citus.
 */
export async function distribute(db: CommonQueryMethods): Promise<DistributionStep[]> {
  const rows = await db.any(sql.type(z.object({ step: z.string(), detail: z.string() }))`
    SELECT step, detail FROM ai_cost.distribute()`);
  return [...rows];
}
