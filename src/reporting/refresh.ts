import { z } from 'zod';
import { sql, type CommonQueryMethods } from 'slonik';

export interface RefreshResult {
  /** False when another refresh was running: this one skipped at once. */
  refreshed: boolean;
  /** Call changes (inserts, update halves, deletes) folded into the rollups. */
  changesApplied: bigint;
  /** Budget thresholds newly crossed (each also sent as NOTIFY ai_cost_budget). */
  budgetAlerts: bigint;
  durationMs: number;
}

/** Runs SELECT ai_cost.refresh(): rollups, materialized views and budget alerts. */
export async function refresh(db: CommonQueryMethods): Promise<RefreshResult> {
  const row = await db.one(sql.type(z.object({
    refreshed: z.boolean(), changes_applied: z.bigint(), budget_alerts: z.bigint(), duration_ms: z.string(),
  }))`SELECT refreshed, changes_applied, budget_alerts, duration_ms FROM ai_cost.refresh()`);
  return {
    refreshed: row.refreshed,
    changesApplied: row.changes_applied,
    budgetAlerts: row.budget_alerts,
    durationMs: Number(row.duration_ms),
  };
}

export interface RefreshStatus {
  /** When the last refresh completed; null if none ever ran. */
  refreshedAt: Date | null;
  durationMs: number | null;
  changesApplied: bigint | null;
  /** Changes waiting for the next refresh (the live views already include them). */
  pendingChanges: bigint;
}

export async function refreshStatus(db: CommonQueryMethods): Promise<RefreshStatus> {
  const row = await db.one(sql.type(z.object({
    refreshed_at: z.date().nullable(), duration_ms: z.string().nullable(), changes_applied: z.bigint().nullable(),
    pending_changes: z.bigint(),
  }))`SELECT refreshed_at, duration_ms, changes_applied, pending_changes FROM ai_cost.refresh_status`);
  return {
    refreshedAt: row.refreshed_at,
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    changesApplied: row.changes_applied,
    pendingChanges: row.pending_changes,
  };
}
