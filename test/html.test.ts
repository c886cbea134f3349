import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  breakdown, collectHtmlReport, formatMicros, renderHtmlReport, spendByModel, summary, type BreakdownRow,
} from '../src/index.js';
import type { ReportPeriod } from '../src/reporting/filters.js';
import { seriesColours } from '../src/reporting/html-charts.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

const CHROMIUM = '/usr/bin/chromium';

// A calendar month in the past, so nothing depends on today's date.
const MONTH = { since: new Date('2025-11-01T00:00:00Z'), until: new Date('2025-12-01T00:00:00Z') };
const NOVEMBER: ReportPeriod = { ...MONTH, label: 'November 2025' };

// Recent calls of catalog models for the CLI's default window; and in November 2025, twelve priced
// 'test' models ('mNN' costs NN micro-dollars per input token), 'nobody-priced' (never priced),
// 'half-priced' (priced from the 15th), 'shared' served by two providers at two prices, and the
// 'other' provider's 'ghost' (never priced). Calls just outside the month and an unpriced model of
// October test the month's edges.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, output_tokens, total_ms, status)
      SELECT now() - g * interval '3 hours', (ARRAY['openai', 'anthropic'])[1 + g % 2],
             (ARRAY['gpt-4o-mini', 'claude-haiku-4-5'])[1 + g % 2], 'tenant-' || (g % 4), 1000 + g, 100, 200 + g * 3,
             CASE WHEN g % 9 = 0 THEN 'error' ELSE 'success' END
        FROM generate_series(1, 120) AS g`);
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
      SELECT 'test', 'm' || lpad(g::text, 2, '0'), '2020-01-01', g, 2 FROM generate_series(1, 12) AS g
      UNION ALL VALUES ('test', 'half-priced', '2025-11-15'::timestamptz, 3, 3), ('test', 'shared', '2020-01-01', 1, 1)`);
    await db.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, feature, input_tokens, output_tokens, total_ms)
      SELECT '2025-11-01T00:00:00Z'::timestamptz + g * interval '2 hours 23 minutes 7 seconds',
             CASE WHEN g % 17 IN (13, 14) THEN 'other' ELSE 'test' END,
             CASE g % 17 WHEN 12 THEN 'nobody-priced' WHEN 13 THEN 'ghost' WHEN 14 THEN 'shared' WHEN 15 THEN 'shared'
                         WHEN 16 THEN 'half-priced' ELSE 'm' || lpad((1 + g % 12)::text, 2, '0') END,
             CASE WHEN g % 11 = 0 THEN 'error' ELSE 'success' END,
             CASE WHEN g % 6 <> 5 THEN 'tenant-' || (g % 6) END, (ARRAY['chat', 'search', NULL])[1 + g % 3],
             1000 * (1 + g % 7) + g, 10 * g, 3000 + 7 * g
        FROM generate_series(0, 299) AS g`);
    await db.query(`
      INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens, output_tokens, total_ms) VALUES
        ('2025-11-30T23:59:59.999Z', 'test', 'm01', 'tenant-0', 777, 7, 5056),
        ('2025-10-31T23:59:59.999Z', 'test', 'm01', 'tenant-0', 1000000, 0, 5),
        ('2025-12-01T00:00:00Z', 'test', 'm02', 'tenant-1', 1000000, 0, 5),
        ('2025-10-20T10:00:00Z', 'test', 'october-only', 'tenant-1', 10, 10, 5)`);
    // 'other' gets its first price after its calls, and they are costed again: 'ghost' stays unpriced, for
    // another reason (the provider is known now), and until a refresh its old reason is pending with -1.
    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('other', 'shared', '2020-01-01', 5, 5)`);
    await db.query(`UPDATE ai_cost.calls SET input_tokens = input_tokens WHERE provider = 'other'`);
  },
});

// --- Reading the page back -------------------------------------------------------------------------

const decode = (html: string) => html.replace(/<[^>]+>/g, '').replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
  .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&').trim();

interface Cell { text: string; unset: boolean }

