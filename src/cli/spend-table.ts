import Table from 'cli-table3';
import { formatMicros } from '../money.js';
import type { ModelSpend } from '../report.js';
import type { BreakdownRow } from '../reporting/queries.js';

export type OutputFormat = 'table' | 'csv' | 'json';

const count = (n: bigint) => n.toLocaleString('en-US');

/** Spend by model as a terminal table with a total row, as CSV, or as JSON (micro-dollars as strings). */
export function renderSpend(rows: ModelSpend[], format: OutputFormat): string {
  if (format === 'json') {
    return JSON.stringify(rows, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2);
  }
  if (format === 'csv') {
    const header = 'provider,model,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls';
    const lines = rows.map((r) =>
      [csvField(r.provider), csvField(r.model), r.calls, r.failedCalls, r.inputTokens, r.outputTokens, r.costMicros, r.unpricedCalls].join(','),
    );
    return [header, ...lines].join('\n');
  }
  if (rows.length === 0) return 'No calls in this window.';
  const table = new Table({
    head: ['provider', 'model', 'calls', 'failed', 'input tokens', 'output tokens', 'cost', 'unpriced'],
    colAligns: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push([r.provider, r.model, count(r.calls), count(r.failedCalls), count(r.inputTokens), count(r.outputTokens),
      formatMicros(r.costMicros), r.unpricedCalls > 0n ? count(r.unpricedCalls) : '']);
  }
  const sum = (pick: (r: ModelSpend) => bigint) => rows.reduce((total, r) => total + pick(r), 0n);
  const unpriced = sum((r) => r.unpricedCalls);
  table.push(['total', '', count(sum((r) => r.calls)), count(sum((r) => r.failedCalls)), count(sum((r) => r.inputTokens)),
    count(sum((r) => r.outputTokens)), formatMicros(sum((r) => r.costMicros)), unpriced > 0n ? count(unpriced) : '']);
  const note = unpriced > 0n ? `\n${count(unpriced)} call(s) have no price in force: their cost is unknown and not in the total.` : '';
  return table.toString() + note;
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
  if (format === 'json') {
    return JSON.stringify(rows, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2);
  }
  if (format === 'csv') {
    const header = `${by},calls,successes,failures,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost`;
    const lines = rows.map((r) => [csvField(r.key ?? ''), r.calls, r.successes, r.failures, r.inputTokens, r.outputTokens,
      r.costMicros, r.unpricedCalls, r.shareOfCost ?? ''].join(','));
    return [header, ...lines].join('\n');
  }
  if (rows.length === 0) return 'No calls in this window.';
  const max = rows.reduce((m, r) => (r.costMicros > m ? r.costMicros : m), 0n);
  const table = new Table({
    head: [by, 'calls', 'failed', 'input tokens', 'output tokens', 'cost', 'share', '', 'unpriced'],
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'left', 'right'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of rows) {
    table.push([r.key ?? '(none)', count(r.calls), count(r.failures), count(r.inputTokens), count(r.outputTokens),
      formatMicros(r.costMicros), r.shareOfCost === null ? '' : `${(r.shareOfCost * 100).toFixed(1)}%`,
      bar(r.costMicros, max), r.unpricedCalls > 0n ? count(r.unpricedCalls) : '']);
  }
  const sum = (pick: (r: BreakdownRow) => bigint) => rows.reduce((total, r) => total + pick(r), 0n);
  const unpriced = sum((r) => r.unpricedCalls);
  table.push(['total', count(sum((r) => r.calls)), count(sum((r) => r.failures)), count(sum((r) => r.inputTokens)),
    count(sum((r) => r.outputTokens)), formatMicros(sum((r) => r.costMicros)), '', '', unpriced > 0n ? count(unpriced) : '']);
  const note = unpriced > 0n ? `\n${count(unpriced)} call(s) have no price in force: their cost is unknown and not in the total.` : '';
  return table.toString() + note;
}
