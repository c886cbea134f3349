import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { CommonQueryMethods } from 'slonik';
import { formatAtLeast } from '../money.js';
import { DAY_MS, resolvePeriod, windowLabel, type ReportFilters, type ReportPeriod } from './filters.js';
import { CHART_SCRIPT, chartData, LATENCY_MODELS } from './html-charts.js';
import { byCostDescending, escapeHtml, figureTable, formatCount, unpricedTable, type FigureRow } from './html-tables.js';
import {
  breakdown, dailySeries, latencyByModel, spendByModel, summary,
  type BreakdownRow, type DailyPoint, type LatencyRow, type ModelSpend, type Summary,
} from './queries.js';
import { unpricedModels, type UnpricedModel } from './unpriced.js';

export interface HtmlReportData {
  period: ReportPeriod;
  /** The equality filters (tenant, model, ...) the page is narrowed to. */
  filters: ReportFilters;
  summary: Summary;
  byModel: ModelSpend[];
  byProvider: BreakdownRow[];
  byTenant: BreakdownRow[];
  byFeature: BreakdownRow[];
  unpriced: UnpricedModel[];
  dailyByModel: DailyPoint[];
  latency: LatencyRow[];
}

/**
 * Everything the HTML report shows, read with the query API for one period:
 * the one given (a calendar month, say), in place of the filters' since and
 * until, or else theirs with its defaults (the 30 days up to now).
 */
export async function collectHtmlReport(
  db: CommonQueryMethods,
  filters: ReportFilters = {},
  period: ReportPeriod = resolvePeriod(filters),
): Promise<HtmlReportData> {
  const { since: _since, until: _until, ...equalityFilters } = filters;
  const window = { ...equalityFilters, since: period.since, until: period.until };
  return {
    period,
    filters: equalityFilters,
    summary: await summary(db, window),
    byModel: await spendByModel(db, window),
    byProvider: await breakdown(db, 'provider', window),
    byTenant: await breakdown(db, 'tenant', window),
    byFeature: await breakdown(db, 'feature', window),
    unpriced: await unpricedModels(db, window),
    dailyByModel: await dailySeries(db, window, 'model'),
    latency: await latencyByModel(db, window),
  };
}

/** Every UTC day the window touches, YYYY-MM-DD. */
function daysOf(since: Date, until: Date): string[] {
  const days: string[] = [];
  for (let day = Math.floor(since.getTime() / DAY_MS) * DAY_MS; day < until.getTime(); day += DAY_MS) {
    days.push(new Date(day).toISOString().slice(0, 10));
  }
  return days;
}

const breakdownRows = (rows: BreakdownRow[]): FigureRow[] => [...rows].sort(byCostDescending).map((row) => ({ ...row, keys: [row.key] }));

/**
 * One self-contained page: Chart.js (MIT, drawn on canvas, no network) is
 * inlined, so the file opens offline and can be mailed as is. The tables
 * carry the exact figures; money becomes floating-point dollars only as the
 * height of a bar.
 */
