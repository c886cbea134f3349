import test from 'ava';
import { useTestDatabase } from './support/database.js';
import { everywhere, pricingPaths } from './support/pricing-paths.js';

// Prices of certain hours of the day (daily_from, daily_to, time_zone on a
// price row), effective-dated like every price: shaped on DeepSeek's
// off-peak discount, 50% off deepseek-chat and 75% off deepseek-reasoner
// from 16:30 to 00:30 UTC, sold from 26 February to 5 September 2025.
// Every cost is worked out by hand; each case is priced by the trigger (the
// book, and the lookup for a tenant with a 0% discount) and insert_calls.
const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, valid_to, input_per_mtok, output_per_mtok, cache_read_per_mtok,
                                  daily_from, daily_to, time_zone)
      VALUES ('tod', 'chat', '2025-01-01', NULL, 0.27, 1.10, 0.07, NULL, NULL, NULL),
             ('tod', 'chat', '2025-02-26 16:30+00', '2025-09-05 16:00+00', 0.135, 0.55, 0.035, '16:30', '00:30', 'UTC'),
             ('tod', 'reasoner', '2025-01-01', NULL, 0.55, 2.19, 0.14, NULL, NULL, NULL),
             ('tod', 'reasoner', '2025-02-26 16:30+00', '2025-09-05 16:00+00', 0.135, 0.55, 0.035, '16:30', '00:30', 'UTC'),
             -- The same hours given in Beijing time.
             ('tod', 'reasoner-cn', '2025-01-01', NULL, 0.55, 2.19, 0.14, NULL, NULL, NULL),
             ('tod', 'reasoner-cn', '2025-02-26 16:30+00', '2025-09-05 16:00+00', 0.135, 0.55, 0.035, '00:30', '08:30', 'Asia/Shanghai'),
             -- Off-peak hours in force now, and without an end.
             ('tod', 'night', '2025-01-01', NULL, 1, 4, NULL, NULL, NULL, NULL),
             ('tod', 'night', '2025-01-01', NULL, 0.5, 2, NULL, '22:00', '06:00', 'UTC'),
             -- Peak hours twice a day at twice the rate (announced for DeepSeek V4 in 2026).
             ('tod', 'v4', '2026-01-01', NULL, 1, 2, NULL, NULL, NULL, NULL),
             ('tod', 'v4', '2026-01-01', NULL, 2, 4, NULL, '09:00', '12:00', 'Asia/Shanghai'),
             ('tod', 'v4', '2026-01-01', NULL, 2, 4, NULL, '14:00', '18:00', 'Asia/Shanghai');
      -- A new all-day price ends the old all-day one and leaves the off-peak row as it is.
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok)
      VALUES ('tod', 'chat', '2025-09-05 16:00+00', 0.56, 1.68, 0.07);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, percent_off) VALUES ('by-lookup', 'tod', 0);`);
  },
});

interface Usage {
  created_at: string;
  input_tokens?: number;
  output_tokens?: number;
  cache_read_tokens?: number;
}

const { everyWay } = pricingPaths<Usage>(db, 'tod', ['created_at', 'input_tokens', 'output_tokens', 'cache_read_tokens']);
const CALL = { input_tokens: 10_000, cache_read_tokens: 4_000, output_tokens: 1_000 };
const at = (created_at: string) => ({ created_at, ...CALL });

test('in its hours the off-peak price applies, outside them the all-day price, the window running past midnight', async (t) => {
  t.deepEqual(await everyWay([
    ['chat', at('2025-03-01 12:00+00')],
    ['chat', at('2025-03-01 17:00+00')],
    ['chat', at('2025-03-01 16:30+00')],
    ['chat', at('2025-03-02 00:29:59+00')],
    ['chat', at('2025-03-02 00:30+00')],
    ['chat', at('2025-03-01 16:29:59.999+00')],
  ]), [
    // peak: 6,000 x 0.27 = 1,620; 4,000 x 0.07 = 280; 1,000 x 1.10 = 1,100: 3,000
    everywhere('3000'),
    // off-peak: 6,000 x 0.135 = 810; 4,000 x 0.035 = 140; 1,000 x 0.55 = 550: 1,500
    everywhere('1500'),
    // the window's start is in it, its end is not
    everywhere('1500'),
    everywhere('1500'),
    everywhere('3000'),
    everywhere('3000'),
  ]);
});

test('each model has its own off-peak rates, and a window may be given in the provider\'s local time', async (t) => {
  t.deepEqual(await everyWay([
    ['reasoner', at('2025-03-01 12:00+00')],
    ['reasoner', at('2025-03-01 17:00+00')],
    ['reasoner-cn', at('2025-03-01 17:00+00')],
    ['reasoner-cn', at('2025-03-01 12:00+00')],
    ['reasoner', { created_at: '2025-03-01 20:00+00', input_tokens: 7, output_tokens: 3 }],
  ]), [
    // peak: 6,000 x 0.55 = 3,300; 4,000 x 0.14 = 560; 1,000 x 2.19 = 2,190: 6,050
    everywhere('6050'),
    // 75% off: 1,500
    everywhere('1500'),
    // 17:00 UTC is 01:00 in Shanghai, inside 00:30-08:30 there
    everywhere('1500'),
    everywhere('6050'),
    // 7 x 0.135 = 0.945; 3 x 0.55 = 1.65: 2.595 -> 3 (each part rounded up first: 1 + 2 = 3, at peak 3.85 + 6.57 -> 11)
    everywhere('3'),
  ]);
});

test('a model may have several windows a day, each at its price', async (t) => {
  const v4 = (created_at: string) => ({ created_at, input_tokens: 1_000, output_tokens: 100 });
  t.deepEqual(await everyWay([
    ['v4', v4('2026-03-02 02:00+00')],
    ['v4', v4('2026-03-02 05:00+00')],
    ['v4', v4('2026-03-02 07:00+00')],
    ['v4', v4('2026-03-02 10:00+00')],
  ]), [
    // 10:00 in Shanghai, peak: 1,000 x 2 + 100 x 4 = 2,400
    everywhere('2400'),
    // 13:00, between the two windows: 1,000 x 1 + 100 x 2 = 1,200
    everywhere('1200'),
    // 15:00, peak again
    everywhere('2400'),
    // 18:00 is the end of the second window: off-peak
    everywhere('1200'),
  ]);
});

test('off-peak prices are effective-dated: before and after their period the all-day price applies all day', async (t) => {
  t.deepEqual(await everyWay([
    ['chat', at('2025-02-20 17:00+00')],
    ['chat', at('2025-09-06 17:00+00')],
    ['chat', at('2025-09-05 15:59+00')],
  ]), [
    everywhere('3000'),
    // the all-day price from 5 September: 6,000 x 0.56 = 3,360; 280; 1,000 x 1.68 = 1,680: 5,320
    everywhere('5320'),
    // 15:59 UTC on 5 September: outside the window, at the old all-day price
    everywhere('3000'),
  ]);
  // The new all-day price did not end the off-peak row: it kept the end it was given.
  t.deepEqual(await db.query(`
    SELECT valid_to = '2025-09-05 16:00+00' AS kept FROM ai_cost.prices
     WHERE provider = 'tod' AND model = 'chat' AND daily_from IS NOT NULL`), [{ kept: true }]);
});

test('the book leaves a model with off-peak hours to the lookup, which prices it by the hour of each call', async (t) => {
  const keys = await db.query<{ key: string }>("SELECT key FROM ai_cost_internal.price_book WHERE provider = 'tod' ORDER BY key");
  // chat and reasoner's windows have ended: the book holds them; night's and v4's are in force.
  t.deepEqual(keys.map((k) => k.key), ['tod standard chat', 'tod standard reasoner', 'tod standard reasoner-cn']);
  const rows = await db.query<{ cost: string }>(`
    INSERT INTO ai_cost.calls (provider, model, created_at, input_tokens, output_tokens)
    VALUES ('tod', 'night', date_trunc('day', now(), 'UTC') - interval '1 day' + interval '23 hours', 1000, 100),
           ('tod', 'night', date_trunc('day', now(), 'UTC') - interval '1 day' + interval '12 hours', 1000, 100)
    RETURNING cost_micros::text AS cost`);
  // 22:00-06:00: 1,000 x 0.5 + 100 x 2 = 700; at noon 1,000 x 1 + 100 x 4 = 1,400
  t.deepEqual(rows.map((r) => r.cost), ['700', '1400']);
});

test('explain_cost names the hours of the price it applied', async (t) => {
  const rows = await db.query<{ component: string; micros: string | null; detail: string | null }>(`
    SELECT component, micros::text, detail FROM ai_cost.explain_cost('tod', 'reasoner-cn', '2025-03-01 17:00+00',
      input_tokens => 10000, cache_read_tokens => 4000, output_tokens => 1000)`);
  t.regex(rows[0]!.detail!, /^price row \d+ \(tod\/reasoner-cn, standard tier, base price, daily from 00:30 to 08:30 Asia\/Shanghai\) in force /);
  t.deepEqual(rows.slice(1).map((r) => [r.component, r.micros]), [['input', '810.000'], ['cache read', '140.000'], ['output', '550.00'], ['total', '1500']]);
});

test('a daily window is checked: all three columns, not empty, an IANA time zone; one per model, tier and tenant at a time', async (t) => {
  const refused = async (from: string | null, to: string | null, zone: string | null, model = 'w') => (await t.throwsAsync(db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, daily_from, daily_to, time_zone)
    VALUES ('tod', $4, '2025-01-01', 1, $1, $2, $3)`, [from, to, zone, model])))!.message;
  t.regex(await refused('16:30', null, 'UTC'), /"a daily window needs daily_from, daily_to and time_zone"/);
  t.regex(await refused('16:30', '00:30', null), /"a daily window needs daily_from, daily_to and time_zone"/);
  t.regex(await refused('16:30', '16:30', 'UTC'), /"a daily window must not be empty: daily_from <> daily_to"/);
  t.is(await refused('16:30', '00:30', 'Mars/Olympus_Mons'),
    'unknown time zone Mars/Olympus_Mons for a daily price window: give an IANA name such as UTC or Asia/Shanghai');
  // Hours that overlap others of the model in force at the same time, either way round.
  t.regex(await refused('01:00', '05:00', 'UTC', 'night'),
    /^the hours 01:00 to 05:00 overlap those of price \d+ \(22:00 to 06:00\) of tod\/night while both are in force$/);
  t.regex(await refused('20:00', '23:00', 'UTC', 'night'), /^the hours 20:00 to 23:00 overlap those of price \d+ \(22:00 to 06:00\)/);
  t.regex(await refused('11:00', '14:30', 'Asia/Shanghai', 'v4'), /^the hours 11:00 to 14:30 overlap those of price \d+ \(09:00 to 12:00\)/);
  // A second all-day price from the same instant overlaps the first.
  t.regex(await refused(null, null, null, 'night'), /"prices for one model, tier and tenant must not overlap in time"/);
  // Hours that do not overlap are another window, and a window from a later date replaces the one of the same start.
  await t.notThrowsAsync(db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, daily_from, daily_to, time_zone)
                                   VALUES ('tod', 'v4', '2026-01-01', 0.75, '12:00', '13:00', 'Asia/Shanghai'),
                                          ('tod', 'v4', '2026-06-01', 0.7, '12:00', '13:00', 'Asia/Shanghai')`));
  t.deepEqual(await db.query(`SELECT input_per_mtok::text AS input, valid_to = '2026-06-01' AS ended FROM ai_cost.prices
                               WHERE model = 'v4' AND daily_from = '12:00' ORDER BY valid_from`),
  [{ input: '0.75', ended: true }, { input: '0.7', ended: null }]);
});
