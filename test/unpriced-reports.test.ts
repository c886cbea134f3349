import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'slonik';
import {
  breakdown, budgetStatus, dailySeries, DIMENSIONS, previewReprice, recentCalls, spendByModel, summary, trends,
  type Dimension,
} from '../src/index.js';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

// Unpriced is not free, in every report: four models, each its own tenant,
// feature and user, so that every split shows the same four cases.
//   normal  priced: 1 micro-dollar per input token, 2 per output token
//   partly  priced from 2025-03-15 on (10 per input token): its call before has no price in force
//   free    priced at 0
//   never   no price at all
// Each figure is null (JSON), empty (CSV) or "unpriced" (table) where all of
// its calls are unpriced, and $0.00 where they are free.

const MARCH = { since: new Date('2025-03-01T00:00:00Z'), until: new Date('2025-04-01T00:00:00Z') };
const JUNE = ['--from', '2025-06-01', '--to', '2025-07-01'];

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES
        ('test', 'normal', '2020-01-01', 1, 2), ('test', 'free', '2020-01-01', 0, 0), ('test', 'partly', '2025-03-15', 10, 0),
        ('test', 'reprice-partly', '2025-06-15', 1, 0);
      INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, feature, user_id, input_tokens, output_tokens)
      SELECT at::timestamptz, 'test', model, status, 'tenant-' || model, 'feature-' || model, 'user-' || model, input, output
        FROM (VALUES ('2025-03-10 10:00Z', 'normal', 'success', 1000, 100), ('2025-03-20 10:00Z', 'normal', 'error', 500, 0),
                     ('2025-03-10 11:00Z', 'free', 'success', 100000, 10),
                     ('2025-03-05 09:00Z', 'never', 'success', 50, 0), ('2025-03-20 12:00Z', 'never', 'success', 70, 0),
                     ('2025-03-10 12:00Z', 'partly', 'success', 100, 0), ('2025-03-20 13:00Z', 'partly', 'success', 30, 0),
                     ('2025-06-10 00:00Z', 'reprice-never', 'success', 3331, 0),
                     ('2025-06-10 00:00Z', 'reprice-partly', 'success', 100, 0), ('2025-06-20 00:00Z', 'reprice-partly', 'success', 200, 0))
             AS c(at, model, status, input, output)`);
  },
});

interface Expected {
  calls: bigint;
  failedCalls: bigint;
  costMicros: bigint | null;
  unpricedCalls: bigint;
  shareOfCost: number | null;
}

// normal 1000 + 2 * 100 + 500; partly 10 * 30 (its first call is unpriced); free 0; never unknown.
const EXPECTED: Record<string, Expected> = {
  normal: { calls: 2n, failedCalls: 1n, costMicros: 1_700n, unpricedCalls: 0n, shareOfCost: 0.85 },
  partly: { calls: 2n, failedCalls: 0n, costMicros: 300n, unpricedCalls: 1n, shareOfCost: 0.15 },
  free: { calls: 1n, failedCalls: 0n, costMicros: 0n, unpricedCalls: 0n, shareOfCost: 0 },
  never: { calls: 2n, failedCalls: 0n, costMicros: null, unpricedCalls: 2n, shareOfCost: null },
};
const MODELS = Object.keys(EXPECTED); // most expensive first, the unknown last

/** Each split's name for a model's rows. */
const KEY_OF: Partial<Record<Dimension, (model: string) => string>> = {
  model: (model) => model,
  tenant: (model) => `tenant-${model}`,
  feature: (model) => `feature-${model}`,
  user: (model) => `user-${model}`,
};

test('spendByModel: the unpriced model\'s cost is null, the free one\'s 0, the partly priced one\'s its priced sum', async (t) => {
  const rows = await spendByModel(db.pool, MARCH);
  t.deepEqual(rows.map((r) => r.model), MODELS);
  for (const r of rows) {
    const e = EXPECTED[r.model]!;
    t.deepEqual([r.costMicros, r.unpricedCalls, r.calls, r.failedCalls], [e.costMicros, e.unpricedCalls, e.calls, e.failedCalls], r.model);
  }
});

test('breakdown by model, tenant, feature and user: null cost and share for the unpriced, 0 for the free', async (t) => {
  for (const [by, keyOf] of Object.entries(KEY_OF) as Array<[Dimension, (model: string) => string]>) {
    const rows = await breakdown(db.pool, by, MARCH);
    t.deepEqual(rows.map((r) => r.key), MODELS.map(keyOf), by);
    for (const [i, model] of MODELS.entries()) {
      const e = EXPECTED[model]!;
      t.deepEqual([rows[i]!.costMicros, rows[i]!.unpricedCalls, rows[i]!.shareOfCost], [e.costMicros, e.unpricedCalls, e.shareOfCost], `${by} ${model}`);
    }
  }
});

test('breakdown by day: a day of only unpriced calls is null, a partly priced day its priced sum', async (t) => {
  const rows = await breakdown(db.pool, 'day', MARCH);
  t.deepEqual(rows.map((r) => [r.key, r.costMicros, r.unpricedCalls]), [
    ['2025-03-05', null, 1n],
    ['2025-03-10', 1_200n, 1n],
    ['2025-03-20', 800n, 1n],
  ]);
});

test('summary: null when every call is unpriced, 0 when free or without calls, the priced sum otherwise', async (t) => {
  const all = await summary(db.pool, MARCH);
  t.deepEqual([all.calls, all.costMicros, all.unpricedCalls], [7n, 2_000n, 3n]);
  for (const model of MODELS) {
    const s = await summary(db.pool, { ...MARCH, model });
    t.deepEqual([s.costMicros, s.unpricedCalls], [EXPECTED[model]!.costMicros, EXPECTED[model]!.unpricedCalls], model);
  }
  const none = await summary(db.pool, { ...MARCH, model: 'no-such-model' });
  t.deepEqual([none.calls, none.costMicros, none.unpricedCalls], [0n, 0n, 0n]);
});

test('dailySeries: each day of each model, null where that day\'s calls are all unpriced', async (t) => {
  const points = await dailySeries(db.pool, MARCH, 'model');
  t.deepEqual(points.map((p) => [p.day, p.key, p.costMicros, p.unpricedCalls]), [
    ['2025-03-05', 'never', null, 1n],
    ['2025-03-10', 'free', 0n, 0n],
    ['2025-03-10', 'normal', 1_200n, 0n],
    ['2025-03-10', 'partly', null, 1n],
    ['2025-03-20', 'never', null, 1n],
    ['2025-03-20', 'normal', 500n, 0n],
    ['2025-03-20', 'partly', 300n, 0n],
  ]);
  const days = await dailySeries(db.pool, MARCH);
  t.deepEqual(days.map((p) => [p.day, p.costMicros, p.unpricedCalls]), [['2025-03-05', null, 1n], ['2025-03-10', 1_200n, 1n], ['2025-03-20', 800n, 1n]]);
});

test('recentCalls: an unpriced call\'s cost is null, a free one\'s 0', async (t) => {
  const [never] = await recentCalls(db.pool, { ...MARCH, model: 'never' }, 1);
  const [free] = await recentCalls(db.pool, { ...MARCH, model: 'free' }, 1);
  t.is(never!.costMicros, null);
  t.not(never!.unpricedReason, null);
  t.is(free!.costMicros, 0n);
});

test('trends: a period of only unpriced calls is null with its count, an empty one 0, a partly priced one its priced sum', async (t) => {
  // Days before now by the database's clock; trends reads the 7-day windows up to the same now.
  await db.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, input_tokens) VALUES
      (now() - interval '1 day', 'test', 'never', 'trend-never', 10),
      (now() - interval '1 day', 'test', 'free', 'trend-free', 10),
      (now() - interval '1 day', 'test', 'never', 'trend-partly', 10),
      (now() - interval '1 day', 'test', 'normal', 'trend-partly', 100),
      (now() - interval '10 days', 'test', 'normal', 'trend-partly', 50)`);
  const never = await trends(db.pool, { tenantId: 'trend-never' });
  t.deepEqual([never.last7DaysMicros, never.last7DaysUnpricedCalls], [null, 1n]);
  t.deepEqual([never.previous7DaysMicros, never.previous7DaysUnpricedCalls], [0n, 0n]);
  t.is(never.change7Days, null);
  t.is(never.projectedMonthMicros === null, never.monthToDateMicros === null);
  const free = await trends(db.pool, { tenantId: 'trend-free' });
  t.deepEqual([free.last7DaysMicros, free.last7DaysUnpricedCalls], [0n, 0n]);
  const partly = await trends(db.pool, { tenantId: 'trend-partly' });
  t.deepEqual([partly.last7DaysMicros, partly.last7DaysUnpricedCalls, partly.previous7DaysMicros], [100n, 1n, 50n]);
  t.is(partly.change7Days, 1);
});