export async function renderHtmlReport(data: HtmlReportData): Promise<string> {
  const chartJs = await readFile(chartJsBundlePath(), 'utf8');
  const s = data.summary;
  const { period } = data;
  const filters = Object.entries(data.filters).filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key} = ${String(value)}`).join(', ');
  const total = {
    calls: s.calls, inputTokens: s.inputTokens, outputTokens: s.outputTokens, costMicros: s.costMicros, unpricedCalls: s.unpricedCalls,
    billedMicros: s.billedMicros, unbilledCalls: s.unbilledCalls,
  };
  const ms = (value: number | null) => (value === null ? 'n/a' : `${formatCount(value)} ms`);
  const figures: Array<[string, string, string]> = [
    ['Spend', formatAtLeast(s.costMicros, s.unpricedCalls), s.unpricedCalls > 0n ? `plus ${formatCount(s.unpricedCalls)} unpriced calls` : 'every call priced'],
    ['Calls', formatCount(s.calls), `${formatCount(s.successes)} succeeded`],
    ['Failed', formatCount(s.failures), 'errors and cancellations, billed too'],
    ['Unpriced calls', formatCount(s.unpricedCalls), `of ${formatCount(data.unpriced.length)} model${data.unpriced.length === 1 ? '' : 's'} (list below)`],
    // What tenants were charged, where markups bill calls: never mixed into Spend.
    ...(s.billedMicros === null ? [] : [['Billed to tenants', formatAtLeast(s.billedMicros, s.unbilledCalls),
      s.unbilledCalls > 0n ? `${formatCount(s.unbilledCalls)} calls not billed` : 'every call billed'] as [string, string, string]]),
    ['Tokens in / out', `${formatCount(s.inputTokens)} / ${formatCount(s.outputTokens)}`, `${formatCount(s.cacheReadTokens)} cache reads`],
    ['Latency avg / p95', s.avgLatencyMs === null ? 'n/a' : `${ms(s.avgLatencyMs)} / ${ms(s.p95LatencyMs)}`, 'successful provider calls'],
  ];
  const charts = chartData({
    days: daysOf(period.since, period.until),
    dailyByModel: data.dailyByModel,
    byProvider: data.byProvider,
    totalCostMicros: s.costMicros,
    byTenant: data.byTenant,
    latency: data.latency,
  });
  const tables = [
    figureTable({
      id: 'by-model', caption: 'By model', keyHeadings: ['Provider', 'Model'], unsetLabel: '(none)', total,
      rows: [...data.byModel].sort(byCostDescending).map((row) => ({ ...row, keys: [row.provider, row.model] })),
    }),
    figureTable({ id: 'by-provider', caption: 'By provider', keyHeadings: ['Provider'], unsetLabel: '(none)', total, rows: breakdownRows(data.byProvider) }),
    figureTable({ id: 'by-feature', caption: 'By feature', keyHeadings: ['Feature'], unsetLabel: '(no feature)', total, rows: breakdownRows(data.byFeature) }),
    figureTable({ id: 'by-tenant', caption: 'By tenant', keyHeadings: ['Tenant'], unsetLabel: '(no tenant)', total, rows: breakdownRows(data.byTenant) }),
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI spend: ${escapeHtml(period.label)}</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
  h2 { font-size: 1.1rem; margin: 2rem 0 .8rem; }
  .meta { color: #666; margin-bottom: 1.5rem; }
  .figures { display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 1.5rem; }
  .figure { flex: 1 1 auto; border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; }
  .figure b { display: block; font-size: 1.3rem; font-variant-numeric: tabular-nums; white-space: nowrap; }
  .figure small { color: #666; }
  .charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1.5rem; }
  .charts .wide { grid-column: 1 / -1; }
  figure { margin: 0; border: 1px solid #eee; border-radius: 6px; padding: 1rem; break-inside: avoid; }
  figcaption { font-weight: 600; margin-bottom: .5rem; }
  .chart { position: relative; height: 320px; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 2rem; font-variant-numeric: tabular-nums; }
  caption { text-align: left; font-weight: 600; padding-bottom: .4rem; }
  th, td { padding: .25rem .6rem; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; white-space: nowrap; }
  td.reason { white-space: normal; min-width: 24rem; }
  thead th { border-bottom: 2px solid #ccc; font-weight: 600; }
  tbody th { font-weight: normal; }
  tfoot th, tfoot td { border-top: 2px solid #ccc; border-bottom: none; font-weight: 600; }
  .num { text-align: right; }
  .unpriced { color: #b45309; font-style: italic; }
  .unset { color: #666; font-style: italic; }
  .note { color: #666; font-size: 12px; }
  @media (max-width: 900px) { .charts { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<h1>AI spend: ${escapeHtml(period.label)}</h1>
<div class="meta">${escapeHtml(`${windowLabel(period.since, period.until)}, end excluded`)}${filters ? ` · ${escapeHtml(filters)}` : ''} · generated by pg-ai-cost</div>
<div class="figures">
${figures.map(([name, value, detail]) => `  <div class="figure">${escapeHtml(name)}<b>${escapeHtml(value)}</b><small>${escapeHtml(detail)}</small></div>`).join('\n')}
</div>
<div class="charts">
  <figure class="wide"><figcaption>Daily spend by model (USD, UTC days; the day's total above each column)</figcaption><div class="chart"><canvas id="daily"></canvas></div></figure>
  <figure><figcaption>Share of spend by provider</figcaption><div class="chart"><canvas id="providers"></canvas></div></figure>
  <figure><figcaption>Top tenants by spend (USD)</figcaption><div class="chart"><canvas id="tenants"></canvas></div></figure>
  <figure class="wide"><figcaption>Latency percentiles by model (ms, successful calls${data.latency.length > LATENCY_MODELS ? `; the ${LATENCY_MODELS} busiest of ${data.latency.length} models` : ''})</figcaption><div class="chart"><canvas id="latency"></canvas></div></figure>
</div>
<h2>Figures</h2>
${tables.join('\n')}
${unpricedTable(data.unpriced)}
<p class="note">Costs are exact to the micro-dollar ($0.000001). Every attempt counts toward spend, failed ones included. Unpriced calls are counted, not costed: a cost reads "unpriced" when no call behind it has a price, and a partly priced cost reads "≥", at least: the sum of its priced calls. Shares are of the priced spend. Percentiles come from log-scale histograms (within 9%).</p>
<script type="application/json" id="report-data">${jsonForScript(charts)}</script>
<script>${chartJs.replaceAll('</script', '<\\/script')}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}

/**
 * Chart.js's browser bundle sits next to its CommonJS entry; its package
 * exports do not list the file, so it is found from the entry point.
 */
function chartJsBundlePath(): string {
  return join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');
}

/** JSON safe inside a <script> element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}
