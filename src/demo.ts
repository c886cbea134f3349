import { createPool, withClient } from './db.js';
import { defaultDataDir, importEmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';
import { migrate } from './migrate.js';
import { spendByModel, type ModelSpend } from './reporting/queries.js';
import { refresh } from './reporting/refresh.js';
import { runPackageSqlFile } from './sql-files.js';

const DEMO_DATABASE = 'ai_cost_demo';

interface DemoResult {
  /** Where the demo ran: the given URL, or the embedded server's. */
  databaseUrl: string;
  embedded: boolean;
  spend: ModelSpend[];
  /** With `keep`, the embedded server is still running: call this to stop it. */
  stop?: () => Promise<void>;
}

export interface DemoOptions {
  /** Leave the embedded PostgreSQL running for a look around; the caller stops it. */
  keep?: boolean;
}

/**
 * Installs pg-ai-cost, loads two weeks of sample calls and reports spend by
 * model. Without a database URL it runs on an embedded PostgreSQL whose files
 * are kept between runs, in a database it recreates each time.
 */
export async function runDemo(
  databaseUrl?: string, progress: (line: string) => void = () => {}, options: DemoOptions = {},
): Promise<DemoResult> {
  if (databaseUrl) return { ...(await populate(databaseUrl, progress)), embedded: false };

  const dataDir = defaultDataDir('demo');
  await importEmbeddedPostgres();
  progress(`starting embedded PostgreSQL in ${dataDir}`);
  const server = await startEmbeddedPostgres(dataDir);
  let keep = false;
  try {
    await recreateDatabase(server.url, DEMO_DATABASE);
    const result = await populate(server.urlFor(DEMO_DATABASE), progress);
    keep = options.keep ?? false;
    return { ...result, embedded: true, ...(keep ? { stop: () => server.stop() } : {}) };
  } finally {
    if (!keep) await server.stop();
  }
}

async function populate(databaseUrl: string, progress: (line: string) => void) {
  const { ran } = await migrate(databaseUrl);
  progress(ran.length ? `installed migrations: ${ran.join(', ')}` : 'schema ai_cost is up to date');
  await runPackageSqlFile(databaseUrl, 'demo/calls.sql');
  progress('inserted 2,400 sample calls from the last 14 days');
  const pool = await createPool(databaseUrl, 1);
  try {
    // What pg_cron would do within minutes: the materialized views a BI tool
    // reads (spend_share, top_spenders, ...) then hold the sample calls too.
    await refresh(pool);
    progress('refreshed the rollups and materialized views');
    return { databaseUrl, spend: await spendByModel(pool) };
  } finally {
    await pool.end();
  }
}

async function recreateDatabase(serverUrl: string, name: string): Promise<void> {
  await withClient(serverUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  });
}