test('budgetStatus: a period of only unpriced calls is unknown, not ok at $0; a free one is ok at 0', async (t) => {
  // One transaction: the calls and the budgets' current period are read at the same now().
  const statuses = await db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`
      INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens) VALUES
        ('test', 'never', 'budget-never', 10), ('test', 'free', 'budget-free', 10),
        ('test', 'never', 'budget-partly', 10), ('test', 'normal', 'budget-partly', 100)`);
    await tx.query(sql.unsafe`
      INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros) VALUES
        ('budget-never', 'tenant', 'budget-never', 'day', 1000), ('budget-free', 'tenant', 'budget-free', 'day', 1000),
        ('budget-partly', 'tenant', 'budget-partly', 'day', 1000)`);
    return budgetStatus(tx);
  });
  const status = (name: string) => statuses.find((s) => s.name === name)!;
  const never = status('budget-never');
  t.deepEqual([never.spentMicros, never.unpricedCalls, never.remainingMicros, never.usedPercent, never.projectedMicros, never.status],
    [null, 1n, null, null, null, 'unknown']);
  const free = status('budget-free');
  t.deepEqual([free.spentMicros, free.unpricedCalls, free.remainingMicros, free.usedPercent, free.status], [0n, 0n, 1000n, 0, 'ok']);
  const partly = status('budget-partly');
  t.deepEqual([partly.spentMicros, partly.unpricedCalls, partly.remainingMicros, partly.usedPercent], [100n, 1n, 900n, 10]);
});

