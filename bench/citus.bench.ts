import pg from 'pg';
import { distribute } from '../src/distribute.js';
import { createPool } from '../src/db.js';
import { migrate } from '../src/migrate.js';
import { findCitus, startCitusCluster } from '../test/support/citus-cluster.js';
import type { RecorderRun } from './recorder-client.js';
import { inApplicationProcess, medianMs, timed, type Benchmark, type Measurement } from './support.js';

/**
 * What Citus costs and buys here: the same work on one server (the bench
 * server) and on a cluster of a coordinator and two workers on this machine
 * (`ai-cost distribute`), as ratios in one run. The workers share the
 * machine's cores with the coordinator, so this measures the overhead of
 * distribution, not the capacity more machines add.
 */
/** The report shapes of docs/reporting.md a dashboard asks most. */
const QUERIES: Record<string, string> = {
  'spend_by_day, last 30 days': `SELECT * FROM ai_cost.spend_by_day WHERE day >= current_date - 30`,
  'spend_daily_by_dimension top tenants, 30 days': `SELECT value, sum(cost_micros) FROM ai_cost.spend_daily_by_dimension
    WHERE dimension = 'tenant' AND day >= current_date - 30 GROUP BY 1 ORDER BY 2 DESC LIMIT 10`,
  'spend_daily_by_user one tenant by user, 30 days': `SELECT user_id, sum(cost_micros) FROM ai_cost.spend_daily_by_user
    WHERE tenant_id = 'tenant-7' AND day >= current_date - 30 GROUP BY 1`,
  'calls_between, last 24 hours by model': `SELECT model, sum(calls), sum(cost_micros)
    FROM ai_cost.calls_between(now() - interval '24 hours', now()) GROUP BY model`,
  'one tenant\'s raw calls, last 7 days': `SELECT count(*), sum(cost_micros) FROM ai_cost.calls
    WHERE tenant_id = 'tenant-7' AND created_at >= now() - interval '7 days'`,
  'every tenant\'s raw calls, last 7 days': `SELECT tenant_id, count(*), sum(cost_micros) FROM ai_cost.calls
    WHERE created_at >= now() - interval '7 days' GROUP BY 1`,
};

/** The recorder's throughput into `url`, run as an application runs it (bench/recorder-client.ts). */
async function recorderRate(url: string, calls: number, prefix: string): Promise<number> {
  return (await inApplicationProcess<RecorderRun>(['run', url, String(calls), prefix])).rate;
}

