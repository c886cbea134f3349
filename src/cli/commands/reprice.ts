import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { createPool, resolveDatabaseUrl, UsageError } from '../../db.js';
import { formatCost, formatMicros } from '../../money.js';
import {
  previewReprice, repriceCharges, repriceCosts, repriceRun, runReprice, startReprice, type RepriceCharges, type RepriceCosts, type RepricePreview,
  type RepriceRun,
} from '../../pricing/reprice.js';
import { databaseUrlOption, parsePositiveInteger, parseWhen } from '../options.js';

interface RepriceOptions {
  databaseUrl?: string;
  from?: Date;
  to?: Date;
  provider?: string;
  model?: string;
  unpriced?: boolean;
  dryRun?: boolean;
  reason?: string;
  batchSize: number;
  resume?: number;
}

/** `ai-cost reprice`: recompute costs for a window after a price correction, in batches, with an audit trail. */
export function registerReprice(program: Command): void {
  program
    .command('reprice')
    .description('recompute the cost of calls in a window at the current prices, in batches, auditing every change')
    .addOption(databaseUrlOption())
    .option('--from <when>', 'calls created at or after this (ISO date/time or e.g. 30d)', parseWhen)
    .option('--to <when>', "calls created before this (default: now)", parseWhen)
    .option('--provider <id>', 'only this provider')
    .option('--model <id>', 'only this model id')
    .option('--unpriced', 'backfill: only calls that are still unpriced')
    .option('--dry-run', 'print what would change, per model, without writing')
    .option('--reason <text>', 'why, recorded with every change (default: "ai-cost reprice")')
    .option('--batch-size <n>', 'calls per transaction', parsePositiveInteger, 5_000)
    .option('--resume <run>', 'continue an interrupted run by its id', parsePositiveInteger)
    .action(async (options: RepriceOptions) => {
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        if (options.resume !== undefined) {
          const run = await runWithProgress(pool, await repriceRun(pool, BigInt(options.resume)), options.batchSize);
          report(run, await repriceCosts(pool, run.id), await repriceCharges(pool, run.id));
          return;
        }
        if (!options.from) throw new UsageError('reprice needs --from (or --resume <run>)');
        const window = {
          from: options.from,
          to: options.to ?? new Date(),
          ...(options.provider ? { provider: options.provider } : {}),
          ...(options.model ? { model: options.model } : {}),
          onlyUnpriced: options.unpriced ?? false,
        };
        if (window.to <= window.from) throw new UsageError('--to must be after --from');
        if (options.dryRun) {
          const rows = await previewReprice(pool, window);
          const changed = rows.filter((r) => r.callsChanged > 0n);
          for (const r of changed) console.log(`${r.provider}/${r.model}: ${describePreview(r)}`);
          const sum = (pick: (r: RepricePreview) => bigint) => changed.reduce((total, r) => total + pick(r), 0n);
          const charges = describeCharges({
            rebilled: sum((r) => r.charges.rebilled), deltaMicros: sum((r) => r.charges.deltaMicros),
            newlyBilled: sum((r) => r.charges.newlyBilled), newlyBilledMicros: sum((r) => r.charges.newlyBilledMicros),
            noLongerBilled: sum((r) => r.charges.noLongerBilled), noLongerBilledMicros: sum((r) => r.charges.noLongerBilledMicros),
          });
          console.log(`dry run: ${sum((r) => r.callsChanged)} calls would change (${sum((r) => r.newlyPriced)} newly priced, `
            + `${sum((r) => r.newlyUnpriced)} newly unpriced), delta ${formatMicros(sum((r) => r.deltaMicros))} `
            + `on the calls priced before and after${charges ? `; charges: ${charges}` : ''}; nothing was written`);
          return;
        }
        const started = await startReprice(pool, { ...window, reason: options.reason ?? 'ai-cost reprice' });
        const run = await runWithProgress(pool, started, options.batchSize);
        report(run, await repriceCosts(pool, run.id), await repriceCharges(pool, run.id));
      } finally {
        await pool.end();
      }
    });
}

/**
 * One model's line of a dry run: its cost before and after, each the priced
 * sum with the unpriced calls beside it ("unpriced -> $0.03331",
 * "$0.0012 + 2 unpriced -> $0.0040"), and the delta on the calls priced
 * both times, when there are any; then what would change in the charges to
 * tenants, if anything.
 */