/** The rows (body and footer) of the page's table with this id, as cell texts. */
function tableRows(html: string, id: string): { body: Cell[][]; foot: Cell[][] } {
  const table = new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`).exec(html)?.[1];
  if (table === undefined) throw new Error(`no table #${id} on the page`);
  const rows = (part: string) => [...(new RegExp(`<${part}>([\\s\\S]*?)</${part}>`).exec(table)?.[1] ?? '').matchAll(/<tr>([\s\S]*?)<\/tr>/g)]
    .map((row) => [...row[1]!.matchAll(/<(th|td)([^>]*)>([\s\S]*?)<\/\1>/g)].map((cell) => ({ text: decode(cell[3]!), unset: /class="unset"/.test(cell[2]!) })));
  return { body: rows('tbody'), foot: rows('tfoot') };
}

/** "1,234,567" as a bigint; a number without its separators is a failure. */
function count(text: string): bigint {
  if (!/^\d{1,3}(,\d{3})*$/.test(text)) throw new Error(`'${text}' is not a count with thousands separators`);
  return BigInt(text.replaceAll(',', ''));
}

/** "$1,234.567891" as micro-dollars, "unpriced" as null. */
function micros(text: string): bigint | null {
  if (text === 'unpriced') return null;
  const match = /^\$(\d{1,3}(?:,\d{3})*)\.(\d{6})$/.exec(text);
  if (!match) throw new Error(`'${text}' is not an exact dollar amount`);
  return BigInt(match[1]!.replaceAll(',', '')) * 1_000_000n + BigInt(match[2]!);
}

/** "12.34%" as a number of percent, the dash as null. */
function percent(text: string): number | null {
  if (text === '\u2014') return null;
  const match = /^(\d{1,3}\.\d{2})%$/.exec(text);
  if (!match) throw new Error(`'${text}' is not a percentage with two decimals`);
  return Number(match[1]);
}

/** A map in key order, so two maps compare by content alone. */
const sorted = <V>(map: Map<string | null, V>) => new Map([...map].sort(([a], [b]) => String(a).localeCompare(String(b))));

interface Figures { calls: bigint; inputTokens: bigint; outputTokens: bigint; costMicros: bigint | null; share: number | null; unpricedCalls: bigint }

/** A figure table's rows keyed by their key cells joined with '/' (null keys as null). */
function figureTable(html: string, id: string, keyCells: number): { rows: Map<string | null, Figures>; total: Figures } {
  const parse = (cells: Cell[], keys: number): Figures => {
    const [calls, input, output, cost, share, unpriced] = cells.slice(keys).map((cell) => cell.text);
    // A cost is marked "≥" exactly when it is the sum of some of its calls only.
    const unpricedCalls = count(unpriced!);
    const atLeast = cost!.startsWith('≥ ');
    const costMicros = micros(atLeast ? cost!.slice(2) : cost!);
    if (atLeast !== (costMicros !== null && unpricedCalls > 0n)) throw new Error(`#${id}: '${cost}' with ${unpricedCalls} unpriced call(s)`);
    return { calls: count(calls!), inputTokens: count(input!), outputTokens: count(output!), costMicros, share: percent(share!), unpricedCalls };
  };
  const { body, foot } = tableRows(html, id);
  const rows = new Map(body.map((cells) => [cells[0]!.unset ? null : cells.slice(0, keyCells).map((c) => c.text).join('/'), parse(cells, keyCells)] as const));
  if (rows.size !== body.length) throw new Error(`#${id} has a key twice`);
  return { rows, total: parse(foot[0]!, 1) };
}

const figure = (html: string, name: string) => decode(new RegExp(`<div class="figure">${name}<b>(.*?)</b>`).exec(html)?.[1] ?? '');

interface ChartJson { labels: string[]; stackTotals?: string[]; datasets: Array<{ label: string; backgroundColor: string | string[]; data: Array<number | null>; valueLabels: string[] }> }
const chartsOf = (html: string) => JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/.exec(html)![1]!) as Record<string, ChartJson>;

async function novemberPage(): Promise<string> {
  return renderHtmlReport(await collectHtmlReport(db.pool, {}, NOVEMBER));
}

