import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext, SerialFn, TestFn } from 'ava';
import pg from 'pg';
import { freePort } from '../../src/free-port.js';
import { migrate } from '../../src/migrate.js';
import { initSystemCluster, throwawaySettings, type SystemCluster } from './system-postgres.js';

/**
 * A Citus cluster on localhost for tests: a coordinator and workers, each a
 * throwaway PostgreSQL 15 in a temporary folder of its own, reaching each
 * other over TCP with trust authentication.
 */
export interface CitusCluster {
  coordinatorPort: number;
  /** The workers' ports, in the order they were added. */
  workerPorts(): number[];
  coordinatorUrl(database?: string): string;
  workerUrls(database?: string): string[];
  /**
   * Creates `name` on every node with the citus extension in it, and
   * registers the coordinator and every worker in it (Citus does not
   * propagate CREATE DATABASE). Returns the coordinator's URL of it.
   */
  createDatabase(name: string): Promise<string>;
  /** Drops `name` on every node. */
  dropDatabase(name: string): Promise<void>;
  /** Starts one more worker and adds it to every database created so far (no rebalance). */
  addWorker(): Promise<{ port: number }>;
  /** Stops every node and removes its folder. */
  stop(): Promise<void>;
}

/** Where Citus is: the bin folder of the PostgreSQL it was built for, or why it cannot run here. */
export type CitusAvailability = { bindir: string } | { missing: string; failUnderCi: boolean };

/**
 * Citus 13.2.2 is built for PostgreSQL 15 (by ../shared/tools/install-citus),
 * so the Citus tests run in the PostgreSQL 15 run only. On the embedded
 * PostgreSQL 18 run they are skipped, even under CI=true; elsewhere a missing
 * Citus skips them, and fails them under CI=true, where .ci/run installs it.
 */
export function findCitus(): CitusAvailability {
  if (process.env.AI_COST_TEST_PG === 'embedded') {
    return { missing: 'Citus is built for PostgreSQL 15 only and this run is on embedded PostgreSQL 18; the AI_COST_TEST_PG=system run covers it', failUnderCi: false };
  }
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian) ? readdirSync(debian) : [];
  const version = versions.find((v) => existsSync(join(debian, v, 'lib', 'citus.so')) && existsSync(join(debian, v, 'bin', 'initdb')));
  if (version) return { bindir: join(debian, version, 'bin') };
  return { missing: 'Citus is not installed for PostgreSQL 15; run ../shared/tools/install-citus', failUnderCi: true };
}

interface Node {
  port: number;
  server: SystemCluster;
}

/** Every node started in this process, stopped at exit if a test file did not stop its cluster. */
const running = new Set<Node>();
process.on('exit', () => {
  for (const node of running) {
    try {
      node.server.stop();
    } catch {
      // already stopped
    }
  }
});

/**
 * Starts a coordinator and `workers` workers (two unless said), in parallel.
 * The coordinator also preloads pg_cron when it is installed, with
 * `cronDatabase` (default `postgres`) as its database.
 */
