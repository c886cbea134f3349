import Table from 'cli-table3';
import { formatAtLeast, formatMicros } from '../money.js';
import type { BreakdownRow, ModelSpend } from '../reporting/queries.js';

export type OutputFormat = 'table' | 'csv' | 'json';

const count = (n: bigint) => n.toLocaleString('en-US');

/**
 * One row of a spend report, whatever it is split by: the values that name
 * it, then its figures. Every report's table, CSV and JSON are drawn from
 * this shape, so the same figure has the same name in each.
 */
interface SpendRow {
  keys: Array<string | null>;
  calls: bigint;
  failedCalls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** null: calls are behind it and none is priced. */
  costMicros: bigint | null;
  unpricedCalls: bigint;
  shareOfCost: number | null;
  /** What the calls were charged to their tenants; null: none of them is billed. */
  billedMicros: bigint | null;
  unbilledCalls: bigint;
}

/** The figures' columns of every CSV report, after the columns that name a row. */
const CSV_FIGURE_COLUMNS = ['calls', 'failed_calls', 'input_tokens', 'output_tokens', 'cost_micros', 'unpriced_calls', 'share_of_cost',
  'billed_micros', 'unbilled_calls'];

/** Spend by model as a terminal table with bars and a total row, as CSV, or as JSON (micro-dollars as strings). */
export function renderSpend(rows: ModelSpend[], format: OutputFormat): string {
  const priced = rows.reduce((sum, r) => sum + (r.costMicros ?? 0n), 0n);
  return render(['provider', 'model'], rows.map((r) => ({
    keys: [r.provider, r.model], calls: r.calls, failedCalls: r.failedCalls, inputTokens: r.inputTokens,
    outputTokens: r.outputTokens, costMicros: r.costMicros, unpricedCalls: r.unpricedCalls,
    shareOfCost: r.costMicros === null || priced === 0n ? null : roundedShare(r.costMicros, priced),
    billedMicros: r.billedMicros, unbilledCalls: r.unbilledCalls,
  })), format);
}

/** part / whole to 6 decimals, halves rounded up, as round(numeric, 6) gives the breakdowns' share in SQL. */
function roundedShare(part: bigint, whole: bigint): number {
  return Number((part * 2_000_000n + whole) / (2n * whole)) / 1_000_000;
}

/** A breakdown (spend per value of one dimension) as a table with bars, CSV or JSON. */
export function renderBreakdown(by: string, rows: BreakdownRow[], format: OutputFormat): string {
  return render([by], rows.map((r) => ({
    keys: [r.key], calls: r.calls, failedCalls: r.failures, inputTokens: r.inputTokens, outputTokens: r.outputTokens,
    costMicros: r.costMicros, unpricedCalls: r.unpricedCalls, shareOfCost: r.shareOfCost,
    billedMicros: r.billedMicros, unbilledCalls: r.unbilledCalls,
  })), format);
}

function render(keyColumns: string[], rows: SpendRow[], format: OutputFormat): string {
  if (format === 'json') return json(keyColumns, rows);
  return format === 'csv' ? csv(keyColumns, rows) : spendTable(keyColumns, rows);
}

