import { InvalidSslSettingsError } from '../connection-ssl.js';
import { UsageError } from '../db.js';
import { DistributedDowngradeError, MigrationFailedError, NewerSchemaError } from '../migrate.js';
import { CannotScheduleError } from '../reporting/schedule.js';
import { InvalidReportError } from '../reporting/filters.js';
import { InvalidPriceError } from '../pricing/prices.js';
import { MissingEmbeddedPostgresError } from '../embedded.js';
import { InvalidCallError } from '../recorder/call.js';

interface PgLikeError {
  code?: string;
  path?: string;
  syscall?: string;
  message?: string;
  hint?: string;
  address?: string;
  port?: number;
  hostname?: string;
  cause?: unknown;
  errors?: unknown[];
}

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EACCES: 'permission denied',
  EISDIR: 'it is a folder',
};

/** A connection the server closed (or reset) before or during the work. */
const CONNECTION_ENDED = 'the connection to PostgreSQL ended unexpectedly: the server closed it (is that host and port a PostgreSQL server? its log says why), and whatever was not committed was not written';

/** Errors pg raises, without a code, when a connection cannot be made or is lost: each in words with what to check. */
const CONNECTION_ERRORS: readonly (readonly [string, string])[] = [
  ['timeout expired', 'cannot connect to PostgreSQL: the server did not answer in time (is the host and port right, and is it up? connect_timeout=<seconds> in the URL waits longer)'],
  ['Connection terminated unexpectedly', CONNECTION_ENDED],
  ['The server does not support SSL connections', 'cannot connect to PostgreSQL: the URL asks for SSL (its sslmode) and the server does not support it; use sslmode=disable, or enable ssl on the server'],
];

/** Node's codes for a server certificate that TLS could not trust. */
const UNTRUSTED_CERTIFICATE = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * Who may run each command that is not a report, named when a login without
 * that right is refused: whatever object the refusal names, the remedy is
 * the same login. Installing and upgrading are the database owner's job;
 * refreshing, and scheduling it, the owner's (and pg_cron's, as the owner):
 * no role is granted it; distributing changes the ledger's tables, the job
 * of their owner.
 */
const COMMAND_OWNERS: Record<string, string> = {
  migrate: 'migrate is run by the owner of the database that installed pg-ai-cost',
  refresh: 'the rollups are refreshed as the owner that installed pg-ai-cost (pg_cron runs it so); run this with that login',
  schedule: 'the refresh is scheduled by the owner that installed pg-ai-cost, which pg_cron then runs it as',
  distribute: 'ai-cost distribute is run by the owner that installed pg-ai-cost, on the coordinator',
  reprice: 'repricing is for logins granted ai_cost_admin, or the owner that installed pg-ai-cost',
};

/**
 * One line that tells the user what went wrong and what to do, for errors a
 * user can cause: bad or unreachable URL, wrong credentials, missing schema,
 * invalid input. Anything else is a bug, and the caller shows its stack.
 * `command` is the command that ran (`migrate`), for a refusal's remedy.
 */
