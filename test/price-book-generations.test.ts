import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

// Each compile of the price book numbers its slots in a range of its own
// (sql/050_price_book.sql), so that the cost trigger, whose expressions may
// each be planned with a different compile, reads either one compile or
// NULL, and then takes the lookup (sql/060_cost.sql). The tests are serial:
// a compile by another test in between would move the numbering they read.

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok, cache_read_per_mtok,
                                  cache_write_per_mtok, cache_write_1h_per_mtok, audio_input_per_mtok, audio_output_per_mtok,
                                  image_input_per_mtok, image_output_per_mtok, video_input_per_mtok)
      VALUES ('gen', 'plain', '2020-01-01', 3, 15, 0.3, 3.75, 6, NULL, NULL, NULL, NULL, NULL),
             ('gen', 'rich', '2020-01-01', 1.1, 4.4, 0.11, 1.375, 2.2, 40, 80, 10, 40, 2.7),
             ('gen', 'off', '2020-01-01', 2, 8, 0.5, 2.5, 4, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO ai_cost.tenant_discounts (tenant_id, provider, model, percent_off, valid_from)
      VALUES (NULL, 'gen', 'off', 20, '2020-01-01');`);
  },
});

/** Calls of every shape the book prices: each path of the trigger, with and without a discount. */
const CALLS = `
  ('gen', 'plain', 1000, 100, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('gen', 'plain', 20000, 500, 12000, NULL, NULL, NULL, NULL, NULL, NULL),
  ('gen', 'plain', 15000, 300, 3000, 6000, 2000, NULL, NULL, NULL, NULL),
  ('gen', 'rich', 5000, 2000, 1000, 500, 100, 700, 300, 200, 150),
  ('gen', 'rich', 800, 90, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('gen', 'off', 15000, 300, 3000, 6000, 2000, NULL, NULL, NULL, NULL),
  ('gen', 'off', 1000, 100, 200, NULL, NULL, NULL, NULL, NULL, NULL)`;

interface Priced { model: string; cost: string | null; price_id: string | null; discount_id: string | null; expected: string; same: boolean }

/** Inserts CALLS and returns what the trigger set beside what ai_cost_internal.cost_of() says, as text. */
async function insertCalls(query: (text: string) => Promise<Array<Record<string, unknown>>>): Promise<Priced[]> {
  const rows = await query(`
    WITH c AS (
      INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                                 cache_write_1h_tokens, audio_input_tokens, image_input_tokens, image_output_tokens,
                                 video_input_tokens)
      VALUES ${CALLS}
      RETURNING *)
    SELECT c.model, c.cost_micros::text AS cost, c.price_id::text, c.discount_id::text,
           format('%s, price %s, discount %s', n.cost_micros, n.price_id, n.discount_id) AS expected,
           (c.cost_micros, c.computed_cost_micros, c.price_id, c.discount_id, c.unpriced_reason)
             IS NOT DISTINCT FROM (n.cost_micros, n.computed_cost_micros, n.price_id, n.discount_id, n.unpriced_reason) AS same
      FROM c CROSS JOIN LATERAL ai_cost_internal.cost_of(c) n ORDER BY c.id`);
  return rows as unknown as Priced[];
}

/** The calls whose cost, price or discount differ from what the lookup gives. */
const mismatches = (calls: Priced[]) => calls.filter((c) => !c.same);

/** The generated arrays of the book, each numbered by slot. */
const BOOK_ARRAYS = ['price_book_rates', 'price_book_plain_rates', 'price_book_ids', 'price_book_windows'] as const;

interface Bounds { lower: number; upper: number; arrays: string[]; table_lower: number; table_upper: number }

/** The rates' first and last slot, and every array's and the table's as "first..last". */
async function bounds(): Promise<Bounds> {
  const [row] = await db.query<Bounds>(`
    SELECT array_lower(ai_cost_internal.price_book_rates(), 1) AS lower, array_upper(ai_cost_internal.price_book_rates(), 1) AS upper,
           ARRAY[${BOOK_ARRAYS.map((f) => `array_lower(ai_cost_internal.${f}(), 1) || '..' || array_upper(ai_cost_internal.${f}(), 1)`).join(', ')}] AS arrays,
           (SELECT min(slot) FROM ai_cost_internal.price_book) AS table_lower,
           (SELECT max(slot) FROM ai_cost_internal.price_book) AS table_upper`);
  return row!;
}

test.serial('a slot of the book before a compile reads NULL from the book after it, and the new slot prices the call', async (t) => {
  const key = 'gen standard plain';
  const [before] = await db.query<{ slot: number; price_id: string }>(`
    SELECT ai_cost_internal.price_book_slot('${key}') AS slot,
           (ai_cost_internal.price_book_ids())[ai_cost_internal.price_book_slot('${key}')][1]::text AS price_id`);
  const old = await bounds();
  // A key that sorts before it: numbered from 1, its slot would move by one.
  await db.query(`INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok) VALUES ('gen', 'a-first', 1, 2)`);
  const now = await bounds();

  t.deepEqual([...now.arrays, `${now.table_lower}..${now.table_upper}`], Array(BOOK_ARRAYS.length + 1).fill(`${now.lower}..${now.upper}`),
    'the arrays and the table share one numbering');
  t.is(now.upper - now.lower, old.upper - old.lower + 1, 'one more list price');
  t.true(now.upper < old.lower || now.lower > old.upper, `the ranges ${old.lower}..${old.upper} and ${now.lower}..${now.upper} are apart`);
  t.is(now.lower % 1048576, 1, 'a range starts at 1 + generation x 2^20');

  const [stale] = await db.query(`
    SELECT (ai_cost_internal.price_book_ids())[$1::int][1] AS price_id, (ai_cost_internal.price_book_ids())[$1::int][2] AS discount_id,
           (ai_cost_internal.price_book_rates())[$1::int][1] AS input_rate, (ai_cost_internal.price_book_plain_rates())[$1::int][1] AS plain_input_rate,
           (ai_cost_internal.price_book_windows())[$1::int][1] AS valid_from`,
  [before!.slot]);
  t.deepEqual(stale, { price_id: null, discount_id: null, input_rate: null, plain_input_rate: null, valid_from: null });

  const [after] = await db.query<{ slot: number; price_id: string; discount_id: string; plain: string; expected_plain: string }>(`
    SELECT s.slot, i[s.slot][1]::text AS price_id, i[s.slot][2]::text AS discount_id,
           (ai_cost_internal.price_book_plain_rates())[s.slot:s.slot]::text AS plain,
           ARRAY[[r[s.slot][1], r[s.slot][2], r[s.slot][3], r[s.slot][8], r[s.slot][13], r[s.slot][14], r[s.slot][15]]]::text AS expected_plain
      FROM (SELECT ai_cost_internal.price_book_slot('${key}') AS slot, ai_cost_internal.price_book_rates() AS r,
                   ai_cost_internal.price_book_ids() AS i) s`);
  t.not(after!.slot, before!.slot);
  t.is(after!.price_id, before!.price_id);
  t.is(after!.discount_id, '0', 'no discount is 0 in the book, so NULL means another compile');
  t.is(after!.plain, after!.expected_plain, 'the plain rates are the input, output, cache read and reasoning rates and the first three masks');
  // An array with a NULL finds an element by walking the ones before it (docs/pricing.md).
  const [nulls] = await db.query(`
    SELECT ${BOOK_ARRAYS.map((f) => `array_position(ARRAY(SELECT unnest(ai_cost_internal.${f}())), NULL) AS ${f}`).join(', ')}`);
  t.deepEqual(nulls, Object.fromEntries(BOOK_ARRAYS.map((f) => [f, null])));
  const calls = await insertCalls(db.query);
  t.deepEqual(mismatches(calls), []);
  t.is(calls[0]!.cost, '4500'); // 1,000 x 3 + 100 x 15
  t.is(calls[0]!.discount_id, null);
});

test.serial('a transaction that compiles many times takes one generation', async (t) => {
  const old = await bounds();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    for (const model of ['many-1', 'many-2', 'many-3']) {
      await client.query(`INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok) VALUES ('gen', $1, 1, 2)`, [model]);
    }
    await client.query('SELECT ai_cost_internal.compile_price_book()');
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
  const now = await bounds();
  t.is(now.lower, old.lower + 1048576);
});

test.serial('calls inserted right after compiles are priced as the lookup prices them', async (t) => {
  for (let i = 0; i < 5; i += 1) {
    await db.query(`INSERT INTO ai_cost.prices (provider, model, input_per_mtok, output_per_mtok) VALUES ('gen', 'again-${i}', 1, 2)`);
    const calls = await insertCalls(db.query);
    t.deepEqual(mismatches(calls), [], `after compile ${i + 1}`);
    t.deepEqual(calls.filter((c) => c.model === 'off').map((c) => c.discount_id === null), [false, false]);
  }
});

/**
 * Replaces one of the book's bigint arrays (`array`, a function of
 * BOOK_ARRAYS) inside the client's open transaction with the current one
 * changed by `change`, a PL/pgSQL statement on r (the array) and s (the
 * slot of "gen standard <model>"), as a plan made with another compile
 * would read it.
 */
async function replaceBookArray(client: pg.Client, array: string, model: string, change: string): Promise<void> {
  await client.query(`
    DO $do$
    DECLARE
      r bigint[] := ai_cost_internal.${array}();
      s integer := ai_cost_internal.price_book_slot('gen standard ${model}');
    BEGIN
      ${change};
      EXECUTE format($f$CREATE OR REPLACE FUNCTION ai_cost_internal.${array}() RETURNS bigint[]
        LANGUAGE sql STABLE PARALLEL SAFE AS %L$f$, format('SELECT CAST(%L AS pg_catalog.int8[])', r));
    END
    $do$`);
}

test.serial('where a read of the book is NULL, the trigger takes the lookup and prices the call the same', async (t) => {
  const renumbered = `r := regexp_replace(r::text, '^\\[(\\d+):(\\d+)\\]', '[' || (array_lower(r, 1) + 1048576) || ':' || (array_upper(r, 1) + 1048576) || ']')::bigint[]`;
  const cases: Array<[string, string, string, string]> = [
    // Another compile's numbering: the trigger's test reads outside the rates.
    ['plain', 'price_book_plain_rates', renumbered, 'the test'],
    ['rich', 'price_book_rates', renumbered, 'the test, all dimensions'],
    ['plain', 'price_book_ids', renumbered, 'the ids'],
    // The test passes, but one assignment reads NULL, as one planned with another compile does.
    ['plain', 'price_book_ids', 'r[s][1] := NULL', 'the price id'],
    ['plain', 'price_book_plain_rates', 'r[s][1] := NULL', 'the cost'],
    ['off', 'price_book_ids', 'r[s][2] := NULL', 'the discount id'],
    ['rich', 'price_book_ids', 'r[s][1] := NULL', 'the price id, all dimensions'],
    ['rich', 'price_book_rates', 'r[s][7] := NULL', 'the cost, all dimensions'],
  ];
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    for (const [model, array, change, what] of cases) {
      await client.query('BEGIN');
      await replaceBookArray(client, array, model, change);
      const calls = await insertCalls((text) => client.query(text).then((r) => r.rows));
      await client.query('ROLLBACK');
      t.deepEqual(mismatches(calls), [], `${what} NULL for ${model}`);
      t.true(calls.filter((c) => c.model === model).every((c) => c.cost !== null && c.price_id !== null), `${what} NULL for ${model}`);
    }
  } finally {
    await client.end();
  }
});

test.serial('a discount whose id reads as none in the book is left to the lookup', async (t) => {
  await db.query(`
    INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok) VALUES ('gen', 'zero', '2020-01-01', 1, 2);
    INSERT INTO ai_cost.tenant_discounts (id, provider, model, percent_off, valid_from)
    OVERRIDING SYSTEM VALUE VALUES (0, 'gen', 'zero', 10, '2020-01-01');`);
  const [book] = await db.query(`SELECT ai_cost_internal.price_book_slot('gen standard zero') AS slot`);
  t.deepEqual(book, { slot: null });
  const [call] = await db.query(`
    INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens) VALUES ('gen', 'zero', 1000, 100)
    RETURNING cost_micros::text, discount_id::text`);
  t.deepEqual(call, { cost_micros: '1080', discount_id: '0' }); // 0.9 x (1,000 x 1 + 100 x 2)
});

test.serial('calls priced while another session compiles again and again are priced as the lookup prices them', async (t) => {
  const compiler = new pg.Client({ connectionString: db.url });
  await compiler.connect();
  const until = Date.now() + 2000;
  let compiles = 0;
  const compiling = (async () => {
    while (Date.now() < until) {
      await compiler.query('SELECT ai_cost_internal.compile_price_book()');
      compiles += 1;
    }
  })();
  const wrong: Priced[] = [];
  let batches = 0;
  try {
    while (Date.now() < until) {
      wrong.push(...mismatches(await insertCalls(db.query)));
      batches += 1;
    }
    await compiling;
  } finally {
    await compiler.end();
  }
  t.true(compiles > 1 && batches > 1, `${compiles} compiles, ${batches} batches`);
  t.deepEqual(wrong, []);
});