/** Exact micro-dollars; an unknown cost (and its share) and a charge of calls none billed are empty fields, never 0. */
function csv(keyColumns: string[], rows: SpendRow[]): string {
  const lines = rows.map((r) => [...r.keys.map((key) => csvField(key ?? '')), r.calls, r.failedCalls, r.inputTokens,
    r.outputTokens, r.costMicros ?? '', r.unpricedCalls, r.shareOfCost ?? '', r.billedMicros ?? '', r.unbilledCalls].join(','));
  return [[...keyColumns, ...CSV_FIGURE_COLUMNS].join(','), ...lines].join('\n');
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

const BAR_WIDTH = 16;
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of up to BAR_WIDTH cells for value/max, in eighth-cell steps (integer arithmetic, no float). */
export function bar(value: bigint, max: bigint): string {
  if (max <= 0n || value <= 0n) return '';
  const eighths = Number((value * BigInt(BAR_WIDTH * 8)) / max);
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

/**
 * Rows as a terminal table with a cost bar each and a total row. A cost
 * none of whose calls is priced reads "unpriced" (a free one $0.00), one
 * only some of whose calls are priced "≥ $x" (at least: the priced ones),
 * and every row's unpriced calls are counted beside its cost. Where any call of
 * the window is billed to its tenant (ai_cost.markups), what they were
 * billed follows in columns of its own: "not billed" where none of a row's
 * calls is, "≥ $x" where only some are, with the calls not billed counted
 * beside it.
 */
function spendTable(keyColumns: string[], rows: SpendRow[]): string {
  if (rows.length === 0) return 'No calls in this window.';
  const max = rows.reduce((m, r) => (r.costMicros !== null && r.costMicros > m ? r.costMicros : m), 0n);
  const billing = rows.some((r) => r.billedMicros !== null);
  const billed = (micros: bigint | null, unbilledCalls: bigint) => (micros === null ? 'not billed' : formatAtLeast(micros, unbilledCalls));
  const table = new Table({
    head: [...keyColumns, 'calls', 'failed', 'input tokens', 'output tokens', 'cost', 'share', '', 'unpriced',
      ...(billing ? ['billed', 'not billed'] : [])],
    colAligns: [...keyColumns.map(() => 'left' as const), 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'right',
      ...(billing ? ['right' as const, 'right' as const] : [])],
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push([...r.keys.map((key) => key ?? '(none)'), count(r.calls), count(r.failedCalls), count(r.inputTokens),
      count(r.outputTokens), formatAtLeast(r.costMicros, r.unpricedCalls), r.shareOfCost === null ? '' : `${(r.shareOfCost * 100).toFixed(1)}%`,
      bar(r.costMicros ?? 0n, max), r.unpricedCalls > 0n ? count(r.unpricedCalls) : '',
      ...(billing ? [billed(r.billedMicros, r.unbilledCalls), r.unbilledCalls > 0n ? count(r.unbilledCalls) : ''] : [])]);
  }
  const sum = (pick: (r: SpendRow) => bigint) => rows.reduce((total, r) => total + pick(r), 0n);
  const unpriced = sum((r) => r.unpricedCalls);
  const unbilled = sum((r) => r.unbilledCalls);
  const calls = sum((r) => r.calls);
  const cost = unpriced === calls ? null : sum((r) => r.costMicros ?? 0n);
  const totalBilled = unbilled === calls ? null : sum((r) => r.billedMicros ?? 0n);
  table.push(['total', ...keyColumns.slice(1).map(() => ''), count(calls), count(sum((r) => r.failedCalls)),
    count(sum((r) => r.inputTokens)), count(sum((r) => r.outputTokens)), formatAtLeast(cost, unpriced), '', '',
    unpriced > 0n ? count(unpriced) : '', ...(billing ? [billed(totalBilled, unbilled), unbilled > 0n ? count(unbilled) : ''] : [])]);
  const notes = [
    ...(unpriced > 0n ? [`${count(unpriced)} call(s) have no price in force: their cost is unknown and not in the total (≥: at least, the priced calls only).`] : []),
    ...(billing && unbilled > 0n
      ? [`${count(unbilled)} call(s) are not billed (no markup covers them, or their cost is unknown) and are not in the billed total.`]
      : []),
  ];
  return table.toString() + notes.map((note) => `\n${note}`).join('');
}

/**
 * The CSV's columns as JSON objects, whatever the report is split by: the
 * values that name a row under their column's name (provider and model, or
 * the dimension), then the figures. Bigints (micro-dollars, counts) are
 * exact decimal strings; an unknown cost, its share and a charge of calls
 * none billed are null.
 */
function json(keyColumns: string[], rows: SpendRow[]): string {
  const objects = rows.map(({ keys, ...figures }) => ({
    ...Object.fromEntries(keyColumns.map((column, index) => [column, keys[index]])),
    ...figures,
  }));
  return JSON.stringify(objects, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2);
}
