import pg from 'pg';
import {
  sql,
  createBigintTypeParser,
  createDateTypeParser,
  createIntervalTypeParser,
  createPool as createSlonikPool,
  SchemaValidationError,
  type DatabasePool,
  type FragmentSqlToken,
  type Interceptor,
  type QueryResultRow,
} from 'slonik';
import { connectionSsl } from './connection-ssl.js';

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
 * numeric with parseFloat and timestamps to numbers.) Its connections use
 * the search_path pg_catalog, pg_temp (see withSafeSearchPath), and the
 * settings given as further startup options (`-c name=value`).
 *
 * Timeouts are the server's and the role's own: slonik would otherwise set
 * statement_timeout and idle_in_transaction_session_timeout to a minute on
 * every connection, which cancels work that takes longer by design (a
 * refresh folding a backlog of a million calls, `ai-cost distribute` on a
 * ledger of a few million) and overrides what an administrator set for
 * the role (`ALTER ROLE ... SET statement_timeout`).
 */
export async function createPool(databaseUrl: string, maximumPoolSize = 10, startupOptions: readonly string[] = []): Promise<DatabasePool> {
  const { url: withoutSsl, ssl } = connectionSsl(databaseUrl);
  const url = startupOptions.reduce(withStartupOption, withSafeSearchPath(withoutSsl));
  return createSlonikPool(withConnectionParametersInAuthority(url), {
    ...(ssl ? { ssl } : {}),
    maximumPoolSize,
    connectionTimeout: connectTimeoutMillis(databaseUrl) || 'DISABLE_TIMEOUT',
    statementTimeout: 'DISABLE_TIMEOUT',
    idleInTransactionSessionTimeout: 'DISABLE_TIMEOUT',
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

/**
 * An instant as a timestamptz parameter, exact to the millisecond. slonik's
 * sql.timestamp writes an unqualified to_timestamp(), which a function on
 * the caller's search_path could shadow.
 */
export function timestamptz(date: Date): FragmentSqlToken {
  return sql.fragment`${date.toISOString()}::pg_catalog.timestamptz`;
}

/** A value as a jsonb parameter (slonik's sql.jsonb casts to an unqualified jsonb). */
export function jsonb(value: unknown): FragmentSqlToken {
  return sql.fragment`${JSON.stringify(value)}::pg_catalog.jsonb`;
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
    const port = /^[a-z]+:\/\/[^/?#]*:(\d+)(?:[/?#]|$)/i.exec(url)?.[1];
    if (port !== undefined && Number(port) > 65535) throw new UsageError(`invalid database URL: port ${port} is not a port (1 to 65535)`);
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

/**
 * The search_path of every connection pg-ai-cost opens. Whoever may create
 * objects in a schema on a login's own search_path (public, before
 * PostgreSQL 15) can otherwise plant an operator or function that matches a
 * query's arguments better than the built-in one, and it runs with the
 * rights of whoever sends the query: a superuser running `ai-cost report`.
 */
const SAFE_SEARCH_PATH_OPTION = '-c search_path=pg_catalog,pg_temp';

/**
 * The connection string with `-c search_path=pg_catalog,pg_temp` appended to
 * its startup options (a search_path the URL sets itself is overridden).
 *
 * A startup option, rather than a SET after connecting or a SET LOCAL in
 * every transaction, because it is the session's default: it covers the
 * queries of slonik (its type lookup at pool creation) and node-pg-migrate
 * that pg-ai-cost cannot rewrite, it survives the DISCARD ALL slonik runs
 * when a connection goes back to its pool, and it costs no round trip.
 * A SET on connect would be undone by that DISCARD ALL, and behind PgBouncer
 * in transaction mode it would stay on one server connection, used by other
 * clients, while the next transaction runs on another; SET LOCAL in every
 * transaction would cost a round trip per query.
 *
 * The limit: PgBouncer refuses startup parameters it does not track, unless
 * they are listed in its ignore_startup_parameters, and then it drops them. So this is the
 * second line only. The first is that every SQL text of pg-ai-cost names
 * each table, function, operator and type with its schema and so means the
 * same whatever the search_path, on a pool of the user's too.
 */
export function withSafeSearchPath(databaseUrl: string): string {
  return withStartupOption(databaseUrl, SAFE_SEARCH_PATH_OPTION);
}

/** The connection string with `option` (such as `-c name=value`) appended to its startup options. */
function withStartupOption(databaseUrl: string, option: string): string {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new UsageError('invalid database URL: expected postgres://user:password@host:port/database');
  }
  const options = url.searchParams.get('options');
  url.searchParams.set('options', options ? `${options} ${option}` : option);
  return url.toString();
}

/**
 * The URL with the libpq query parameters host, port, user and password
 * moved into its authority, where slonik reads them: slonik takes only host
 * from the query, so `postgresql:///db?host=/var/run/postgresql&port=5433`,
 * a usual form for a Unix socket, would reach port 5432 as the OS user. A
 * query parameter wins over the authority's part, as in libpq and pg (which
 * the migrations connect with), so both reach the same server as the same
 * user. A socket folder goes in percent-encoded, as libpq and pg read it too.
 */
export function withConnectionParametersInAuthority(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const query = url.searchParams;
  const host = query.get('host');
  const port = query.get('port');
  const user = query.get('user');
  const password = query.get('password');
  if (host === null && port === null && user === null && password === null) return databaseUrl;
  for (const name of ['host', 'port', 'user', 'password']) query.delete(name);
  const username = user ?? decodeURIComponent(url.username);
  const secret = password ?? decodeURIComponent(url.password);
  const userInfo = username === '' ? '' : `${encodeURIComponent(username)}${secret === '' ? '' : `:${encodeURIComponent(secret)}`}@`;
  const hostPort = `${host === null ? url.hostname : encodeURIComponent(host)}${(port ?? url.port) === '' ? '' : `:${port ?? url.port}`}`;
  const search = query.toString();
  return `${url.protocol}//${userInfo}${hostPort}${url.pathname}${search ? `?${search}` : ''}`;
}

/** How long a connection attempt waits for the server when the URL does not say (libpq's connect_timeout). */
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

/**
 * How long to wait for the server to accept a connection, in milliseconds:
 * the URL's connect_timeout in seconds (0 waits for ever, as in libpq), else
 * 10 s. Neither pg nor slonik reads connect_timeout from a URL, and pg's
 * default waits for ever on a server that never answers.
 */
export function connectTimeoutMillis(databaseUrl: string): number {
  const given = new URL(databaseUrl).searchParams.get('connect_timeout');
  if (given === null) return DEFAULT_CONNECT_TIMEOUT_SECONDS * 1000;
  const seconds = Number(given);
  if (!Number.isInteger(seconds) || seconds < 0) throw new UsageError(`invalid database URL: connect_timeout '${given}' is not a whole number of seconds`);
  return seconds * 1000;
}

/** Runs `work` with a plain pg client of its own (its search_path pinned), closed afterwards. */
export async function withClient<T>(databaseUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const { url, ssl } = connectionSsl(databaseUrl);
  const client = new pg.Client({
    // ssl false where nothing asks for SSL: pg would otherwise read PGSSLMODE its own way.
    connectionString: withSafeSearchPath(url), connectionTimeoutMillis: connectTimeoutMillis(databaseUrl), ssl: ssl ?? false,
  });
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

/** What PostgreSQL itself reported: its SQLSTATE and message. */
export interface DatabaseRefusal {
  code: string;
  message: string;
}

/**
 * The error PostgreSQL raised, found in what pg or slonik threw (slonik
 * nests it as the cause); undefined for anything else, such as a lost
 * connection or a bug. PostgreSQL's errors carry a severity, which tells a
 * SQLSTATE from a Node error code of the same shape (EPIPE).
 */
export function databaseRefusal(error: unknown, depth = 0): DatabaseRefusal | undefined {
  if (!error || typeof error !== 'object' || depth > 5) return undefined;
  const { code, message, severity, cause } = error as { code?: unknown; message?: unknown; severity?: unknown; cause?: unknown };
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof message === 'string' && typeof severity === 'string') {
    return { code, message };
  }
  return databaseRefusal(cause, depth + 1);
}