export function describeError(error: unknown, command?: string): string | undefined {
  const worded = [UsageError, InvalidSslSettingsError, InvalidCallError, NewerSchemaError, DistributedDowngradeError, MigrationFailedError, CannotScheduleError, InvalidReportError, InvalidPriceError, MissingEmbeddedPostgresError];
  if (worded.some((kind) => error instanceof kind)) return (error as Error).message;
  for (const e of causes(error)) {
    const connectionLost = CONNECTION_ERRORS.find(([message]) => e.message === message);
    if (connectionLost) return connectionLost[1];
    if (e.code && UNTRUSTED_CERTIFICATE.has(e.code)) {
      return `cannot connect to PostgreSQL: the server's certificate is not trusted (${e.message}): `
        + 'name the authority that signed it with sslrootcert=<file> in the URL, or use sslmode=require to encrypt without checking it';
    }
    switch (e.code) {
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        return `cannot connect to PostgreSQL: the server's certificate is for another name (${e.message}): `
          + 'connect by a name the certificate holds, or use sslmode=verify-ca to check only who signed it';
      case 'ECONNREFUSED':
        return `cannot connect to PostgreSQL at ${e.address ?? 'the given host'}${e.port ? `:${e.port}` : ''}: connection refused (is the server running?)`;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return `cannot connect to PostgreSQL: host ${e.hostname ?? ''} not found`;
      case 'ECONNRESET':
      case 'EPIPE':
        return CONNECTION_ENDED;
      case 'ETIMEDOUT':
        return 'cannot connect to PostgreSQL: connection timed out';
      case '3D000':
        return `${e.message}: create it first, or check the database name in the URL`;
      case '28P01':
      case '28000':
        return `PostgreSQL refused the login: ${e.message}`;
      case '42P01':
      case '3F000':
        return `pg-ai-cost is not installed in this database (${e.message}): run \`ai-cost migrate up\` first`;
      case '42883': // a function of pg-ai-cost this database's install predates
        if (e.message?.includes('ai_cost')) return `${e.message}: this database has an older pg-ai-cost; run \`ai-cost migrate up\``;
        break;
      case '57014': // cancelled: by a statement_timeout in force for the login, or by hand (pg_cancel_backend, Ctrl-C in psql)
        if (/statement timeout/.test(e.message ?? '')) {
          return `${e.message}: this login's statement_timeout ended the work before it finished, and nothing was written; `
            + 'give it longer (ALTER ROLE <login> SET statement_timeout = ..., or options=-c statement_timeout=0 in the database URL) and run it again';
        }
        return `${e.message}, and nothing was written`;
      case '55P03': // a lock not granted within the login's lock_timeout
        return `${e.message}: another session held what this needs longer than this login's lock_timeout allows, and nothing was written; run it again`;
      case '23503': // a reference the row names is not there (a price's service tier, say), with what to do
        return e.hint ? `${e.message}: ${e.hint}` : e.message;
      case '23514': // a CHECK constraint or a trigger of pg-ai-cost refused a row: both are worded for the user
      case '23P01': // an exclusion constraint, named in words (prices for one model must not overlap in time)
      case 'P0001': // raised by pg-ai-cost's own SQL, worded for the user
        return e.message;
      case '42501':
        // Repricing rewrites costs and charges: the admin's job (and the owner's), also when a price change starts it.
        if (/\bfunction (reprice_preview|start_reprice|reprice_batch)\b/.test(e.message ?? '')) {
          return `permission denied: ${e.message}: ${COMMAND_OWNERS.reprice}`;
        }
        if (command && COMMAND_OWNERS[command]) return `permission denied: ${e.message}: ${COMMAND_OWNERS[command]}`;
        return `permission denied: ${e.message} (the reports need a login granted ai_cost_reader, which reads every tenant; prices, discounts and reprices ai_cost_admin: docs/security.md)`;
      case 'ENOENT':
      case 'ENOTDIR':
      case 'EACCES':
      case 'EISDIR':
        // A Unix socket of PostgreSQL that is not there, or not ours to use.
        if (e.syscall === 'connect' && e.address) {
          return `cannot connect to PostgreSQL at ${e.address}: ${e.code === 'EACCES' ? 'permission denied' : 'no server socket there'} (is the server running, and are the socket folder and port right?)`;
        }
        // A file the user named: say which, and why it could not be used.
        if (e.path) return `cannot ${e.syscall === 'open' ? 'open' : e.syscall ?? 'use'} ${e.path}: ${FILE_ERRORS[e.code] ?? e.code}`;
        break;
      case 'ERR_INVALID_URL':
        return 'invalid database URL: expected postgres://user:password@host:port/database';
    }
  }
  return undefined;
}

/** The error and everything it wraps (slonik and AggregateError both nest the real one). */
function* causes(error: unknown, depth = 0): Generator<PgLikeError> {
  if (!error || typeof error !== 'object' || depth > 5) return;
  const e = error as PgLikeError;
  yield e;
  yield* causes(e.cause, depth + 1);
  for (const inner of e.errors ?? []) yield* causes(inner, depth + 1);
}
