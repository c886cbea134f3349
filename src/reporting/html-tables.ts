import { formatAtLeast, formatExactDollars, type Micros } from '../money.js';
import type { UnpricedModel } from './unpriced.js';

/**
 * The HTML report's tables: the figures a reader reconciles, so money is
 * shown to the micro-dollar ($1,234.567891) straight from the bigint, counts
 * with thousands separators, a cost with no priced call behind it reads
 * "unpriced", never $0, and one only some of whose calls are priced reads
 * "≥ $x": at least what the priced ones cost.
 */

/** One line of a figure table: the key cells and the measures every table has. */
export interface FigureRow {
  /** The key columns' values; null for calls that did not set the dimension. */
  keys: Array<string | null>;
  calls: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  /** null when every call behind it is unpriced. */
  costMicros: Micros | null;
  unpricedCalls: bigint;
  /** What the calls were charged to their tenants (markups); null when none of them is billed. */
  billedMicros: Micros | null;
  unbilledCalls: bigint;
}

export function formatCount(n: bigint | number): string {
  return n.toLocaleString('en-US');
}

/**
 * part / total as a percentage with two decimals, rounded half up in integer
 * arithmetic; null when either is unknown (unpriced) or nothing was spent.
 */
export function sharePercent(part: Micros | null, total: Micros | null): string | null {
  if (part === null || total === null || total <= 0n) return null;
  const hundredths = (part * 20_000n + total) / (2n * total);
  return `${hundredths / 100n}.${(hundredths % 100n).toString().padStart(2, '0')}%`;
}

/** Priced rows first, most expensive first, then by calls: the order of every table and chart. */
export function byCostDescending<T extends { costMicros: Micros | null; calls: bigint }>(a: T, b: T): number {
  if (a.costMicros !== b.costMicros) {
    if (a.costMicros === null) return 1;
    if (b.costMicros === null) return -1;
    return a.costMicros > b.costMicros ? -1 : 1;
  }
  return a.calls === b.calls ? 0 : a.calls > b.calls ? -1 : 1;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * An amount to the micro-dollar; `unknown` (unpriced, not billed) where it
 * is null, and marked "≥" where `missing` calls behind it have no amount.
 */
const amount = (micros: Micros | null, missing: bigint, unknown: string) =>
  micros === null ? `<td class="num unpriced">${unknown}</td>` : `<td class="num">${formatAtLeast(micros, missing, formatExactDollars)}</td>`;
const money = (micros: Micros | null, unpricedCalls: bigint) => amount(micros, unpricedCalls, 'unpriced');
const number = (n: bigint) => `<td class="num">${formatCount(n)}</td>`;
const share = (text: string | null) => `<td class="num">${text ?? '&#8212;'}</td>`;
const billed = (micros: Micros | null, unbilledCalls: bigint) => amount(micros, unbilledCalls, 'not billed');

/**
 * A table of calls, tokens, cost, share of cost and unpriced calls per key,
 * with the period's totals as its last line; where calls of the period are
 * billed to their tenants (markups), what they were billed and the calls not
 * billed follow. `unsetLabel` stands for a key the calls did not set (no
 * tenant, no feature).
 */
export function figureTable(options: {
  id: string;
  caption: string;
  keyHeadings: string[];
  unsetLabel: string;
  rows: FigureRow[];
  total: Omit<FigureRow, 'keys'>;
}): string {
  const { id, caption, keyHeadings, unsetLabel, rows, total } = options;
  const billing = total.billedMicros !== null;
  const charges = (row: Omit<FigureRow, 'keys'>) => (billing ? `${billed(row.billedMicros, row.unbilledCalls)}${number(row.unbilledCalls)}` : '');
  const key = (value: string | null, index: number) => {
    const tag = index === 0 ? 'th scope="row"' : 'td';
    const close = index === 0 ? 'th' : 'td';
    return value === null ? `<${tag} class="unset">${escapeHtml(unsetLabel)}</${close}>` : `<${tag}>${escapeHtml(value)}</${close}>`;
  };
  const body = rows.map((row) => `    <tr>${row.keys.map(key).join('')}${number(row.calls)}${number(row.inputTokens)}${number(row.outputTokens)}`
    + `${money(row.costMicros, row.unpricedCalls)}${share(sharePercent(row.costMicros, total.costMicros))}${number(row.unpricedCalls)}${charges(row)}</tr>`);
  return `<table id="${id}">
  <caption>${escapeHtml(caption)}</caption>
  <thead><tr>${keyHeadings.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}<th scope="col" class="num">Calls</th>`
    + `<th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th><th scope="col" class="num">Cost (USD)</th>`
    + `<th scope="col" class="num">Share of cost</th><th scope="col" class="num">Unpriced calls</th>`
    + `${billing ? '<th scope="col" class="num">Billed (USD)</th><th scope="col" class="num">Not billed</th>' : ''}</tr></thead>
  <tbody>
${body.join('\n')}
  </tbody>
  <tfoot><tr><th scope="row" colspan="${keyHeadings.length}">Total</th>${number(total.calls)}${number(total.inputTokens)}`
    + `${number(total.outputTokens)}${money(total.costMicros, total.unpricedCalls)}${share(sharePercent(total.costMicros, total.costMicros))}`
    + `${number(total.unpricedCalls)}${charges(total)}</tr></tfoot>
</table>`;
}

const otherReasons = (n: number) => (n === 0 ? '' : ` <span class="note">(and ${formatCount(n)} other reason${n === 1 ? '' : 's'})</span>`);
const hour = (at: Date) => at.toISOString().slice(0, 13).replace('T', ' ') + ':00';

/** The models and reasons that left calls of the period without a cost, or a line saying there are none. */
export function unpricedTable(rows: UnpricedModel[]): string {
  if (rows.length === 0) return '<p id="unpriced-models" class="all-priced">Every call in the period has a price.</p>';
  const body = rows.map((row) => `    <tr><th scope="row">${escapeHtml(row.provider)}</th><td>${escapeHtml(row.model)}</td>`
    + `<td>${escapeHtml(row.serviceTier)}</td><td class="reason">${escapeHtml(row.unpricedReason)}${otherReasons(row.otherReasons)}</td>${number(row.unpricedCalls)}`
    + `${number(row.inputTokens)}${number(row.outputTokens)}<td class="num">${hour(row.firstHour)}</td><td class="num">${hour(row.lastHour)}</td></tr>`);
  return `<table id="unpriced-models">
  <caption>Unpriced models: calls counted, not costed</caption>
  <thead><tr><th scope="col">Provider</th><th scope="col">Model</th><th scope="col">Tier</th><th scope="col">Reason (of the first call)</th>`
    + `<th scope="col" class="num">Unpriced calls</th><th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th>`
    + `<th scope="col" class="num">First hour (UTC)</th><th scope="col" class="num">Last hour (UTC)</th></tr></thead>
  <tbody>
${body.join('\n')}
  </tbody>
</table>
<p class="note">Give them a price (<code>ai-cost prices set &lt;provider&gt; &lt;model&gt; --input ... --output ...</code>) and cost the calls already recorded with <code>ai-cost reprice --unpriced --from ...</code>.</p>`;
}