const url = () => ['--database-url', db.url];

test('report --format json: null for the unpriced model, "0" for the free one, for every split', async (t) => {
  const byModel = await runCli(['report', '--month', '2025-03', '--format', 'json', ...url()]);
  t.is(byModel.code, 0, byModel.stderr);
  const models = JSON.parse(byModel.stdout) as Array<{ model: string; costMicros: string | null; unpricedCalls: string; shareOfCost: number | null }>;
  t.deepEqual(models.map((r) => [r.model, r.costMicros, r.unpricedCalls, r.shareOfCost]),
    MODELS.map((m) => [m, EXPECTED[m]!.costMicros?.toString() ?? null, EXPECTED[m]!.unpricedCalls.toString(), EXPECTED[m]!.shareOfCost]));
  // --by model names each row by provider and model, above; the other splits by the dimension.
  for (const [by, keyOf] of Object.entries(KEY_OF).filter(([by]) => by !== 'model')) {
    const cli = await runCli(['report', '--by', by, '--month', '2025-03', '--format', 'json', ...url()]);
    t.is(cli.code, 0, cli.stderr);
    const rows = JSON.parse(cli.stdout) as Array<Record<string, string | null> & { costMicros: string | null; shareOfCost: number | null }>;
    t.deepEqual(rows.map((r) => [r[by], r.costMicros, r.shareOfCost]),
      MODELS.map((m) => [keyOf(m), EXPECTED[m]!.costMicros?.toString() ?? null, EXPECTED[m]!.shareOfCost]), by);
  }
});

test('report --format csv: an empty cost for the unpriced model, 0 for the free one', async (t) => {
  const byModel = await runCli(['report', '--month', '2025-03', '--format', 'csv', ...url()]);
  t.is(byModel.code, 0, byModel.stderr);
  t.deepEqual(byModel.stdout.trim().split('\n'), [
    'provider,model,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost,billed_micros,unbilled_calls',
    'test,normal,2,1,1500,100,1700,0,0.85,,2',
    'test,partly,2,0,130,0,300,1,0.15,,2',
    'test,free,1,0,100000,10,0,0,0,,1',
    'test,never,2,0,120,0,,2,,,2',
  ]);
  const byDay = await runCli(['report', '--by', 'day', '--month', '2025-03', '--format', 'csv', ...url()]);
  t.deepEqual(byDay.stdout.trim().split('\n'), [
    'day,calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost,billed_micros,unbilled_calls',
    '2025-03-05,1,0,50,0,,1,,,1',
    '2025-03-10,3,0,101100,110,1200,1,0.6,,3',
    '2025-03-20,3,1,600,0,800,1,0.4,,3',
  ]);
});

/** The cells of the table row whose first cells are these, trimmed. */
function tableRow(table: string, ...first: string[]): string[] {
  const rows = table.split('\n').filter((line) => line.startsWith('│')).map((line) => line.split('│').slice(1, -1).map((cell) => cell.trim()));
  const row = rows.find((cells) => first.every((value, i) => cells[i] === value));
  if (!row) throw new Error(`no row ${first.join(' ')} in\n${table}`);
  return row;
}

