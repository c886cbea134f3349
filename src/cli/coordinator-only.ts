import type { Command } from 'commander';
import { resolveDatabaseUrl, UsageError, withClient } from '../db.js';
import { commandNames } from './command-names.js';

/**
 * Refuses, before a command does anything, to run against a worker of a
 * Citus cluster. A worker holds shards and node-local copies, not the
 * ledger: there every command would answer wrongly (no migrations applied,
 * nothing to report, repricing that Citus cannot run from a shard's node).
 * Runs as the program's preAction hook, for every command given a database:
 * by --database-url, or by DATABASE_URL for all but the demo (which then
 * runs on its own embedded server). Without one, the command's own error
 * says so.
 */
export async function refuseCitusWorker(_program: Command, command: Command): Promise<void> {
  if (!command.options.some((option) => option.long === '--database-url')) return;
  const given = (command.opts() as { databaseUrl?: string }).databaseUrl
    ?? (command.name() === 'demo' ? undefined : process.env.DATABASE_URL);
  if (!given) return;
  const worker = await withClient(resolveDatabaseUrl(given), async (client) => {
    // pg_dist_local_group exists only where Citus is installed: asked by name.
    const citus = await client.query<{ installed: boolean }>(
      `SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL AS installed`);
    if (!citus.rows[0]!.installed) return undefined;
    const group = await client.query<{ worker: boolean }>(
      'SELECT groupid OPERATOR(pg_catalog.<>) 0 AS worker FROM pg_catalog.pg_dist_local_group');
    if (group.rows[0]?.worker !== true) return undefined;
    // A worker knows its coordinator (group 0) from the metadata Citus syncs to it.
    const coordinator = await client.query<{ address: string }>(
      `SELECT nodename OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) nodeport AS address
         FROM pg_catalog.pg_dist_node WHERE groupid OPERATOR(pg_catalog.=) 0`);
    return { coordinator: coordinator.rows[0]?.address };
  });
  if (worker) {
    const where = worker.coordinator ? `, at ${worker.coordinator}` : '';
    throw new UsageError(`ai-cost ${commandNames(command).join(' ')} runs on the Citus coordinator${where}, and this is a worker: give the coordinator's URL`);
  }
}
