import { formatAtLeast, type Micros } from '../money.js';
import { byCostDescending, formatCount, sharePercent } from './html-tables.js';
import type { BreakdownRow, DailyPoint, LatencyRow } from './queries.js';

/**
 * The HTML report's charts: the data each Chart.js chart draws, with every
 * value already formatted by the report (valueLabels) so a bar or slice shows
 * the same figure as the tables, and the script that draws them.
 */

// Tableau 10: ten hues readers tell apart; further series continue on the
// golden angle around the hue circle, which never repeats a hue to two
// decimals before 30,000 series, in three lightnesses.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** n colours, all different. */
export function seriesColours(n: number): string[] {
  return Array.from({ length: n }, (_, i) => i < PALETTE.length
    ? PALETTE[i]!
    : `hsl(${((i * 137.508) % 360).toFixed(2)}, 62%, ${[42, 58, 32][i % 3]}%)`);
}

const dollars = (micros: Micros | null) => (micros === null ? null : Number(micros) / 1e6);
const UNSET = '(none)';

export interface ChartInput {
  /** Every UTC day of the period, YYYY-MM-DD. */
  days: string[];
  dailyByModel: DailyPoint[];
  byProvider: BreakdownRow[];
  totalCostMicros: Micros | null;
  byTenant: BreakdownRow[];
  latency: LatencyRow[];
}

/** The four charts' data, as the page's JSON. */
export function chartData(input: ChartInput): Record<string, unknown> {
  return { daily: daily(input), providers: providers(input), tenants: tenants(input), latency: latency(input) };
}

/** Spend per day stacked by model, with each day's total above its column. */
function daily({ days, dailyByModel }: ChartInput) {
  const models = new Map<string, { calls: bigint; costMicros: Micros | null; perDay: Map<string, DailyPoint> }>();
  for (const point of dailyByModel) {
    const name = point.key ?? UNSET;
    const model = models.get(name) ?? { calls: 0n, costMicros: null, perDay: new Map() };
    model.calls += point.calls;
    if (point.costMicros !== null) model.costMicros = (model.costMicros ?? 0n) + point.costMicros;
    model.perDay.set(point.day, point);
    models.set(name, model);
  }
  const ordered = [...models].sort(([, a], [, b]) => byCostDescending(a, b));
  const colours = seriesColours(ordered.length);
  const totals = days.map((day) => {
    const points = ordered.map(([, model]) => model.perDay.get(day)).filter((p) => p !== undefined);
    const priced = points.filter((p) => p.costMicros !== null);
    if (points.length === 0) return '';
    if (priced.length === 0) return 'unpriced';
    return formatAtLeast(priced.reduce((sum, p) => sum + p.costMicros!, 0n), points.reduce((sum, p) => sum + p.unpricedCalls, 0n));
  });
  return {
    labels: days,
    stackTotals: totals,
    datasets: ordered.map(([name, model], i) => ({
      label: name,
      backgroundColor: colours[i],
      data: days.map((day) => dollars(model.perDay.get(day)?.costMicros ?? null)),
      valueLabels: days.map((day) => {
        const point = model.perDay.get(day);
        return point === undefined ? '' : `${formatAtLeast(point.costMicros, point.unpricedCalls)} (${formatCount(point.calls)} calls)`;
      }),
    })),
  };
}

/** Share of spend per provider; a provider with only unpriced calls is named in the legend, without a slice. */
function providers({ byProvider, totalCostMicros }: ChartInput) {
  const rows = [...byProvider].sort(byCostDescending);
  const values = rows.map((row) => formatAtLeast(row.costMicros, row.unpricedCalls));
  return {
    labels: rows.map((row, i) => {
      const name = row.key ?? UNSET;
      if (row.costMicros === null) return `${name}: unpriced (${formatCount(row.unpricedCalls)} calls)`;
      const share = sharePercent(row.costMicros, totalCostMicros);
      return `${name}: ${values[i]}${share === null ? '' : ` (${share})`}`;
    }),
    datasets: [{
      label: 'spend',
      backgroundColor: seriesColours(rows.length),
      data: rows.map((row) => dollars(row.costMicros)),
      valueLabels: values,
    }],
  };
}

/** The ten tenants that spent most. */
function tenants({ byTenant }: ChartInput) {
  const rows = byTenant.filter((row) => row.key !== null && row.costMicros !== null).sort(byCostDescending).slice(0, 10);
  return {
    labels: rows.map((row) => row.key),
    datasets: [{
      label: 'spend',
      backgroundColor: seriesColours(1)[0],
      data: rows.map((row) => dollars(row.costMicros)),
      valueLabels: rows.map((row) => formatAtLeast(row.costMicros, row.unpricedCalls)),
    }],
  };
}

/** Most models a latency chart shows: the busiest, so each bar stays wide enough to carry its value. */
export const LATENCY_MODELS = 12;