test('report table: "unpriced" with the count beside it, $0.00 only for the free model, bars for the priced ones', async (t) => {
  const cli = await runCli(['report', '--month', '2025-03', ...url()]);
  t.is(cli.code, 0, cli.stderr);
  // provider, model, calls, failed, input, output, cost, share, bar, unpriced
  const [normal, partly, free, never, total] = [...MODELS.map((m) => tableRow(cli.stdout, 'test', m)), tableRow(cli.stdout, 'total')];
  t.deepEqual([normal![6], normal![7], normal![8], normal![9]], ['$0.0017', '85.0%', '████████████████', '']);
  // Only some of its calls are priced: at least what those cost.
  t.deepEqual([partly![6], partly![7], partly![8], partly![9]], ['≥ $0.0003', '15.0%', '██▊', '1']);
  t.deepEqual([free![6], free![7], free![8], free![9]], ['$0.00', '0.0%', '', '']);
  t.deepEqual([never![6], never![7], never![8], never![9]], ['unpriced', '', '', '2']);
  t.deepEqual([total![2], total![6], total![9]], ['7', '≥ $0.002', '3']);
  t.regex(cli.stdout, /3 call\(s\) have no price in force: their cost is unknown and not in the total/);

  const onlyUnpriced = await runCli(['report', '--month', '2025-03', '--model', 'never', ...url()]);
  t.deepEqual([tableRow(onlyUnpriced.stdout, 'total')[6], tableRow(onlyUnpriced.stdout, 'total')[9]], ['unpriced', '2']);
  const onlyFree = await runCli(['report', '--month', '2025-03', '--model', 'free', ...url()]);
  t.is(tableRow(onlyFree.stdout, 'total')[6], '$0.00');

  const byDay = await runCli(['report', '--by', 'day', '--month', '2025-03', ...url()]);
  t.deepEqual([tableRow(byDay.stdout, '2025-03-05')[5], tableRow(byDay.stdout, '2025-03-05')[8]], ['unpriced', '1']);
  t.is(tableRow(byDay.stdout, '2025-03-10')[5], '≥ $0.0012');
});

test('every CSV report names the same figure the same: its columns after the ones that name a row are equal', async (t) => {
  const headers = new Map<string, string[]>();
  for (const by of ['model', ...Object.keys(DIMENSIONS)]) {
    const cli = await runCli(['report', '--by', by, '--month', '2025-03', '--format', 'csv', ...url()]);
    t.is(cli.code, 0, cli.stderr);
    headers.set(by, cli.stdout.split('\n')[0]!.split(','));
  }
  const keyColumns = (by: string) => (by === 'model' ? ['provider', 'model'] : [by]);
  const figures = [...headers].map(([by, header]) => {
    t.deepEqual(header.slice(0, keyColumns(by).length), keyColumns(by), by);
    return header.slice(keyColumns(by).length).join(',');
  });
  t.deepEqual(new Set(figures), new Set(['calls,failed_calls,input_tokens,output_tokens,cost_micros,unpriced_calls,share_of_cost,billed_micros,unbilled_calls']));
});