export async function startCitusCluster(options: { workers?: number; cronDatabase?: string } = {}): Promise<CitusCluster> {
  const citus = findCitus();
  if (!('bindir' in citus)) throw new Error(citus.missing);
  const { bindir } = citus;
  const cronDatabase = options.cronDatabase ?? 'postgres';

  const startNode = async (role: 'coordinator' | 'worker'): Promise<Node> => {
    const server = await initSystemCluster(bindir, `ai-cost-citus-${role}-`);
    const node = { port: await freePort(), server };
    const pkglibdir = server.run('pg_config', ['--pkglibdir']).trim();
    const pgCron = role === 'coordinator' && existsSync(join(pkglibdir, 'pg_cron.so'));
    await server.configure([
      ...throwawaySettings(server, node.port, 'localhost'),
      // Citus opens connections between nodes for every distributed query.
      'max_connections = 200',
      'shared_buffers = 32MB',
      // A maintenance daemon per database with citus, plus the rebalancer's
      // background tasks and logical replication (shard moves) workers.
      'max_worker_processes = 64',
      'wal_level = logical',
      'max_replication_slots = 32',
      'max_wal_senders = 32',
      pgCron ? "shared_preload_libraries = 'citus,pg_cron'" : "shared_preload_libraries = 'citus'",
      ...(pgCron ? [`cron.database_name = '${cronDatabase}'`] : []),
      // No reports home: the network is not reachable from tests.
      'citus.enable_statistics_collection = off',
      // The rebalancer picks up its tasks sooner than the default 5 s.
      "citus.background_task_queue_interval = '500ms'",
    ]);
    running.add(node);
    await server.start();
    return node;
  };

  const coordinator = await startNode('coordinator');
  const workers = await Promise.all(Array.from({ length: options.workers ?? 2 }, () => startNode('worker')));
  const databases: string[] = [];
  const url = (node: Node, database: string) => `postgres://postgres@127.0.0.1:${node.port}/${database}`;

  const onNode = async (node: Node, database: string, statements: string[]) => {
    const client = new pg.Client({ connectionString: url(node, database) });
    // As the pools of the databases (below): a statement it runs still fails with its reason.
    client.on('error', () => {});
    await client.connect();
    try {
      for (const statement of statements) await client.query(statement);
    } finally {
      await client.end();
    }
  };

  const register = (database: string, nodes: Node[]) =>
    onNode(coordinator, database, nodes.map((node) => `SELECT pg_catalog.citus_add_node('localhost', ${node.port})`));

  return {
    coordinatorPort: coordinator.port,
    workerPorts: () => workers.map((node) => node.port),
    coordinatorUrl: (database = 'postgres') => url(coordinator, database),
    workerUrls: (database = 'postgres') => workers.map((node) => url(node, database)),

    createDatabase: async (name) => {
      const nodes = [coordinator, ...workers];
      // Workers first: the coordinator reaches into them once registered.
      for (const node of nodes.slice(1).concat(coordinator)) await onNode(node, 'postgres', [`CREATE DATABASE ${name}`]);
      await Promise.all(nodes.map((node) => onNode(node, name, ['CREATE EXTENSION citus'])));
      await onNode(coordinator, name, [`SELECT pg_catalog.citus_set_coordinator_host('localhost', ${coordinator.port})`]);
      await register(name, workers);
      databases.push(name);
      return url(coordinator, name);
    },

    dropDatabase: async (name) => {
      const index = databases.indexOf(name);
      if (index >= 0) databases.splice(index, 1);
      // FORCE: Citus keeps connections of its own between nodes open for a while.
      for (const node of [coordinator, ...workers]) await onNode(node, 'postgres', [`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    },

    addWorker: async () => {
      const node = await startNode('worker');
      for (const database of databases) {
        await onNode(node, 'postgres', [`CREATE DATABASE ${database}`]);
        await onNode(node, database, ['CREATE EXTENSION citus']);
      }
      workers.push(node);
      for (const database of databases) await register(database, [node]);
      return { port: node.port };
    },

    stop: async () => {
      const nodes = [coordinator, ...workers];
      for (const node of nodes) running.delete(node);
      await Promise.all(nodes.map((node) => node.server.destroy()));
    },
  };
}

/** A database of one test's own on the test file's cluster. */
export interface CitusDatabase {
  name: string;
  /** The coordinator's URL of it. */
  url: string;
  /** The workers' URLs of it. */
  workerUrls: string[];
  /** A query on the coordinator (plain pg: int8 arrives as a string). */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /** A connection to the coordinator as a new login granted only ai_cost_reader, as a BI tool has; both go when the test ends. */
  readerLogin(): Promise<pg.Client>;
}

/** The cluster of one test file, started before its tests and stopped after them. */
export interface CitusTestCluster {
  /** The cluster itself, once the file's `before` hook has started it. */
  cluster: CitusCluster;
  /**
   * A fresh database on every node for test `t`, dropped when the test ends.
   * `migrated: true` installs pg-ai-cost in it on the coordinator with `migrate up`.
   */
  database(t: ExecutionContext, options?: { migrated?: boolean }): Promise<CitusDatabase>;
}

/**
 * Gives a test file one Citus cluster, shared by its tests (each takes a
 * database of its own with `database(t)`), when Citus can run here; declare
 * the tests with `testOnCitus` so that they are skipped or failed otherwise.
 */
export function useCitusCluster(test: TestFn, options: { workers?: number; cronDatabase?: string } = {}): CitusTestCluster {
  const handle = {
    database: async (t: ExecutionContext, databaseOptions: { migrated?: boolean } = {}) => {
      const { cluster } = handle;
      const name = `c_${randomBytes(6).toString('hex')}`;
      const url = await cluster.createDatabase(name);
      const pool = new pg.Pool({ connectionString: url, max: 4 });
      // An idle connection a node ends (Citus and DROP DATABASE ... WITH
      // (FORCE) end backends of their own accord) must not end the test
      // process: the pool opens another, and a query that was running fails
      // its test with the reason.
      pool.on('error', () => {});
      t.teardown(async () => {
        await pool.end();
        await cluster.dropDatabase(name);
      });
      if (databaseOptions.migrated) await migrate(url);
      const readerLogin = async () => {
        const login = `r_${name.slice(2)}`;
        await pool.query(`CREATE ROLE ${login} LOGIN IN ROLE ai_cost_reader`);
        t.teardown(() => pool.query(`DROP ROLE ${login}`).then(() => undefined));
        const client = new pg.Client({ connectionString: Object.assign(new URL(url), { username: login }).toString() });
        await client.connect();
        t.teardown(() => client.end());
        return client;
      };
      return {
        name,
        url,
        workerUrls: cluster.workerUrls(name),
        query: async (text: string, params?: unknown[]) => (await pool.query(text, params)).rows,
        readerLogin,
      } as CitusDatabase;
    },
  } as CitusTestCluster;
  if (!('bindir' in findCitus())) return handle;
  test.before(async () => {
    handle.cluster = await startCitusCluster(options);
  });
  test.after.always(async () => {
    await handle.cluster?.stop();
  });
  return handle;
}

/**
 * Declares a test that needs Citus. Where Citus cannot run, the test is
 * skipped with a title that says why; under CI=true a missing Citus fails it
 * instead, except on the embedded PostgreSQL 18 run, which Citus does not support.
 */
export function testOnCitus(test: TestFn | SerialFn, title: string, implementation: (t: ExecutionContext) => Promise<void>): void {
  const citus = findCitus();
  if ('bindir' in citus) test(title, implementation);
  else if (citus.failUnderCi && process.env.CI === 'true') test(title, (t) => t.fail(citus.missing));
  else test.skip(`${title} (skipped: ${citus.missing})`, () => {});
}