/** The ledger's own figures for November, grouped by the given columns of ai_cost.calls. */
async function ledger(columns: string): Promise<Map<string | null, Figures>> {
  const rows = await db.query<{ key: string; calls: string; input: string; output: string; cost: string | null; share: string | null; unpriced: string }>(`
    SELECT concat_ws('/', ${columns}) AS key, count(*) AS calls, coalesce(sum(input_tokens), 0) AS input, coalesce(sum(output_tokens), 0) AS output,
           sum(cost_micros) AS cost, round(100 * sum(cost_micros) / sum(sum(cost_micros)) OVER (), 2) AS share,
           count(*) FILTER (WHERE cost_micros IS NULL) AS unpriced
      FROM ai_cost.calls WHERE created_at >= $1 AND created_at < $2 GROUP BY ${columns}`, [NOVEMBER.since, NOVEMBER.until]);
  return new Map(rows.map((r) => [r.key === '' ? null : r.key, {
    calls: BigInt(r.calls), inputTokens: BigInt(r.input), outputTokens: BigInt(r.output), costMicros: r.cost === null ? null : BigInt(r.cost),
    share: r.share === null ? null : Number(r.share), unpricedCalls: BigInt(r.unpriced),
  }]));
}

// --- Tests ----------------------------------------------------------------------------------------

test('every figure of a calendar month\'s page equals the API\'s, and the ledger\'s, for that month', async (t) => {
  const html = await novemberPage();
  const s = await summary(db.pool, MONTH);
  t.regex(html, /<h1>AI spend: November 2025<\/h1>/);
  t.regex(html, /2025-11-01 00:00 to 2025-12-01 00:00 UTC, end excluded/);

  const apiTotal = { calls: s.calls, inputTokens: s.inputTokens, outputTokens: s.outputTokens, costMicros: s.costMicros, share: 100, unpricedCalls: s.unpricedCalls };
  const fromApi = (r: BreakdownRow) => ({
    calls: r.calls, inputTokens: r.inputTokens, outputTokens: r.outputTokens, costMicros: r.costMicros, unpricedCalls: r.unpricedCalls,
  });
  const withoutShare = ({ share: _share, ...rest }: Figures) => rest;

  const models = figureTable(html, 'by-model', 2);
  t.deepEqual(withoutShare(models.total), withoutShare(apiTotal));
  t.is(models.total.share, 100);
  t.deepEqual(sorted(new Map([...models.rows].map(([key, row]) => [key, withoutShare(row)]))), sorted(new Map((await spendByModel(db.pool, MONTH)).map((r) => [
    `${r.provider}/${r.model}`, { calls: r.calls, inputTokens: r.inputTokens, outputTokens: r.outputTokens, costMicros: r.costMicros, unpricedCalls: r.unpricedCalls },
  ]))), 'by model: the API\'s spendByModel');
  t.deepEqual(sorted(models.rows), sorted(await ledger('provider, model')), 'by model: the ledger, shares included');

  for (const [id, by, column] of [['by-provider', 'provider', 'provider'], ['by-tenant', 'tenant', 'tenant_id'], ['by-feature', 'feature', 'feature']] as const) {
    const page = figureTable(html, id, 1);
    const api = await breakdown(db.pool, by, MONTH);
    t.deepEqual(withoutShare(page.total), withoutShare(apiTotal), `${id} total: the API's summary`);
    t.deepEqual(sorted(new Map([...page.rows].map(([key, row]) => [key, withoutShare(row)]))), sorted(new Map(api.map((r) => [r.key, fromApi(r)]))), `${id}: the API's breakdown`);
    for (const r of api) {
      const shown = page.rows.get(r.key)!.share;
      t.true(r.shareOfCost === null ? shown === null : Math.abs(shown! - r.shareOfCost * 100) <= 0.005 + 1e-9, `${id} ${r.key}: share ${shown} is the API's ${r.shareOfCost}`);
    }
    t.deepEqual(sorted(page.rows), sorted(await ledger(column)), `${id}: the ledger, shares included`);
  }

  t.true(s.costMicros !== null && s.unpricedCalls > 0n, 'November has priced and unpriced calls');
  t.is(figure(html, 'Spend'), `≥ ${formatMicros(s.costMicros)}`, 'the priced calls\' cost, marked as at least');
  t.is(count(figure(html, 'Calls')), s.calls);
  t.is(count(figure(html, 'Unpriced calls')), s.unpricedCalls);
  t.is(figure(html, 'Latency avg / p95'), `${s.avgLatencyMs!.toLocaleString('en-US')} ms / ${s.p95LatencyMs!.toLocaleString('en-US')} ms`);
  t.regex(figure(html, 'Latency avg / p95'), /^\d,\d{3} ms \/ \d,\d{3} ms$/, 'milliseconds with thousands separators');

  const daily = chartsOf(html).daily!;
  t.is(daily.labels.length, 30, 'one column per day of November');
  t.is(daily.labels[0], '2025-11-01');
  t.is(daily.labels.at(-1), '2025-11-30');
});