function latency({ latency: all }: ChartInput) {
  const rows = all.slice(0, LATENCY_MODELS);
  const keys = ['p50Ms', 'p95Ms', 'p99Ms'] as const;
  const colours = seriesColours(keys.length);
  return {
    labels: rows.map((row) => `${row.provider}/${row.model}`),
    datasets: keys.map((key, i) => ({
      label: key.replace('Ms', ''),
      backgroundColor: colours[i],
      data: rows.map((row) => row[key]),
      valueLabels: rows.map((row) => (row[key] === null ? '' : `${formatCount(row[key])} ms`)),
    })),
  };
}

/**
 * Runs in the page: draws the charts from the JSON in #report-data, with a
 * small plugin that writes each bar's, slice's or column's valueLabel where
 * it fits (turned upright over narrow bars). Each canvas records how many
 * pixels it painted and how many values it wrote, for tests and the curious.
 */
export const CHART_SCRIPT = `
(() => {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const usdTick = (v) => '$' + Number(v).toLocaleString('en-US', { maximumFractionDigits: Math.abs(v) < 1 ? 4 : 2 });
  const valueLabels = {
    id: 'valueLabels',
    afterDatasetsDraw(chart) {
      const { ctx } = chart;
      let written = 0;
      ctx.save();
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = '#222';
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 3;
      ctx.lineJoin = 'round';
      const write = (text, x, y, align, baseline, upright) => {
        ctx.save();
        ctx.translate(x, y);
        if (upright) ctx.rotate(-Math.PI / 2);
        ctx.textAlign = align;
        ctx.textBaseline = baseline;
        ctx.strokeText(text, 0, 0);
        ctx.fillText(text, 0, 0);
        ctx.restore();
        written += 1;
      };
      // Above a vertical bar of the given width: level when it fits, upright when the bar is wide enough for a line.
      const above = (text, x, top, width) => {
        if (!text) return;
        if (ctx.measureText(text).width + 4 <= width) write(text, x, top - 3, 'center', 'bottom', false);
        else if (width >= 11) write(text, x, top - 3, 'left', 'middle', true);
      };
      const type = chart.config.type;
      const horizontal = chart.options.indexAxis === 'y';
      const totals = chart.data.stackTotals;
      if (type === 'doughnut') {
        const meta = chart.getDatasetMeta(0);
        meta.data.forEach((arc, i) => {
          const text = chart.data.datasets[0].valueLabels[i];
          const { x, y } = arc.tooltipPosition();
          const room = arc.circumference * (arc.innerRadius + arc.outerRadius) / 2;
          if (chart.data.datasets[0].data[i] !== null && ctx.measureText(text).width + 6 <= room) write(text, x, y, 'center', 'middle', false);
        });
      } else if (totals) {
        const metas = chart.getSortedVisibleDatasetMetas();
        const width = chart.scales.x.width / chart.data.labels.length * 0.8;
        totals.forEach((text, i) => {
          const tops = metas.filter((m) => chart.data.datasets[m.index].data[i] !== null).map((m) => m.data[i].y);
          above(text, chart.scales.x.getPixelForTick(i), Math.min(chart.scales.y.getPixelForValue(0), ...tops), width);
        });
      } else {
        for (const meta of chart.getSortedVisibleDatasetMetas()) {
          const labels = chart.data.datasets[meta.index].valueLabels;
          meta.data.forEach((bar, i) => {
            if (chart.data.datasets[meta.index].data[i] === null) return;
            if (horizontal) {
              if (bar.height >= 11) write(labels[i], bar.x + 4, bar.y, 'left', 'middle', false);
            }
            else above(labels[i], bar.x, bar.y, bar.width);
          });
        }
      }
      ctx.restore();
      chart.canvas.dataset.valueLabels = String(written);
    },
  };
  const tooltip = {
    callbacks: {
      label: (item) => item.chart.config.type === 'doughnut'
        ? item.label
        : item.dataset.label + ': ' + item.dataset.valueLabels[item.dataIndex],
    },
  };
  const common = { animation: false, responsive: true, maintainAspectRatio: false, plugins: { tooltip } };
  const configs = {
    daily: { type: 'bar', data: data.daily, options: { ...common, scales: { x: { stacked: true }, y: { stacked: true, grace: '30%', ticks: { callback: usdTick } } } } },
    providers: { type: 'doughnut', data: data.providers, options: { ...common, plugins: { tooltip, legend: { position: 'bottom' } } } },
    tenants: { type: 'bar', data: data.tenants, options: { ...common, indexAxis: 'y', plugins: { tooltip, legend: { display: false } }, scales: { x: { grace: '35%', ticks: { callback: usdTick } } } } },
    latency: { type: 'bar', data: data.latency, options: { ...common, scales: { y: { grace: '30%', title: { display: true, text: 'ms' } } } } },
  };
  let drawn = 0;
  for (const [id, config] of Object.entries(configs)) {
    const canvas = document.getElementById(id);
    new Chart(canvas, { ...config, plugins: [valueLabels] });
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) painted += 1;
    canvas.dataset.paintedPixels = String(painted);
    if (painted > 0) drawn += 1;
  }
  document.body.dataset.chartsDrawn = String(drawn);
})();
`;
