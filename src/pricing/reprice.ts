import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { timestamptz, UsageError } from '../db.js';

export interface RepriceWindow {
  /** Calls with created_at >= from ... */
  from: Date;
  /** ... and created_at < to. */
  to: Date;
  provider?: string;
  model?: string;
  /** Backfill: only calls still unpriced. */
  onlyUnpriced?: boolean;
}

export interface RepriceOptions extends RepriceWindow {
  /** Why: stored on the run and on every audit row. */
  reason: string;
}

const runSchema = z.object({
  id: z.bigint(),
  total_calls: z.bigint(),
  calls_done: z.bigint(),
  calls_changed: z.bigint(),
  delta_micros: z.string(),
  finished_at: z.date().nullable(),
});

export interface RepriceRun {
  id: bigint;
  totalCalls: bigint;
  callsDone: bigint;
  callsChanged: bigint;
  /** New minus old cost of changed calls priced before and after, micro-dollars. */
  deltaMicros: bigint;
  finished: boolean;
}

/** Records a repricing run (nothing is repriced yet) and returns it. */
export async function startReprice(db: CommonQueryMethods, options: RepriceOptions): Promise<RepriceRun> {
  const id = await db.oneFirst(sql.type(z.object({ id: z.bigint() }))`
    SELECT ai_cost.start_reprice(${timestamptz(options.from)}, ${timestamptz(options.to)}, ${options.reason},
      ${options.provider ?? null}, ${options.model ?? null}, ${options.onlyUnpriced ?? false}) AS id`);
  return repriceRun(db, id);
}

/** A run's progress as stored in ai_cost.reprice_runs. */
export async function repriceRun(db: CommonQueryMethods, id: bigint): Promise<RepriceRun> {
  const row = await db.maybeOne(sql.type(runSchema)`
    SELECT id, total_calls, calls_done, calls_changed, delta_micros::pg_catalog.text, finished_at
      FROM ai_cost.reprice_runs WHERE id OPERATOR(pg_catalog.=) ${id}`);
  if (!row) throw new UsageError(`no reprice run with id ${id}`);
  return {
    id: row.id, totalCalls: row.total_calls, callsDone: row.calls_done, callsChanged: row.calls_changed,
    deltaMicros: BigInt(row.delta_micros), finished: row.finished_at !== null,
  };
}

const chargesSchema = z.object({
  rebilled: z.bigint(),
  delta_micros: z.string(),
  newly_billed: z.bigint(),
  newly_billed_micros: z.string(),
  no_longer_billed: z.bigint(),
  no_longer_billed_micros: z.string(),
});

/** What a run changed in the charges to tenants (ai_cost.calls.billed_micros), from its audit rows. */
export interface RepriceCharges {
  /** Calls billed before and after whose charge changed. */
  rebilled: bigint;
  /** New minus old charge of those calls, micro-dollars. */
  deltaMicros: bigint;
  /** Calls billed now and not before, and what they are charged. */
  newlyBilled: bigint;
  newlyBilledMicros: bigint;
  /** Calls billed before and not now, and what they were charged. */
  noLongerBilled: bigint;
  noLongerBilledMicros: bigint;
}

/** The charges a run changed, summed over its audit rows (read once a run ends: it scans them). */
export async function repriceCharges(db: CommonQueryMethods, id: bigint): Promise<RepriceCharges> {
  const row = await db.one(sql.type(chargesSchema)`
    SELECT count(*) FILTER (WHERE a.old_billed_micros OPERATOR(pg_catalog.<>) a.new_billed_micros) AS rebilled,
           coalesce(sum(a.new_billed_micros OPERATOR(pg_catalog.-) a.old_billed_micros), 0)::pg_catalog.text AS delta_micros,
           count(*) FILTER (WHERE a.old_billed_micros IS NULL AND a.new_billed_micros IS NOT NULL) AS newly_billed,
           coalesce(sum(a.new_billed_micros) FILTER (WHERE a.old_billed_micros IS NULL), 0)::pg_catalog.text AS newly_billed_micros,
           count(*) FILTER (WHERE a.old_billed_micros IS NOT NULL AND a.new_billed_micros IS NULL) AS no_longer_billed,
           coalesce(sum(a.old_billed_micros) FILTER (WHERE a.new_billed_micros IS NULL), 0)::pg_catalog.text AS no_longer_billed_micros
      FROM ai_cost.reprice_audit a WHERE a.run_id OPERATOR(pg_catalog.=) ${id}`);
  return {
    rebilled: row.rebilled, deltaMicros: BigInt(row.delta_micros),
    newlyBilled: row.newly_billed, newlyBilledMicros: BigInt(row.newly_billed_micros),
    noLongerBilled: row.no_longer_billed, noLongerBilledMicros: BigInt(row.no_longer_billed_micros),
  };
}

const costsSchema = z.object({
  newly_priced: z.bigint(),
  newly_priced_micros: z.string(),
  newly_unpriced: z.bigint(),
  newly_unpriced_micros: z.string(),
});

/**
 * What a run changed in whether calls have a cost at all, which the run's
 * delta (over calls priced before and after) leaves out: an unknown cost
 * is not $0.
 */
export interface RepriceCosts {
  /** Calls with a cost now and none before, and what they cost now, micro-dollars. */
  newlyPriced: bigint;
  newlyPricedMicros: bigint;
  /** Calls with a cost before and none now, and what they cost before. */
  newlyUnpriced: bigint;
  newlyUnpricedMicros: bigint;
}

