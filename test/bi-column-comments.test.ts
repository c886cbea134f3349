import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { useTestDatabase } from './support/database.js';
import { dropLogins, loginUrl, runAs } from './support/logins.js';

// Metabase and Superset show a column's COMMENT as its description. A BI
// login granted only ai_cost_reader lists schema ai_cost the ways their
// drivers do, and every column it can read must come with a description.

const reader = `bi_comments_reader_${randomBytes(4).toString('hex')}`;
const PASSWORD = 'bi-comments-pw';

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`CREATE ROLE ${reader} LOGIN PASSWORD '${PASSWORD}'; GRANT ai_cost_reader TO ${reader}`);
  },
});

test.after.always(() => dropLogins(reader));

interface Column {
  relation: string;
  column: string;
  description: string | null;
}

/** Runs one query as the BI login; fails the test with the error when it fails. */
async function asReader(sql: string): Promise<Column[]> {
  const rows = await runAs(loginUrl(db.url, reader, PASSWORD), sql);
  if (typeof rows === 'string') throw new Error(`as ${reader}: ${rows}`);
  return rows as Column[];
}

// pgJDBC's DatabaseMetaData.getColumns (Metabase) and SQLAlchemy's inspector
// (Superset): pg_class and pg_attribute, tables, views and materialized
// views, with the description from pg_description. Only the columns the
// login may SELECT, as a BI tool offers them.
const CATALOG_COLUMNS = `
  SELECT c.relname AS relation, a.attname AS column, d.description
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_description d
      ON d.objoid = c.oid AND d.objsubid = a.attnum AND d.classoid = 'pg_catalog.pg_class'::regclass
   WHERE c.relnamespace = 'ai_cost'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT')
   ORDER BY 1, a.attnum`;

// Tools that list columns from information_schema (which shows the columns
// the login has a privilege on, and no materialized views).
const INFORMATION_SCHEMA_COLUMNS = `
  SELECT table_name AS relation, column_name AS column,
         pg_catalog.col_description(pg_catalog.format('%I.%I', table_schema, table_name)::regclass,
                                    ordinal_position) AS description
    FROM information_schema.columns
   WHERE table_schema = 'ai_cost'
   ORDER BY 1, ordinal_position`;

// Functions the login may call whose rows have the shape of a relation
// (ai_cost.calls_between returns ai_cost.calls_hourly rows): a BI tool
// describes their columns with that relation's.
const FUNCTION_RESULT_COLUMNS = `
  SELECT p.proname || '() -> ' || c.relname AS relation, a.attname AS column,
         pg_catalog.col_description(c.oid, a.attnum) AS description
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
    JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
   WHERE p.pronamespace = 'ai_cost'::regnamespace AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
   ORDER BY 1, a.attnum`;

function undescribed(columns: Column[]): string[] {
  return columns.filter((c) => (c.description ?? '').trim() === '').map((c) => `${c.relation}.${c.column}`);
}

function relations(columns: Column[]): Set<string> {
  return new Set(columns.map((c) => c.relation));
}

/** Every column the reader can see, listed each way, has a description. */
async function assertDescribed(t: ExecutionContext): Promise<void> {
  const catalog = await asReader(CATALOG_COLUMNS);
  const informationSchema = await asReader(INFORMATION_SCHEMA_COLUMNS);
  const functionResults = await asReader(FUNCTION_RESULT_COLUMNS);

  // The listings reach what a BI user reads, and only that.
  const bi = ['calls', 'calls_hourly', 'spend_daily', 'activity_hourly', 'budget_status', 'mv_spend_trends', 'spend_trends'];
  for (const name of bi) {
    t.true(relations(catalog).has(name), `pg_catalog listing lacks ${name}`);
  }
  t.true(relations(informationSchema).has('spend_trends'), 'information_schema listing lacks spend_trends');
  t.true(relations(functionResults).has('calls_between() -> calls_hourly'), 'calls_between is not listed');
  t.false(
    catalog.some((c) => c.relation === 'calls' && c.column === 'metadata'),
    'the reader must not see calls.metadata',
  );

  t.deepEqual(undescribed(catalog), [], 'columns without a description (pg_catalog)');
  t.deepEqual(undescribed(informationSchema), [], 'columns without a description (information_schema)');
  t.deepEqual(undescribed(functionResults), [], 'function result columns without a description');
}

test.serial('every column a BI login can read has a description', async (t) => {
  await assertDescribed(t);
});

// Partitioning replaces ai_cost.calls by a new table: its columns keep their descriptions.
test.serial('every column a BI login can read has a description once ai_cost.calls is partitioned', async (t) => {
  await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens, output_tokens)
                  VALUES ('openai', 'gpt-4o-mini', 10, 1)`);
  await db.query('SELECT * FROM ai_cost.partition_calls()');
  await assertDescribed(t);
});
