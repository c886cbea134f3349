import test from 'ava';
import { randomBytes } from 'node:crypto';
import { SchemaValidationError, sql } from 'slonik';
import { z } from 'zod';
import { createPool } from '../src/db.js';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl } from './support/logins.js';

const db = useTestDatabase(test);
const PATIENT = `patient_${randomBytes(4).toString('hex')}`;

test.after.always(() => dropLogins(PATIENT));

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

test('the pool keeps the timeouts of the server and of the role, adding none of its own', async (t) => {
  const timeouts = sql.type(z.object({ statement: z.string(), idle: z.string() }))`
    SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle`;
  const [plain] = await db.query<{ statement: string; idle: string }>(timeouts.sql);
  t.deepEqual(await db.pool.one(timeouts), plain, 'as a plain connection has them: a long refresh is not cancelled after a minute');

  // An administrator's limit for a login holds.
  await db.query(`CREATE ROLE ${PATIENT} LOGIN PASSWORD 'patient-pw'; ALTER ROLE ${PATIENT} SET statement_timeout = '7s'`);
  const pool = await createPool(loginUrl(db.url, PATIENT, 'patient-pw'), 1);
  try {
    t.is((await pool.one(timeouts)).statement, '7s');
  } finally {
    await pool.end();
  }
});