/** The calls a run priced or left unpriced, summed over its audit rows (read once a run ends: it scans them). */
export async function repriceCosts(db: CommonQueryMethods, id: bigint): Promise<RepriceCosts> {
  const row = await db.one(sql.type(costsSchema)`
    SELECT count(*) FILTER (WHERE a.old_cost_micros IS NULL AND a.new_cost_micros IS NOT NULL) AS newly_priced,
           coalesce(sum(a.new_cost_micros) FILTER (WHERE a.old_cost_micros IS NULL), 0)::pg_catalog.text AS newly_priced_micros,
           count(*) FILTER (WHERE a.old_cost_micros IS NOT NULL AND a.new_cost_micros IS NULL) AS newly_unpriced,
           coalesce(sum(a.old_cost_micros) FILTER (WHERE a.new_cost_micros IS NULL), 0)::pg_catalog.text AS newly_unpriced_micros
      FROM ai_cost.reprice_audit a WHERE a.run_id OPERATOR(pg_catalog.=) ${id}`);
  return {
    newlyPriced: row.newly_priced, newlyPricedMicros: BigInt(row.newly_priced_micros),
    newlyUnpriced: row.newly_unpriced, newlyUnpricedMicros: BigInt(row.newly_unpriced_micros),
  };
}

/**
 * Runs a started (or interrupted) repricing run to the end, one batch per
 * transaction, so locks last one batch and an interruption loses at most the
 * batch in flight; calling it again resumes from the run's cursor.
 */
export async function runReprice(
  pool: DatabasePool, id: bigint, options: { batchSize?: number; onBatch?: (run: RepriceRun) => void } = {},
): Promise<RepriceRun> {
  const batchSize = options.batchSize ?? 5_000;
  for (;;) {
    const examined = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT ai_cost.reprice_batch(${id}, ${batchSize}) AS n`);
    const run = await repriceRun(pool, id);
    options.onBatch?.(run);
    if (examined < batchSize || run.finished) return run;
  }
}

const previewSchema = z.object({
  provider: z.string(),
  model: z.string(),
  calls: z.bigint(),
  calls_changed: z.bigint(),
  old_cost_micros: z.string().nullable(),
  old_unpriced_calls: z.bigint(),
  new_cost_micros: z.string().nullable(),
  new_unpriced_calls: z.bigint(),
  delta_micros: z.string(),
  newly_priced: z.bigint(),
  newly_unpriced: z.bigint(),
  rebilled: z.bigint(),
  billed_delta_micros: z.string(),
  newly_billed: z.bigint(),
  newly_billed_micros: z.string(),
  no_longer_billed: z.bigint(),
  no_longer_billed_micros: z.string(),
});

export interface RepricePreview {
  provider: string;
  model: string;
  calls: bigint;
  callsChanged: bigint;
  /** Cost of the window's calls now: the sum over the priced ones; null when none is priced. */
  oldCostMicros: bigint | null;
  oldUnpricedCalls: bigint;
  /** Cost after a reprice, the same way. */
  newCostMicros: bigint | null;
  newUnpricedCalls: bigint;
  /** New minus old cost of the calls priced before and after. */
  deltaMicros: bigint;
  newlyPriced: bigint;
  newlyUnpriced: bigint;
  /** What the reprice would change in the charges to tenants, as a run reports it. */
  charges: RepriceCharges;
}

/** What a reprice of the window would change, per model, without writing anything. */
export async function previewReprice(db: CommonQueryMethods, window: RepriceWindow): Promise<RepricePreview[]> {
  const rows = await db.any(sql.type(previewSchema)`
    SELECT provider, model, calls, calls_changed, old_cost_micros::pg_catalog.text, old_unpriced_calls,
           new_cost_micros::pg_catalog.text, new_unpriced_calls, delta_micros::pg_catalog.text, newly_priced, newly_unpriced,
           rebilled, billed_delta_micros::pg_catalog.text, newly_billed, newly_billed_micros::pg_catalog.text,
           no_longer_billed, no_longer_billed_micros::pg_catalog.text
      FROM ai_cost.reprice_preview(${timestamptz(window.from)}, ${timestamptz(window.to)},
        ${window.provider ?? null}, ${window.model ?? null}, ${window.onlyUnpriced ?? false})`);
  const big = (v: string | null) => (v === null ? null : BigInt(v));
  return rows.map((r) => ({
    provider: r.provider, model: r.model, calls: r.calls, callsChanged: r.calls_changed,
    oldCostMicros: big(r.old_cost_micros), oldUnpricedCalls: r.old_unpriced_calls,
    newCostMicros: big(r.new_cost_micros), newUnpricedCalls: r.new_unpriced_calls,
    deltaMicros: BigInt(r.delta_micros), newlyPriced: r.newly_priced, newlyUnpriced: r.newly_unpriced,
    charges: {
      rebilled: r.rebilled, deltaMicros: BigInt(r.billed_delta_micros),
      newlyBilled: r.newly_billed, newlyBilledMicros: BigInt(r.newly_billed_micros),
      noLongerBilled: r.no_longer_billed, noLongerBilledMicros: BigInt(r.no_longer_billed_micros),
    },
  }));
}
