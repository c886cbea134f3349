import pg from 'pg';
import {
  createBigintTypeParser,
  createDateTypeParser,
  createIntervalTypeParser,
  createPool as createSlonikPool,
  SchemaValidationError,
  type DatabasePool,
  type Interceptor,
  type QueryResultRow,
} from 'slonik';

/**
 * Checks every row of a `sql.type(schema)` query against its zod schema and
 * returns the parsed row. slonik only carries the schema along; without this
 * interceptor the row types would be a promise nobody keeps.
 */
const validateRows: Interceptor = {
  name: 'pg-ai-cost:validate-rows',
  transformRowAsync: async (queryContext, query, row) => {
    const parser = queryContext.resultParser;
    if (!parser) return row;
    const result = await parser['~standard'].validate(row);
    if (result.issues) throw new SchemaValidationError(query, row, result.issues);
    return result.value as QueryResultRow;
  },
};

/**
 * A slonik pool whose rows are checked against their zod schemas and whose
 * type parsers never turn money into a float: int8 becomes a JS bigint,
 * numeric stays a decimal string, timestamptz a Date. (slonik's preset parses
 * numeric with parseFloat and timestamps to numbers.)
 */
export async function createPool(databaseUrl: string, maximumPoolSize = 10): Promise<DatabasePool> {
  return createSlonikPool(databaseUrl, {
    maximumPoolSize,
    captureStackTrace: false,
    interceptors: [validateRows],
    typeParsers: [
      createBigintTypeParser(),
      createDateTypeParser(),
      createIntervalTypeParser(),
      { name: 'numeric', parse: (value: string) => value },
      { name: 'timestamptz', parse: (value: string) => new Date(value) },
    ],
  });
}

/** The connection string to use: an explicit one, else DATABASE_URL; checked to be a postgres:// URL. */
export function resolveDatabaseUrl(explicit?: string): string {
  const url = explicit ?? process.env.DATABASE_URL;
  if (!url) {
    throw new UsageError('no database given: pass --database-url or set DATABASE_URL');
  }
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new UsageError('invalid database URL: expected postgres://user:password@host:port/database');
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new UsageError(`invalid database URL: scheme ${protocol} is not postgres:// or postgresql://`);
  }
  return url;
}

/** An error caused by how the tool was called, shown to the user as one line. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Runs `work` with a plain pg client of its own, closed afterwards. */
export async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Runs `work` in a transaction on `client`: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
