import test from 'ava';
import { CALL_COLUMNS } from '../src/recorder/call-columns.js';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

/** Columns of ai_cost.calls that no caller writes, and what sets them instead. */
const NOT_WRITTEN: Record<string, string> = {
  id: 'generated identity',
  cost_micros: 'the cost trigger (or ai_cost.insert_calls())',
  price_id: 'the cost trigger (or ai_cost.insert_calls())',
  discount_id: 'the cost trigger',
  unpriced_reason: 'the cost trigger',
  computed_cost_micros: 'the cost trigger (or ai_cost.insert_calls())',
  billed_micros: 'the billing trigger (ai_cost.markups)',
  markup_id: 'the billing trigger (ai_cost.markups)',
};

const written = Object.values(CALL_COLUMNS).map(({ column, type }) => ({ column, type }));

/** `column type` entries, sorted, with each type as PostgreSQL spells it: `timestamptz` becomes `timestamp with time zone`. */
async function canonical(columns: Array<{ column: string; type: string }>): Promise<string[]> {
  const rows = await db.query<{ entry: string }>(
    `SELECT c.name || ' ' || format_type(to_regtype(c.type_name), NULL) AS entry
       FROM unnest($1::text[], $2::text[]) AS c(name, type_name)
      ORDER BY 1`,
    [columns.map((c) => c.column), columns.map((c) => c.type)]);
  return rows.map((row) => row.entry);
}

async function tableColumns(): Promise<Array<{ column: string; type: string }>> {
  return db.query<{ column: string; type: string }>(`
    SELECT attname AS column, format_type(atttypid, NULL) AS type
      FROM pg_attribute
     WHERE attrelid = 'ai_cost.calls'::regclass AND attnum > 0 AND NOT attisdropped`);
}

test('every column the TypeScript layer writes is a column of ai_cost.calls, of the same type', async (t) => {
  const table = new Map((await tableColumns()).map((c) => [c.column, c.type]));
  const asInTable = written.map(({ column }) => ({ column, type: table.get(column) ?? '(no such column)' }));
  t.deepEqual(await canonical(written), await canonical(asInTable));
});

test('every column of ai_cost.calls a caller may write is in the TypeScript list', async (t) => {
  const columns = (await tableColumns()).map((c) => c.column);
  t.deepEqual(written.map((c) => c.column).sort(), columns.filter((column) => !Object.hasOwn(NOT_WRITTEN, column)).sort());
  for (const column of Object.keys(NOT_WRITTEN)) t.true(columns.includes(column), `${column} is not a column of ai_cost.calls`);
});

test('ai_cost.insert_calls(jsonb) reads the same keys, as the same types, as the TypeScript list', async (t) => {
  const [row] = await db.query<{ definition: string }>(
    `SELECT pg_get_functiondef('ai_cost.insert_calls(jsonb)'::regprocedure) AS definition`);
  const recordset = /jsonb_to_recordset\(\s*\w+\s*\)\s+AS\s+\w+\s*\(([^)]*)\)/i.exec(row!.definition);
  t.truthy(recordset, 'insert_calls reads its batch with jsonb_to_recordset(argument) AS alias(column type, ...)');
  const keys = recordset![1]!.split(',').map((definition) => {
    const [column, ...type] = definition.trim().split(/\s+/);
    return { column: column!, type: type.join(' ') };
  });
  t.deepEqual(await canonical(keys), await canonical(written));
});
