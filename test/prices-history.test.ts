import test from 'ava';
import { runCli } from './support/cli.js';
import { useTestDatabase } from './support/database.js';

// `ai-cost prices history PROVIDER MODEL` and `prices at TIME`: what was in
// force when, exactly as stored, with who set each price.

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, service_tier, tenant_id, valid_from, input_per_mtok, output_per_mtok,
                                  cache_read_per_mtok, source, checked_on, from_price_list) VALUES
        ('hist', 'fixture-model', 'standard', NULL, '-infinity', 2.50, 10, 1.25, 'https://example.test/list.json', '2026-01-02', true),
        ('hist', 'fixture-model', 'batch', NULL, '2026-01-01', 1.25, 5, NULL, 'https://example.test/list.json', '2026-01-02', true),
        ('hist', 'fixture-model', 'standard', 'bigco', '2026-02-01', 1.8, 7.2, NULL, 'contract 42', '2026-02-01', false),
        ('hist', 'fixture-model', 'standard', NULL, '2026-03-15 12:00:00+00', 2, 8, NULL, 'our own', '2026-03-15', false),
        ('hist', 'fixture-other', 'standard', NULL, '2026-01-01', 9, 9, NULL, NULL, NULL, false);
      UPDATE ai_cost.prices SET reasoning_per_mtok = 3, image_output_per_mtok = 40 WHERE provider = 'hist' AND model = 'fixture-other';
      INSERT INTO ai_cost.prices (provider, model, valid_from, unit, unit_price) VALUES ('hist', 'fixture-image', '2026-01-01', 'image', 0.04);`);
  },
});

const cli = (...args: string[]) => runCli(['prices', ...args], { DATABASE_URL: db.url });

test('history lists every row of the model, oldest first, with its dates, who set it and its source', async (t) => {
  const result = await cli('history', 'hist', 'fixture-model');
  t.is(result.code, 0, result.stderr);
  const lines = result.stdout.split('\n');
  t.is(lines[0], 'hist/fixture-model');
  t.regex(lines[2]!, /from .* to .* tier .* tenant .* hours .* input .* output .* cache read .* also .* set by .* source .* checked/);
  const rows = lines.filter((line) => /always|^│ 20/.test(line)).map((line) => line.split('│').slice(1, -1).map((cell) => cell.trim()));
  t.deepEqual(rows.map((r) => [r[0], r[1], r[2], r[3], r[5], r[6], r[7], r[8], r[19], r[20], r[21]]), [
    ['always', '2026-03-15 12:00:00Z', 'standard', '', '2.50', '10', '1.25', '', 'price list', 'https://example.test/list.json', '2026-01-02'],
    ['2026-01-01', 'in force', 'batch', '', '1.25', '5', '', '', 'price list', 'https://example.test/list.json', '2026-01-02'],
    ['2026-02-01', 'in force', 'standard', 'bigco', '1.8', '7.2', '', '', 'yours', 'contract 42', '2026-02-01'],
    ['2026-03-15 12:00:00Z', 'in force', 'standard', '', '2', '8', '', '', 'yours', 'our own', '2026-03-15'],
  ]);
  t.notRegex(result.stdout, /fixture-other/);
});

test('history as JSON and CSV: exact rates as stored, NULL as null or an empty field, never 0', async (t) => {
  const json = await cli('history', 'hist', 'fixture-model', '--format', 'json');
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  t.is(rows.length, 4);
  t.like(rows[0], { service_tier: 'standard', valid_from: null, valid_to: '2026-03-15T12:00:00.000Z', input_per_mtok: '2.50',
    cache_read_per_mtok: '1.25', cache_write_per_mtok: null, origin: 'price list', catalog: null, above_input_tokens: '0' });
  t.like(rows[2], { tenant_id: 'bigco', origin: 'yours', source: 'contract 42' });

  const csv = await cli('history', 'hist', 'fixture-model', '--format', 'csv');
  t.is(csv.code, 0, csv.stderr);
  t.deepEqual(csv.stdout.trimEnd().split('\n'), [
    'provider,model,service_tier,above_input_tokens,tenant_id,valid_from,valid_to,input_per_mtok,output_per_mtok,cache_read_per_mtok,'
      + 'cache_write_per_mtok,cache_write_1h_per_mtok,audio_input_per_mtok,audio_output_per_mtok,reasoning_per_mtok,cache_read_audio_per_mtok,'
      + 'image_input_per_mtok,image_output_per_mtok,video_input_per_mtok,unit,unit_price,unit_prices,rates_from,daily_from,daily_to,time_zone,'
      + 'origin,catalog,source,checked_on',
    'hist,fixture-model,standard,0,,,2026-03-15T12:00:00.000Z,2.50,10,1.25,,,,,,,,,,,,,,,,,price list,,https://example.test/list.json,2026-01-02',
    'hist,fixture-model,batch,0,,2026-01-01T00:00:00.000Z,,1.25,5,,,,,,,,,,,,,,,,,,price list,,https://example.test/list.json,2026-01-02',
    'hist,fixture-model,standard,0,bigco,2026-02-01T00:00:00.000Z,,1.8,7.2,,,,,,,,,,,,,,,,,,yours,,contract 42,2026-02-01',
    'hist,fixture-model,standard,0,,2026-03-15T12:00:00.000Z,,2,8,,,,,,,,,,,,,,,,,,yours,,our own,2026-03-15',
  ]);
});

test('history of a catalog model says which release shipped each row', async (t) => {
  const json = await cli('history', 'anthropic', 'claude-3-opus-20240229', '--format', 'json');
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ service_tier: string; origin: string; catalog: string; cache_write_1h_per_mtok: string }>;
  t.deepEqual(rows.map((r) => [r.service_tier, r.origin, r.catalog, r.cache_write_1h_per_mtok]),
    [['batch', 'catalog', '0.1.0', '15'], ['standard', 'catalog', '0.1.0', '30']]);
  const table = await cli('history', 'anthropic', 'claude-3-opus-20240229');
  t.regex(table.stdout, /│ catalog 0\.1\.0 /);
});

test('history of an id without prices says so, and that the id must be exact', async (t) => {
  const result = await cli('history', 'hist', 'fixture');
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^no prices for hist\/fixture \(the exact id/);
  t.deepEqual(JSON.parse((await cli('history', 'hist', 'fixture', '--format', 'json')).stdout), []);
});

test('at TIME gives the whole book in force at that instant', async (t) => {
  const csv = await cli('at', '2026-02-15T00:00:00Z', '--format', 'csv');
  t.is(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^provider,model,service_tier,/);
  t.deepEqual(lines.filter((line) => line.startsWith('hist,')), [
    'hist,fixture-image,standard,0,,2026-01-01T00:00:00.000Z,,,,,,,,,,,,,,image,0.04,,,,,,yours,,,',
    'hist,fixture-model,batch,0,,2026-01-01T00:00:00.000Z,,1.25,5,,,,,,,,,,,,,,,,,,price list,,https://example.test/list.json,2026-01-02',
    'hist,fixture-model,standard,0,,,2026-03-15T12:00:00.000Z,2.50,10,1.25,,,,,,,,,,,,,,,,,price list,,https://example.test/list.json,2026-01-02',
    'hist,fixture-model,standard,0,bigco,2026-02-01T00:00:00.000Z,,1.8,7.2,,,,,,,,,,,,,,,,,,yours,,contract 42,2026-02-01',
    'hist,fixture-other,standard,0,,2026-01-01T00:00:00.000Z,,9,9,,,,,,3,,,40,,,,,,,,,yours,,,',
  ]);
  t.true(lines.some((line) => line.startsWith('anthropic,claude-3-opus-20240229,standard,0,,,,15,75,')), 'the catalog is in the book');

  // Before the batch and other rows began, and after the standard price changed.
  const later = JSON.parse((await cli('at', '2026-03-15T12:00:00Z', '--format', 'json')).stdout) as Array<Record<string, unknown>>;
  t.deepEqual(later.filter((r) => r.provider === 'hist' && r.model === 'fixture-model' && r.tenant_id === null && r.service_tier === 'standard')
    .map((r) => r.input_per_mtok), ['2']);
  const earlier = JSON.parse((await cli('at', '2025-12-31T23:59:59Z', '--format', 'json')).stdout) as Array<Record<string, unknown>>;
  t.deepEqual(earlier.filter((r) => r.provider === 'hist').map((r) => [r.model, r.service_tier, r.input_per_mtok, r.unit_price]),
    [['fixture-model', 'standard', '2.50', null]]);

  const table = await cli('at', '2026-02-15T00:00:00Z');
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^in force at 2026-02-15T00:00:00\.000Z\n/);
  t.regex(table.stdout, /│ hist +│ fixture-image +│ standard +│ +│ +│( +│){12} 0\.04\/image +│ +│ 2026-01-01 +│ +│ yours +│/);
});

test('at with something that is not a time is one line naming it', async (t) => {
  const result = await cli('at', 'last tuesday');
  t.is(result.code, 1);
  t.regex(result.stderr, /^ai-cost: command-argument value 'last tuesday' is invalid for argument 'when'\. 'last tuesday' is not a date, a time, now or e\.g\. 30m, 12h, 7d, 2w\n/);
  t.is(result.stdout, '');
});

test('hours of the day, further units and declared rates show in every format', async (t) => {
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, unit_prices, rates_from,
                                daily_from, daily_to, time_zone) VALUES
      ('hist-hours', 'fixture-hours', '2026-01-01', 0.135, 0.55, NULL, NULL, '16:30', '00:30', 'UTC'),
      ('hist-hours', 'fixture-hours', '2026-01-01', 0.27, 1.10, '{"web_search": 0.01}',
       '{"cache_read_per_mtok": {"rate": "input_per_mtok", "times": 0.1}}', NULL, NULL, NULL)`);
  const table = await cli('history', 'hist-hours', 'fixture-hours');
  t.is(table.code, 0, table.stderr);
  const rows = table.stdout.split('\n').filter((line) => /^│ 2026/.test(line)).map((line) => line.split('│').slice(1, -1).map((cell) => cell.trim()));
  t.deepEqual(rows.map((r) => [r[4], r[5], r[18]]).sort(), [
    ['', '0.27', 'web_search 0.01/unit; cache read = 0.1 x input'],
    ['16:30-00:30 UTC', '0.135', ''],
  ]);
  const json = JSON.parse((await cli('history', 'hist-hours', 'fixture-hours', '--format', 'json')).stdout) as Array<Record<string, unknown>>;
  t.deepEqual(json.map((r) => [r.daily_from, r.daily_to, r.time_zone, r.unit_prices, r.rates_from]).sort(), [
    ['16:30:00', '00:30:00', 'UTC', null, null],
    [null, null, null, { web_search: '0.01' }, { cache_read_per_mtok: { rate: 'input_per_mtok', times: '0.1' } }],
  ].sort());
  const csv = (await cli('history', 'hist-hours', 'fixture-hours', '--format', 'csv')).stdout.trimEnd().split('\n');
  t.true(csv.some((line) => line.includes(',"{""web_search"":""0.01""}","{""cache_read_per_mtok"":{""rate"":""input_per_mtok"",""times"":""0.1""}}",,,,')), csv.join('\n'));
  t.true(csv.some((line) => line.includes(',16:30:00,00:30:00,UTC,')), csv.join('\n'));
});

