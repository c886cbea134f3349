import type { ConnectionOptions } from 'node:tls';
import { parse } from 'pg-connection-string';

/**
 * How a database URL's SSL parameters become the TLS settings of a
 * connection, read as libpq reads them: the URL a user has works in psql and
 * in their BI tool, and must mean the same here. pg (before 9) and slonik
 * read them otherwise: `sslmode=require` checks the server's certificate
 * against Node's list of public authorities, so a managed server whose
 * certificate comes from its provider's own authority (RDS, Heroku, Azure)
 * is refused where psql connects, and slonik refuses `verify-full` and
 * `verify-ca` as unknown. pg-connection-string, pg's own parser, reads them
 * as libpq does when asked (`useLibpqCompat`); this hands its TLS settings to
 * pg and slonik directly, and takes the SSL parameters out of the URL so that
 * neither reads them again its own way.
 *
 * - disable, allow: no SSL (allow would try SSL only after a refusal).
 * - prefer, require: encrypted; the certificate is not checked (require with
 *   sslrootcert checks it against that authority, as verify-ca). Unlike
 *   libpq, prefer does not fall back to a plain connection.
 * - verify-ca: checked against sslrootcert, whatever host name it names.
 * - verify-full: checked against sslrootcert (else the public authorities),
 *   and for the host name connected to.
 * - no-verify: pg's and slonik's own name for require without sslrootcert.
 *
 * As in libpq, PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY stand for
 * the parameters the URL leaves out. pg reads only PGSSLMODE, its own way,
 * and slonik none; both get settings from here whenever one is set.
 */
export interface ConnectionSsl {
  /** The URL without its SSL parameters. */
  url: string;
  /** TLS settings for pg; undefined where the URL says nothing of SSL. */
  ssl: false | ConnectionOptions | undefined;
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];
const SSL_FILES = ['sslrootcert', 'sslcert', 'sslkey'] as const;
const SSL_PARAMETERS = ['sslmode', ...SSL_FILES, 'uselibpqcompat', 'ssl'];

/** SSL parameters of a database URL that cannot be used: said in one line. */
export class InvalidSslSettingsError extends Error {
  override name = 'InvalidSslSettingsError';
}

/** libpq's environment variables for the SSL parameters a URL leaves out. */
const SSL_ENVIRONMENT: Record<string, string> = { sslmode: 'PGSSLMODE', sslrootcert: 'PGSSLROOTCERT', sslcert: 'PGSSLCERT', sslkey: 'PGSSLKEY' };

export function connectionSsl(databaseUrl: string): ConnectionSsl {
  const url = new URL(databaseUrl);
  const query = url.searchParams;
  for (const [name, variable] of Object.entries(SSL_ENVIRONMENT)) {
    const value = process.env[variable];
    if (value && !query.has(name)) query.set(name, value);
  }
  if (!SSL_PARAMETERS.some((name) => query.has(name))) return { url: databaseUrl, ssl: undefined };
  const mode = query.get('sslmode');
  if (mode !== null && !SSL_MODES.includes(mode)) {
    throw new InvalidSslSettingsError(`invalid database URL: sslmode '${mode}' is not one of ${SSL_MODES.slice(0, -1).join(', ')}`);
  }
  if (mode === 'verify-ca' && !query.get('sslrootcert')) {
    throw new InvalidSslSettingsError('invalid database URL: sslmode=verify-ca checks the server against sslrootcert=<file of its authority\'s certificate>, and the URL names none (or use sslmode=verify-full)');
  }
  const libpq = new URL(url);
  libpq.searchParams.delete('uselibpqcompat');
  if (mode === 'allow') libpq.searchParams.set('sslmode', 'disable');
  if (mode === 'no-verify') libpq.searchParams.set('sslmode', 'require');
  const { ssl } = parseReadingFiles(libpq.toString(), query);
  for (const name of SSL_PARAMETERS) query.delete(name);
  // ssl=true in the URL, without sslmode: pg's own spelling of verify-full.
  return { url: url.toString(), ssl: ssl === true ? {} : ssl as false | ConnectionOptions | undefined };
}

/** pg-connection-string's libpq reading, which reads the certificate files the URL names: one it cannot read is named. */
function parseReadingFiles(databaseUrl: string, query: URLSearchParams): ReturnType<typeof parse> {
  try {
    return parse(databaseUrl, { useLibpqCompat: true });
  } catch (error) {
    const { code, path, message } = error as NodeJS.ErrnoException;
    const name = SSL_FILES.find((file) => path !== undefined && query.get(file) === path);
    if (name === undefined) throw error;
    throw new InvalidSslSettingsError(`invalid database URL: cannot read ${name} ${path}: ${code === 'ENOENT' ? 'no such file' : message}`);
  }
}