test('the unpriced models are those of the period, adding up to its unpriced calls', async (t) => {
  const html = await novemberPage();
  const expected = await db.query<Record<string, string>>(`
    SELECT provider, model, service_tier, (array_agg(unpriced_reason ORDER BY created_at))[1] AS reason,
           count(DISTINCT unpriced_reason) - 1 AS other_reasons, count(*) AS calls, sum(input_tokens) AS input, sum(output_tokens) AS output
      FROM ai_cost.calls WHERE cost_micros IS NULL AND created_at >= $1 AND created_at < $2
     GROUP BY 1, 2, 3 ORDER BY count(*) DESC, 1, 2, 3`, [NOVEMBER.since, NOVEMBER.until]);
  const shown = tableRows(html, 'unpriced-models').body.map((cells) => cells.map((cell) => cell.text));
  const n = (text: string) => BigInt(text).toLocaleString('en-US');
  t.deepEqual(shown.map((cells) => cells.slice(0, 7)), expected.map((e) => [
    e.provider, e.model, e.service_tier, e.other_reasons === '0' ? e.reason : `${e.reason} (and ${e.other_reasons} other reasons)`,
    n(e.calls!), n(e.input!), n(e.output!),
  ]));
  t.deepEqual(shown.map((cells) => cells[1]).sort(), ['ghost', 'half-priced', 'nobody-priced']);
  t.is(shown.reduce((sum, cells) => sum + count(cells[4]!), 0n), (await summary(db.pool, MONTH)).unpricedCalls);
  const allTime = await db.query<{ model: string }>(`SELECT model FROM ai_cost.unpriced_models`);
  t.true(allTime.some((row) => row.model === 'october-only'), 'the all-time view lists October\'s model, the month does not');
});

test('a figure with no priced call behind it reads "unpriced", a partly priced one its priced sum and unpriced count', async (t) => {
  const html = await novemberPage();
  const models = figureTable(html, 'by-model', 2).rows;
  t.like(models.get('test/nobody-priced'), { costMicros: null, share: null });
  t.true(models.get('test/nobody-priced')!.unpricedCalls > 0n);
  const ghost = models.get('other/ghost')!;
  t.is(ghost.costMicros, null);
  t.like(figureTable(html, 'by-provider', 1).rows.get('other'), {
    costMicros: models.get('other/shared')!.costMicros, unpricedCalls: ghost.calls,
  }, 'a provider with an unpriced model: the priced sum, and the unpriced calls beside it');
  const half = models.get('test/half-priced')!;
  t.true(half.costMicros! > 0n && half.unpricedCalls > 0n && half.unpricedCalls < half.calls, 'priced sum with its unpriced count');
  const row = /<tr><th scope="row">test<\/th><td>nobody-priced<\/td>.*?<\/tr>/.exec(html)![0];
  t.regex(row, /<td class="num unpriced">unpriced<\/td>/);
  t.notRegex(row, /\$0\.0/);
  const providers = chartsOf(html).providers!;
  t.true(providers.labels.some((label) => /^other: ≥ \$/.test(label)), 'a partly priced provider shows its priced spend, as at least');
  t.is(chartsOf(html).daily!.datasets.find((d) => d.label === 'nobody-priced')!.data.filter((v) => v !== null).length, 0, 'no zero-height $0 bars');
});

