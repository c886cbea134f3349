import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';

export interface RefreshResult {
  /** False when another session was refreshing the rollups: this run skipped them at once. */
  refreshed: boolean;
  /** Call changes (inserts, update halves, deletes) folded into the rollups. */
  changesApplied: bigint;
  /** Whether the windowed materialized views were rebuilt (not asked, or another session was at it). */
  viewsRefreshed: boolean;
  /** Budget thresholds newly crossed (each also sent as NOTIFY ai_cost_budget). */
  budgetAlerts: bigint;
  durationMs: number;
}

/**
 * Runs ai_cost.refresh(): rollups and budget alerts, and the materialized
 * views unless `views` is false (their cost follows the 30-day window).
 */
export async function refresh(db: CommonQueryMethods, options: { views?: boolean } = {}): Promise<RefreshResult> {
  const row = await db.one(sql.type(z.object({
    refreshed: z.boolean(), changes_applied: z.bigint(), views_refreshed: z.boolean(), budget_alerts: z.bigint(), duration_ms: z.string(),
  }))`SELECT refreshed, changes_applied, views_refreshed, budget_alerts, duration_ms
        FROM ai_cost.refresh(views => ${options.views ?? true})`);
  return {
    refreshed: row.refreshed,
    changesApplied: row.changes_applied,
    viewsRefreshed: row.views_refreshed,
    budgetAlerts: row.budget_alerts,
    durationMs: Number(row.duration_ms),
  };
}

export interface RefreshStatus {
  /** When the rollups were last refreshed; null if never. */
  refreshedAt: Date | null;
  /** When the materialized views were last rebuilt; null if never. */
  viewsRefreshedAt: Date | null;
  durationMs: number | null;
  changesApplied: bigint | null;
  /** New calls and changes waiting for the next refresh (the live views already include them). */
  pendingChanges: bigint;
  /** Since when calls have waited for open transactions that may still write below them; null when none wait. */
  heldBackSince: Date | null;
  /** Backends (pg_stat_activity.pid) of those transactions, as of the last refresh. */
  heldBackByPids: number[];
  /**
   * On a distributed ledger: since when updates and deletes already folded
   * have stayed on the shards for transactions still open; null when none.
   */
  shardChangesKeptSince: Date | null;
  /** Backends of those transactions. */
  shardChangesKeptForPids: number[];
}

export async function refreshStatus(db: CommonQueryMethods): Promise<RefreshStatus> {
  const row = await db.one(sql.type(z.object({
    refreshed_at: z.date().nullable(), views_refreshed_at: z.date().nullable(), duration_ms: z.string().nullable(), changes_applied: z.bigint().nullable(),
    pending_changes: z.bigint(), held_back_since: z.date().nullable(), held_back_by_pids: z.array(z.number()).nullable(),
    shard_changes_kept_since: z.date().nullable(), shard_changes_kept_for_pids: z.array(z.number()).nullable(),
  }))`SELECT refreshed_at, views_refreshed_at, duration_ms, changes_applied, pending_changes, held_back_since, held_back_by_pids,
             shard_changes_kept_since, shard_changes_kept_for_pids
        FROM ai_cost.refresh_status`);
  return {
    refreshedAt: row.refreshed_at,
    viewsRefreshedAt: row.views_refreshed_at,
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    changesApplied: row.changes_applied,
    pendingChanges: row.pending_changes,
    heldBackSince: row.held_back_since,
    heldBackByPids: row.held_back_by_pids ?? [],
    shardChangesKeptSince: row.shard_changes_kept_since,
    shardChangesKeptForPids: row.shard_changes_kept_for_pids ?? [],
  };
}
