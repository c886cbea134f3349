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

/**
 * Starts a throwaway cluster from the system's binaries, tuned for tests
 * (no fsync), with pg_cron preloaded when its library is installed. initdb
 * refuses to run as root, so as root the cluster belongs to `postgres`.
 */
export interface SystemCluster {
  dataDir: string;
  /** Runs one of the server's programs (pg_ctl, pg_config, ...), as `postgres` when we are root. */
  run(program: string, args: string[]): string;
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
  const run = (program: string, args: string[]) => {
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bindir, program), ...args]] : [join(bindir, program), args];
    return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
  return { dataDir, run };
}

export async function startSystemPostgres(bindir: string): Promise<TestServer> {
  const asRoot = process.getuid?.() === 0;
  const { dataDir, run } = await initSystemCluster(bindir, 'ai-cost-test-pg-');

  const pkglibdir = run('pg_config', ['--pkglibdir']).trim();
  const pgCron = existsSync(join(pkglibdir, 'pg_cron.so'));
  const port = await freePort();
  const settings = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dataDir}'`,
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'max_connections = 200',
    ...(pgCron ? ["shared_preload_libraries = 'pg_cron'", "cron.database_name = 'postgres'"] : []),
  ];
  await writeFile(join(dataDir, 'postgresql.auto.conf'), settings.join('\n') + '\n');
  const logFile = join(dataDir, 'server.log');
  await new Promise<void>((resolve, reject) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bindir, 'pg_ctl'), '-D', dataDir, '-l', logFile, '-w', 'start']]
      : [join(bindir, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', 'start']];
    const child = spawn(cmd, argv, { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl start failed (${code}); see ${logFile}`))));
  });
  const version = run('postgres', ['--version']).trim();
  return {
    url: (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    description: `${version}${pgCron ? ' with pg_cron' : ''} (system binaries)`,
    pgCron,
    stop: async () => {
      run('pg_ctl', ['-D', dataDir, '-m', 'immediate', 'stop']);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