test('report --month: the calendar month in UTC, in every format', async (t) => {
  const table = await runCli(['report', '--month', '2025-03', ...url()]);
  t.is(table.stdout.split('\n')[0], 'March 2025: 2025-03-01 00:00 to 2025-04-01 00:00 UTC');
  const json = await runCli(['report', '--month', '2025-03', '--format', 'json', ...url()]);
  const explicit = await runCli(['report', '--since', '2025-03-01T00:00:00Z', '--until', '2025-04-01T00:00:00Z', '--format', 'json', ...url()]);
  t.is(json.stdout, explicit.stdout);
  const june = await runCli(['report', '--month', '2025-06', '--format', 'csv', ...url()]);
  t.deepEqual(june.stdout.trim().split('\n').slice(1).map((line) => line.split(',')[1]), ['reprice-partly', 'reprice-never']);
  const folder = await mkdtemp(join(tmpdir(), 'ai-cost-month-'));
  try {
    const html = await runCli(['report', '--month', '2025-03', '--html', join(folder, 'march.html'), ...url()]);
    t.is(html.code, 0, html.stderr);
    t.true(existsSync(join(folder, 'march.html')));
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});

test('report --month: a bad month, or a month with --since or --until, is one line and the usage line', async (t) => {
  const mistakes: Array<[string[], RegExp]> = [
    [['--month', '2025-13'], /'2025-13' is not a month: write it as YYYY-MM, e\.g\. 2026-11/],
    [['--month', '2025-3'], /'2025-3' is not a month/],
    [['--month', 'March'], /'March' is not a month/],
    [['--month', '2025-03', '--since', '2025-02-01'], /'--month <YYYY-MM>' cannot be used with option '--since <when>'/],
    [['--month', '2025-03', '--until', '2025-02-01', '--format', 'csv'], /'--month <YYYY-MM>' cannot be used with option '--until <when>'/],
  ];
  for (const [args, says] of mistakes) {
    const cli = await runCli(['report', ...args, ...url()]);
    t.is(cli.code, 1, args.join(' '));
    t.deepEqual(cli.stderr.trim().split('\n').length, 2, cli.stderr);
    t.regex(cli.stderr.split('\n')[0]!, says);
    t.is(cli.stderr.split('\n')[1], 'Usage: ai-cost report [options] (--help for more)');
    t.is(cli.stdout, '');
  }
});

test.serial('reprice --dry-run: unpriced before is "unpriced", not $0.00; a partly priced side shows both parts', async (t) => {
  // Prices arrive for the June calls: 10 per input token for the model that had none, and an
  // earlier price (2 per token) for the one whose first call came before its price.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES
                    ('test', 'reprice-never', '2020-01-01', 10), ('test', 'reprice-partly', '2025-06-01', 2)`);
  const preview = await previewReprice(db.pool, { from: new Date('2025-06-01T00:00:00Z'), to: new Date('2025-07-01T00:00:00Z') });
  t.deepEqual(preview.map((r) => [r.model, r.oldCostMicros, r.oldUnpricedCalls, r.newCostMicros, r.newUnpricedCalls]), [
    ['reprice-never', null, 1n, 33_310n, 0n],
    ['reprice-partly', 200n, 1n, 400n, 0n],
  ]);
  const cli = await runCli(['reprice', '--dry-run', ...JUNE, ...url()]);
  t.is(cli.code, 0, cli.stderr);
  t.deepEqual(cli.stdout.trim().split('\n'), [
    'test/reprice-never: 1 of 1 calls change, unpriced -> $0.03331, 1 newly priced, 0 newly unpriced',
    'test/reprice-partly: 1 of 2 calls change, $0.0002 + 1 unpriced -> $0.0004, 1 newly priced, 0 newly unpriced',
    'dry run: 2 calls would change (2 newly priced, 0 newly unpriced), delta $0.00 on the calls priced before and after; nothing was written',
  ]);
  // The later price corrected too: one call newly priced, the other repriced.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok) VALUES ('test', 'reprice-partly', '2025-06-16', 3)`);
  const [partly] = await previewReprice(db.pool, { from: new Date('2025-06-01T00:00:00Z'), to: new Date('2025-07-01T00:00:00Z'), model: 'reprice-partly' });
  t.deepEqual([partly!.oldCostMicros, partly!.oldUnpricedCalls, partly!.newCostMicros, partly!.newUnpricedCalls], [200n, 1n, 800n, 0n]);
  const repriced = await runCli(['reprice', '--dry-run', ...JUNE, '--model', 'reprice-partly', ...url()]);
  t.regex(repriced.stdout, /^test\/reprice-partly: 2 of 2 calls change, \$0\.0002 \+ 1 unpriced -> \$0\.0008 \(delta \$0\.0004 on 1 call\(s\) priced before and after\), 1 newly priced/);
});

test.serial('reprice --dry-run: a call unpriced before and after, for another reason, is not said to be priced', async (t) => {
  // Unpriced for want of a price, then for want of a cache-write rate in the price that arrives.
  await db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens, cache_write_tokens, output_tokens)
                  VALUES ('2024-03-10', 'test', 'reprice-reason', 100, 50, 10)`);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('test', 'reprice-reason', '2020-01-01', 1, 1)`);
  const cli = await runCli(['reprice', '--dry-run', '--from', '2024-03-01', '--to', '2024-04-01', '--model', 'reprice-reason', ...url()]);
  t.is(cli.code, 0, cli.stderr);
  t.is(cli.stdout.trim().split('\n')[0], 'test/reprice-reason: 1 of 1 calls change, unpriced -> unpriced, 0 newly priced, 0 newly unpriced');
});