test('the charts mark a partly priced figure "≥" as the tables do, and no other', async (t) => {
  const html = await novemberPage();
  const charts = chartsOf(html);
  const days = await db.query<{ day: string; partly: boolean }>(`
    SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
           bool_or(cost_micros IS NULL) AND bool_or(cost_micros IS NOT NULL) AS partly
      FROM ai_cost.calls WHERE created_at >= '2025-11-01Z' AND created_at < '2025-12-01Z' GROUP BY 1`);
  t.true(days.some((d) => d.partly) && days.some((d) => !d.partly), 'days of both kinds');
  const daily = charts.daily!;
  for (const { day, partly } of days) {
    t.is(daily.stackTotals![daily.labels.indexOf(day)]!.startsWith('≥ $'), partly, `${day}'s total`);
  }
  const tenants = figureTable(html, 'by-tenant', 1).rows;
  const chart = charts.tenants!;
  t.true(chart.labels.length > 1);
  chart.labels.forEach((tenant, i) => {
    t.is(chart.datasets[0]!.valueLabels[i]!.startsWith('≥ $'), tenants.get(tenant)!.unpricedCalls > 0n, `tenant ${tenant}`);
  });
  t.true(chart.datasets[0]!.valueLabels.some((label) => label.startsWith('≥ $')), 'a tenant with unpriced calls');
});

test('every series of every chart has its own colour', async (t) => {
  const charts = chartsOf(await novemberPage());
  const daily = charts.daily!.datasets;
  t.true(daily.length >= 16, `${daily.length} models a day`);
  t.is(new Set(daily.map((d) => d.backgroundColor)).size, daily.length, 'daily spend by model');
  const slices = charts.providers!.datasets[0]!.backgroundColor as string[];
  t.is(new Set(slices).size, charts.providers!.labels.length, 'provider slices');
  t.is(new Set(charts.latency!.datasets.map((d) => d.backgroundColor)).size, 3, 'latency percentiles');
  t.is(new Set(seriesColours(5_000)).size, 5_000, 'the palette never repeats');
});

/** Loads the page in headless Chromium, lets its scripts run, and returns the DOM it ended with. */
function renderedDom(file: string, profile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom',
      `file://${file}`,
    ], { timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}

const CHARTS = ['daily', 'providers', 'latency', 'tenants'];

/** Asserts that Chromium drew all four charts of the page, each with its values written on it. */
async function assertDrawn(t: import('ava').ExecutionContext, file: string, dir: string): Promise<void> {
  const dom = await renderedDom(file, join(dir, 'profile'));
  t.regex(dom, /<body[^>]*data-charts-drawn="4"/, 'all four charts put pixels on their canvas');
  for (const id of CHARTS) {
    const canvas = new RegExp(`<canvas id="${id}"[^>]*>`).exec(dom)?.[0] ?? '';
    t.true(Number(/data-painted-pixels="(\d+)"/.exec(canvas)?.[1]) > 1000, `chart ${id} is drawn (${canvas})`);
    t.true(Number(/data-value-labels="(\d+)"/.exec(canvas)?.[1]) > 0, `chart ${id} carries its values (${canvas})`);
  }
}

test('the HTML report is one offline page whose four charts draw in Chromium with their values', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.log('skipped: no Chromium at /usr/bin/chromium (apt-get install chromium)');
    t.pass();
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ai-cost-html-'));
  try {
    const file = join(dir, 'report.html');
    const cli = await runCli(['report', '--html', file, '--since', '30d', '--database-url', db.url]);
    t.is(cli.code, 0, cli.stderr);
    const html = await readFile(file, 'utf8');
    // Self-contained: no script, style or image fetched from anywhere.
    t.notRegex(html, /<(script|link|img)[^>]+(src|href)=/i);
    t.regex(html, /tenant-\d/);
    await assertDrawn(t, file, dir);
    const month = join(dir, 'november.html');
    await writeFile(month, await novemberPage());
    await assertDrawn(t, month, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