function describePreview(r: RepricePreview): string {
  // Changed calls neither newly priced nor newly unpriced are priced both
  // times, or unpriced both times with another reason: counted as priced
  // only when no call is unpriced both times, and no delta is said when no
  // call can be priced both times.
  const changedOtherwise = r.callsChanged - r.newlyPriced - r.newlyUnpriced;
  const unpricedBothTimes = r.oldUnpricedCalls - r.newlyPriced;
  const pricedBothTimes = r.oldUnpricedCalls < r.calls && r.newUnpricedCalls < r.calls;
  const onCalls = unpricedBothTimes === 0n ? `${changedOtherwise} call(s)` : 'the calls';
  const charges = describeCharges(r.charges);
  return `${r.callsChanged} of ${r.calls} calls change, `
    + `${formatCost(r.oldCostMicros, r.oldUnpricedCalls)} -> ${formatCost(r.newCostMicros, r.newUnpricedCalls)}`
    + (changedOtherwise > 0n && pricedBothTimes ? ` (delta ${formatMicros(r.deltaMicros)} on ${onCalls} priced before and after)` : '')
    + `, ${r.newlyPriced} newly priced, ${r.newlyUnpriced} newly unpriced`
    + (charges ? `; charges: ${charges}` : '');
}

/** Runs the batches, with a progress bar when stdout is a terminal (none in pipes and logs). */
async function runWithProgress(pool: Awaited<ReturnType<typeof createPool>>, run: RepriceRun, batchSize: number): Promise<RepriceRun> {
  const bar = process.stdout.isTTY
    ? new SingleBar({ format: 'reprice run {run} [{bar}] {value}/{total} calls, {changed} changed, ETA {eta_formatted}' }, Presets.shades_classic)
    : undefined;
  bar?.start(Number(run.totalCalls), Number(run.callsDone), { run: String(run.id), changed: String(run.callsChanged) });
  try {
    return await runReprice(pool, run.id, {
      batchSize,
      onBatch: (progress) => bar?.update(Number(progress.callsDone), { changed: String(progress.callsChanged) }),
    });
  } finally {
    bar?.stop();
  }
}

/** What changed in the charges to tenants ("1 re-billed, delta $0.000689, ..."); undefined when nothing did. */
function describeCharges(charges: RepriceCharges): string | undefined {
  const changes = [
    ...(charges.rebilled > 0n ? [`${charges.rebilled} re-billed, delta ${formatMicros(charges.deltaMicros)}`] : []),
    ...(charges.newlyBilled > 0n ? [`${charges.newlyBilled} newly billed, ${formatMicros(charges.newlyBilledMicros)}`] : []),
    ...(charges.noLongerBilled > 0n ? [`${charges.noLongerBilled} no longer billed, were ${formatMicros(charges.noLongerBilledMicros)}`] : []),
  ];
  return changes.length > 0 ? changes.join(', ') : undefined;
}

/**
 * The run's outcome: calls changed; the calls it priced or left unpriced,
 * with what they cost, where there are any (their costs are not in the
 * delta, which a NULL cost would turn into $0); the delta on the calls
 * priced before and after; what changed in the charges to tenants.
 */
function report(run: RepriceRun, costs: RepriceCosts, charges: RepriceCharges): void {
  const pricing = [
    ...(costs.newlyPriced > 0n ? [`${costs.newlyPriced} newly priced, now ${formatMicros(costs.newlyPricedMicros)}`] : []),
    ...(costs.newlyUnpriced > 0n ? [`${costs.newlyUnpriced} newly unpriced, were ${formatMicros(costs.newlyUnpricedMicros)}`] : []),
  ];
  const changes = describeCharges(charges);
  console.log(`reprice run ${run.id}: ${run.callsDone} calls examined, ${run.callsChanged} changed`
    + `${pricing.length > 0 ? ` (${pricing.join(', ')})` : ''}, delta ${formatMicros(run.deltaMicros)} on the calls priced before and after`
    + `${changes ? `; charges: ${changes}` : ''}; every change is in ai_cost.reprice_audit (run_id ${run.id})`);
}
