import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/free-port.js';
import type { TestServer } from './server.js';

/** The bin folder of the newest PostgreSQL installed the Debian way, or via pg_config. */
export function findSystemPostgres(): string | undefined {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).filter((v) => existsSync(join(debian, v, 'bin', 'initdb')));
    versions.sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(debian, versions[0], 'bin');
  }
  try {
    const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(join(bindir, 'initdb'))) return bindir;
  } catch {
    // no pg_config on PATH
  }
  return undefined;
}

/** A cluster made by the system's initdb in a temporary folder of its own. */
export interface SystemCluster {
  dataDir: string;
  /** Runs one of the server's programs (pg_ctl, pg_config, ...), as `postgres` when we are root. */
  run(program: string, args: string[]): string;
  /** Writes `settings` (lines of postgresql.conf) to postgresql.auto.conf, replacing what was there. */
  configure(settings: string[]): Promise<void>;
  /** Starts the server with its log in `server.log`, resolving once it accepts connections. */
  start(): Promise<void>;
  /** Stops the server at once, as in a crash (synchronous, so it also works in an exit handler). */
  stop(): void;
  /** Stops the server if it runs and removes its folder. */
  destroy(): Promise<void>;
}

/**
 * A new, not yet started cluster in a temporary folder, made by the system's
 * initdb. initdb and pg_ctl refuse to run as root, so as root the folder and
 * the cluster belong to `postgres` and its programs run as that user.
 */
export async function initSystemCluster(bindir: string, prefix: string): Promise<SystemCluster> {
  const asRoot = process.getuid?.() === 0;
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  if (asRoot) {
    const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' })));
    await chown(dataDir, uid!, gid!);
  }
  const command = (program: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', join(bindir, program), ...args]] : [join(bindir, program), args];
  const run = (program: string, args: string[]) => {
    const [cmd, argv] = command(program, args);
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  const logFile = join(dataDir, 'server.log');
  // Started with no pipe to us: the server outlives pg_ctl, and a pipe it
  // inherited would keep the caller waiting for its end.
  const start = () => new Promise<void>((resolve, reject) => {
    const [cmd, argv] = command('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', 'start']);
    const child = spawn(cmd, argv, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl start failed (${code}); see ${logFile}`))));
  });
  const stop = () => {
    run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
  };
  return {
    dataDir,
    run,
    configure: (settings) => writeFile(join(dataDir, 'postgresql.auto.conf'), settings.join('\n') + '\n'),
    start,
    stop,
    destroy: async () => {
      try {
        stop();
      } catch {
        // not running
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Settings that make a throwaway server fast and reachable only from here: on
 * `port` over TCP at `listenAddresses`, with its socket in its own folder,
 * and no waiting for the disk (the machine does not crash under a test).
 */
export function throwawaySettings(cluster: SystemCluster, port: number, listenAddresses = '127.0.0.1'): string[] {
  return [
    `port = ${port}`,
    `listen_addresses = '${listenAddresses}'`,
    `unix_socket_directories = '${cluster.dataDir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
  ];
}

/**
 * Starts a throwaway cluster from the system's binaries, tuned for tests
 * (no fsync), with pg_cron preloaded when its library is installed.
 */
export async function startSystemPostgres(bindir: string): Promise<TestServer> {
  const cluster = await initSystemCluster(bindir, 'ai-cost-test-pg-');
  const pkglibdir = cluster.run('pg_config', ['--pkglibdir']).trim();
  const pgCron = existsSync(join(pkglibdir, 'pg_cron.so'));
  const port = await freePort();
  await cluster.configure([
    ...throwawaySettings(cluster, port),
    'max_connections = 200',
    ...(pgCron ? ["shared_preload_libraries = 'pg_cron'", "cron.database_name = 'postgres'"] : []),
  ]);
  await cluster.start();
  const version = cluster.run('postgres', ['--version']).trim();
  return {
    url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    description: `${version}${pgCron ? ' with pg_cron' : ''} (system binaries)`,
    pgCron,
    stop: () => cluster.destroy(),
  };
}
