import type pg from 'pg';

/** Calls repriced per transaction: a batch holds row locks on that many calls, no more. */
const BATCH_SIZE = 5_000;

export interface CatalogBackfill {
  /** The ai_cost.reprice_runs row. */
  run: bigint;
  /** The release whose built-in catalog the run backfills, e.g. 0.2.0. */
  catalog: string;
  /** Calls left unpriced that a row of that catalog now prices. */
  callsPriced: bigint;
}

/**
 * Carries out the reprice runs that built-in catalog updates registered
 * (ai_cost.reprice_runs.catalog) and returns what each did. A run goes one
 * batch per transaction, after the migration that registered it committed,
 * so an upgrade never holds its locks for a backfill; a run interrupted
 * halfway resumes from its cursor on the next call.
 */
export async function finishCatalogBackfills(client: pg.ClientBase): Promise<CatalogBackfill[]> {
  const { rows: [schema] } = await client.query<{ ready: boolean }>(`
    SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                    WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('ai_cost.reprice_runs')
                      AND attname OPERATOR(pg_catalog.=) 'catalog' AND NOT attisdropped) AS ready`);
  if (!schema?.ready) return [];
  const { rows: runs } = await client.query<{ id: string; catalog: string }>(`
    SELECT id::pg_catalog.text, catalog FROM ai_cost.reprice_runs
     WHERE catalog IS NOT NULL AND finished_at IS NULL ORDER BY id`);
  if (runs.length === 0) return [];
  // A call written by a transaction that began before the new prices were
  // committed was priced without them, and may commit after a batch has
  // passed it: wait for those writers first.
  await client.query('SELECT ai_cost_internal.wait_for_call_writers()');
  const done: CatalogBackfill[] = [];
  for (const run of runs) {
    for (;;) {
      const { rows: [batch] } = await client.query<{ examined: number }>(
        'SELECT ai_cost.reprice_batch($1, $2) AS examined', [run.id, BATCH_SIZE]);
      if ((batch?.examined ?? 0) < BATCH_SIZE) break;
    }
    const { rows: [result] } = await client.query<{ calls_changed: string }>(
      'SELECT calls_changed::pg_catalog.text FROM ai_cost.reprice_runs WHERE id OPERATOR(pg_catalog.=) $1', [run.id]);
    done.push({ run: BigInt(run.id), catalog: run.catalog, callsPriced: BigInt(result?.calls_changed ?? 0) });
  }
  return done;
}
