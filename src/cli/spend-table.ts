import Table from 'cli-table3';
import { formatMicros } from '../money.js';
import type { BreakdownRow, ModelSpend } from '../reporting/queries.js';

export type OutputFormat = 'table' | 'csv' | 'json';

const count = (n: bigint) => n.toLocaleString('en-US');

/** Spend by model as a terminal table with bars and a total row, as CSV, or as JSON (micro-dollars as strings). */
export function renderSpend(rows: ModelSpend[], format: OutputFormat): string {
  if (format === 'json') return json(rows);
  if (format === 'csv') {
    const header = 'provider,model,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls';
    const lines = rows.map((r) =>
      [csvField(r.provider), csvField(r.model), r.calls, r.failedCalls, r.inputTokens, r.outputTokens, r.costMicros, r.unpricedCalls].join(','),
    );
    return [header, ...lines].join('\n');
  }
  const total = rows.reduce((sum, r) => sum + r.costMicros, 0n);
  return spendTable(['provider', 'model'], rows.map((r) => ({
    keys: [r.provider, r.model], calls: r.calls, failures: r.failedCalls, inputTokens: r.inputTokens,
    outputTokens: r.outputTokens, costMicros: r.costMicros, unpricedCalls: r.unpricedCalls,
    shareOfCost: total === 0n ? null : Number((r.costMicros * 1_000_000n) / total) / 1_000_000,
  })));
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

/** A breakdown (spend per value of one dimension) as a table with bars, CSV or JSON. */
export function renderBreakdown(by: string, rows: BreakdownRow[], format: OutputFormat): string {
  if (format === 'json') return json(rows);
  if (format === 'csv') {
    const header = `${by},calls,successes,failures,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost`;
    const lines = rows.map((r) => [csvField(r.key ?? ''), r.calls, r.successes, r.failures, r.inputTokens, r.outputTokens,
      r.costMicros, r.unpricedCalls, r.shareOfCost ?? ''].join(','));
    return [header, ...lines].join('\n');
  }
  return spendTable([by], rows.map((r) => ({ ...r, keys: [r.key ?? '(none)'] })));
}

/** One row of a spend table: the values that name it, then its figures. */
interface SpendTableRow {
  keys: string[];
  calls: bigint;
  failures: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  costMicros: bigint;
  shareOfCost: number | null;
  unpricedCalls: bigint;
}

/** Rows as a terminal table with a cost bar each and a total row; unpriced calls are named apart. */
function spendTable(keyColumns: string[], rows: SpendTableRow[]): string {
  if (rows.length === 0) return 'No calls in this window.';
  const max = rows.reduce((m, r) => (r.costMicros > m ? r.costMicros : m), 0n);
  const table = new Table({
    head: [...keyColumns, 'calls', 'failed', 'input tokens', 'output tokens', 'cost', 'share', '', 'unpriced'],
    colAligns: [...keyColumns.map(() => 'left' as const), 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'right'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push([...r.keys, count(r.calls), count(r.failures), count(r.inputTokens), count(r.outputTokens),
      formatMicros(r.costMicros), r.shareOfCost === null ? '' : `${(r.shareOfCost * 100).toFixed(1)}%`,
      bar(r.costMicros, max), r.unpricedCalls > 0n ? count(r.unpricedCalls) : '']);
  }
  const sum = (pick: (r: SpendTableRow) => bigint) => rows.reduce((total, r) => total + pick(r), 0n);
  const unpriced = sum((r) => r.unpricedCalls);
  table.push(['total', ...keyColumns.slice(1).map(() => ''), count(sum((r) => r.calls)), count(sum((r) => r.failures)),
    count(sum((r) => r.inputTokens)), count(sum((r) => r.outputTokens)), formatMicros(sum((r) => r.costMicros)), '', '',
    unpriced > 0n ? count(unpriced) : '']);
  const note = unpriced > 0n ? `\n${count(unpriced)} call(s) have no price in force: their cost is unknown and not in the total.` : '';
  return table.toString() + note;
}

/** JSON with bigints (micro-dollars, counts) as exact decimal strings. */
function json(rows: readonly object[]): string {
  return JSON.stringify(rows, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2);
}
