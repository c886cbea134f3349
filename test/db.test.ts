import test from 'ava';
import { SchemaValidationError, sql } from 'slonik';
import { z } from 'zod';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test);

test('rows are checked against their zod schema, and parsed by it', async (t) => {
  await t.throwsAsync(db.pool.one(sql.type(z.object({ x: z.string() }))`SELECT 1 AS x`), { instanceOf: SchemaValidationError });
  const row = await db.pool.one(sql.type(z.object({ x: z.string().transform((v) => v.length) }))`SELECT 'four' AS x`);
  t.is(row.x, 4);
});

test('money never becomes a float: int8 is a bigint, numeric a decimal string', async (t) => {
  const row = await db.pool.one(sql.type(z.object({ big: z.bigint(), exact: z.string() }))`
    SELECT 9007199254740993::int8 AS big, 0.1::numeric + 0.2::numeric AS exact`);
  t.is(row.big, 9007199254740993n);
  t.is(row.exact, '0.3');
});