/** Loads `rows` calls of history over 30 days in one INSERT ... SELECT, returning its time in ms. */
function bulkInsert(client: pg.Client, rows: number, offset: number): Promise<number> {
  return timed(() => client.query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, user_id, feature, input_tokens, output_tokens, total_ms)
    SELECT now() - (i::float8 / ${rows}) * interval '30 days', 'openai', CASE WHEN i % 2 = 0 THEN 'gpt-4o-mini' ELSE 'gpt-4.1' END,
           'tenant-' || (i * 7919) % 300, 'user-' || (i * 7919) % 3000, 'feature-' || i % 12, 500 + i % 4000, 50 + i % 700, 200 + i % 5000
      FROM generate_series(${offset}::bigint, ${offset + rows - 1}) AS i`));
}

const bench: Benchmark = {
  name: 'citus',
  async run({ database, scale }) {
    const citus = findCitus();
    if (!('bindir' in citus)) {
      console.log(`citus: skipped: ${citus.missing}`);
      return [];
    }
    const history = Math.max(20_000, Math.round(500_000 * scale));
    const recorded = Math.max(5_000, Math.round(50_000 * scale));
    const cluster = await startCitusCluster();
    const results: Measurement[] = [];
    const m = (metric: string, value: number, unit: string): Measurement => ({ bench: 'citus', metric, value, unit });
    try {
      const single = await database('citus_single');
      const distributedUrl = await cluster.createDatabase('bench_citus');
      await migrate(distributedUrl);
      const pool = await createPool(distributedUrl, 1);
      await distribute(pool);
      await pool.end();
      const urls = { 'one server': single, cluster: distributedUrl };
      const clients = { 'one server': new pg.Client({ connectionString: single }), cluster: new pg.Client({ connectionString: distributedUrl }) };
      await Promise.all(Object.values(clients).map((client) => client.connect()));
      try {
        const bulk: Record<string, number> = {};
        for (const layout of ['one server', 'cluster'] as const) {
          bulk[layout] = await bulkInsert(clients[layout], history, 0);
          results.push(m(`${layout}: INSERT ... SELECT of ${history} calls`, history / (bulk[layout]! / 1000), 'calls/s'));
          await clients[layout].query('SELECT * FROM ai_cost.refresh()');
          await clients[layout].query('VACUUM ANALYZE');
        }
        results.push(m('cluster / one server: INSERT ... SELECT time', bulk.cluster! / bulk['one server']!, 'x'));
        const refresh: Record<string, number> = {};
        for (const layout of ['one server', 'cluster'] as const) {
          await bulkInsert(clients[layout], 10_000, history);
          refresh[layout] = await timed(() => clients[layout].query('SELECT * FROM ai_cost.refresh(views => false)'));
          results.push(m(`${layout}: refresh after 10,000 new calls`, refresh[layout]!, 'ms'));
        }
        results.push(m('cluster / one server: refresh after 10,000 new calls', refresh.cluster! / refresh['one server']!, 'x'));

        // A session keeps one connection to each worker between statements by
        // default, and a statement over many shards opens more. A BI tool's
        // session keeping more (docs/scaling.md) is measured beside the default.
        const oneServerTimes: Record<string, number> = {};
        for (const [label, sql] of Object.entries(QUERIES)) {
          oneServerTimes[label] = await medianMs(5, () => clients['one server'].query(sql));
          results.push(m(`one server: ${label}`, oneServerTimes[label]!, 'ms'));
        }
        // Queries first: the recorder's calls all fall in the current hour,
        // which calls_between reads raw.
        for (const cached of [1, 16]) {
          const setting = `citus.max_cached_conns_per_worker = ${cached}`;
          await clients.cluster.query(`ALTER DATABASE bench_citus SET citus.max_cached_conns_per_worker = ${cached}`);
          const session = new pg.Client({ connectionString: distributedUrl });
          await session.connect();
          try {
            for (const [label, sql] of Object.entries(QUERIES)) {
              const time = await medianMs(5, () => session.query(sql));
              results.push(m(`cluster, ${setting}: ${label}`, time, 'ms'));
              results.push(m(`cluster, ${setting} / one server: ${label}`, time / oneServerTimes[label]!, 'x'));
            }
          } finally {
            await session.end();
          }
        }
        // The queries above ran right after a refresh, with no call waiting
        // for the next one. The live views add the calls that wait, which on
        // the cluster are on the shards: spend_by_day again with 1,000 of them.
        const waitingQuery = QUERIES['spend_by_day, last 30 days']!;
        const waitingTime = async (url: string) => {
          const session = new pg.Client({ connectionString: url });
          await session.connect();
          try {
            return await medianMs(5, () => session.query(waitingQuery));
          } finally {
            await session.end();
          }
        };
        await bulkInsert(clients['one server'], 1_000, history + 10_000);
        await bulkInsert(clients.cluster, 1_000, history + 10_000);
        const oneServerWaiting = await waitingTime(urls['one server']);
        results.push(m('one server: spend_by_day, last 30 days, 1,000 calls waiting for the refresh', oneServerWaiting, 'ms'));
        for (const cached of [1, 16]) {
          const setting = `citus.max_cached_conns_per_worker = ${cached}`;
          await clients.cluster.query(`ALTER DATABASE bench_citus SET citus.max_cached_conns_per_worker = ${cached}`);
          const time = await waitingTime(urls.cluster);
          results.push(m(`cluster, ${setting}: spend_by_day, last 30 days, 1,000 calls waiting for the refresh`, time, 'ms'));
          results.push(m(`cluster, ${setting} / one server: spend_by_day, 1,000 calls waiting for the refresh`, time / oneServerWaiting, 'x'));
        }
        await clients.cluster.query('ALTER DATABASE bench_citus RESET citus.max_cached_conns_per_worker');
        // An update of calls already folded (a reprice, say) is captured as
        // changes: on a cluster on the shards, where the refresh that folds
        // them stamps them and the next one deletes them (docs/scaling.md).
        // After the queries, so that they read change tables no update has
        // touched.
        const changed: Record<string, number> = {};
        for (const layout of ['one server', 'cluster'] as const) {
          await clients[layout].query('SELECT * FROM ai_cost.refresh(views => false)');
          const { rowCount: updated } = await clients[layout].query(
            `UPDATE ai_cost.calls SET output_tokens = output_tokens + 1 WHERE id % ${Math.round(history / 10_000)} = 0`);
          changed[layout] = await timed(() => clients[layout].query('SELECT * FROM ai_cost.refresh(views => false)'));
          results.push(m(`${layout}: refresh after an update of ${updated} calls`, changed[layout]!, 'ms'));
          const next = await timed(() => clients[layout].query('SELECT * FROM ai_cost.refresh(views => false)'));
          results.push(m(`${layout}: the refresh after that one`, next, 'ms'));
        }
        results.push(m('cluster / one server: refresh after an update of calls', changed.cluster! / changed['one server']!, 'x'));
        const oneServerRate = await recorderRate(urls['one server'], recorded, 'one-server');
        results.push(m(`one server: recorder, ${recorded} calls`, oneServerRate, 'calls/s'));
        // The recorder keeps its connections to the workers itself
        // (src/recorder/recorder.ts), whatever the database's default.
        const clusterRate = await recorderRate(distributedUrl, recorded, 'cluster');
        results.push(m(`cluster: recorder, ${recorded} calls`, clusterRate, 'calls/s'));
        results.push(m('cluster / one server: recorder throughput', clusterRate / oneServerRate, 'x'));
        // A batch of many tenants writes every shard it touches: the same
        // recorder on a ledger distributed over 8 shards instead of 32
        // (ai-cost distribute --shard-count 8).
        const fewerShards = await cluster.createDatabase('bench_citus_8_shards');
        await migrate(fewerShards);
        const fewerShardsPool = await createPool(fewerShards, 1);
        await distribute(fewerShardsPool, { shardCount: 8 });
        await fewerShardsPool.end();
        const fewerShardsRate = await recorderRate(fewerShards, recorded, 'cluster-8-shards');
        results.push(m(`cluster of 8 shards: recorder, ${recorded} calls`, fewerShardsRate, 'calls/s'));
        results.push(m('cluster of 8 shards / one server: recorder throughput', fewerShardsRate / oneServerRate, 'x'));
        // A ledger partitioned by month before it was distributed claims each
        // call's request id on its worker (docs/scaling.md, "A partitioned
        // ledger"): the recorder, and a bulk load with request ids, into it
        // and into the plain distributed ledger.
        const partitioned = await cluster.createDatabase('bench_citus_partitioned');
        await migrate(partitioned);
        const partitionedClient = new pg.Client({ connectionString: partitioned });
        await partitionedClient.connect();
        try {
          await partitionedClient.query('SELECT * FROM ai_cost.partition_calls()');
          const partitionedPool = await createPool(partitioned, 1);
          await distribute(partitionedPool);
          await partitionedPool.end();
          const partitionedRate = await recorderRate(partitioned, recorded, 'cluster-partitioned');
          results.push(m(`partitioned cluster: recorder, ${recorded} calls`, partitionedRate, 'calls/s'));
          results.push(m('partitioned cluster / cluster: recorder throughput', partitionedRate / clusterRate, 'x'));
          const withRequestIds: Record<string, number> = {};
          for (const [layout, client] of [['cluster', clients.cluster], ['partitioned cluster', partitionedClient]] as const) {
            withRequestIds[layout] = await timed(() => client.query(`
              INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens, request_id)
              SELECT 'openai', 'gpt-4o-mini', 'tenant-' || (i * 7919) % 300, 500, 50, 'bulk-' || i
                FROM generate_series(1, ${recorded}) AS i`));
            results.push(m(`${layout}: INSERT ... SELECT of ${recorded} calls with request ids`, recorded / (withRequestIds[layout]! / 1000), 'calls/s'));
          }
          results.push(m('partitioned cluster / cluster: INSERT ... SELECT time with request ids',
            withRequestIds['partitioned cluster']! / withRequestIds.cluster!, 'x'));
        } finally {
          await partitionedClient.end();
        }
      } finally {
        await Promise.all(Object.values(clients).map((client) => client.end()));
      }
    } finally {
      await cluster.stop();
    }
    return results;
  },
};
export default bench;