test('prices set takes hours of the day and further units, stored exactly and shown by history', async (t) => {
  const offPeak = await cli('set', 'hist-set', 'off-peak', '--input', '0.135', '--output', '0.55', '--hours', '16:30-00:30',
    '--time-zone', 'UTC', '--from', '2026-01-01');
  t.is(offPeak.code, 0, offPeak.stderr);
  const allDay = await cli('set', 'hist-set', 'off-peak', '--input', '0.27', '--output', '1.10', '--unit-prices', 'web_search=0.01,image=0.040',
    '--from', '2026-01-01');
  t.is(allDay.code, 0, allDay.stderr);
  const rows = await db.query<Record<string, unknown>>(`
    SELECT daily_from::text, daily_to::text, time_zone, unit_prices::text, input_per_mtok::text
      FROM ai_cost.prices WHERE provider = 'hist-set' ORDER BY daily_from NULLS FIRST`);
  t.deepEqual(rows, [
    { daily_from: null, daily_to: null, time_zone: null, unit_prices: '{"image": 0.040, "web_search": 0.01}', input_per_mtok: '0.27' },
    { daily_from: '16:30:00', daily_to: '00:30:00', time_zone: 'UTC', unit_prices: null, input_per_mtok: '0.135' },
  ]);
  const history = await cli('history', 'hist-set', 'off-peak');
  t.regex(history.stdout, /│ 16:30-00:30 UTC │ 0\.135 /);
  t.regex(history.stdout, /│ image 0\.040\/unit; web_search 0\.01\/unit │/);
});
