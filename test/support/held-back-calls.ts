import type { ExecutionContext, TestFn } from 'ava';
import pg from 'pg';
import { createPool } from '../../src/db.js';
import { diagnose } from '../../src/reporting/doctor.js';
import { useTestDatabase } from './database.js';

/**
 * The refresh reads new calls by id range (sql/090_rollups.sql): ids that a
 * transaction still open may fill are held back, read again by every later
 * refresh, and folded once, when they are visible. These tests run the
 * refresh as pg_cron does, at READ COMMITTED on its own connection, while
 * other connections hold calls back in each way a writer can; on a plain
 * ai_cost.calls, or on one converted by ai_cost.partition_calls().
 */
export function heldBackCallTests(test: TestFn, { partitioned }: { partitioned: boolean }): void {
  const db = useTestDatabase(test, {
    setup: async (db) => {
      await db.query(`
        INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
        VALUES ('test', 'mini', '2020-01-01', 0.15, 0.60)`);
      if (partitioned) await db.query('SELECT * FROM ai_cost.partition_calls()');
    },
  });

  const insert = (tenant: string, count = 1) => `
    INSERT INTO ai_cost.calls (provider, model, tenant_id, input_tokens, output_tokens)
    SELECT 'test', 'mini', '${tenant}', 1000 + i, 100 FROM generate_series(1, ${count}) AS i`;

  /** Calls and cost per tenant: in the rollup, in the live view, and in the raw table. */
  const PER_TENANT = {
    rollup: `SELECT tenant_id, sum(calls)::int AS calls, sum(cost_micros)::bigint::text AS cost FROM ai_cost.calls_hourly GROUP BY 1 ORDER BY 1`,
    live: `SELECT tenant_id, sum(calls)::int AS calls, sum(cost_micros)::bigint::text AS cost FROM ai_cost.calls_hourly_live GROUP BY 1 HAVING sum(calls) <> 0 ORDER BY 1`,
    raw: `SELECT tenant_id, count(*)::int AS calls, coalesce(sum(cost_micros), 0)::bigint::text AS cost FROM ai_cost.calls GROUP BY 1 ORDER BY 1`,
  };

  async function refresh(): Promise<void> {
    await db.query('SELECT * FROM ai_cost.refresh(views => false)');
  }

  async function tenantsIn(query: string): Promise<string[]> {
    return (await db.query<{ tenant_id: string }>(query)).map((row) => row.tenant_id);
  }

  async function assertFoldedExactly(t: ExecutionContext): Promise<void> {
    await refresh();
    const raw = await db.query(PER_TENANT.raw);
    t.true(raw.length > 0);
    t.deepEqual(await db.query(PER_TENANT.rollup), raw, 'the rollup equals the raw calls');
    t.deepEqual(await db.query(PER_TENANT.live), raw, 'the live view equals the raw calls');
    const [status] = await db.query<{ pending: number; held: boolean }>(
      'SELECT pending_changes::int AS pending, held_back_since IS NOT NULL AS held FROM ai_cost.refresh_status');
    t.deepEqual(status, { pending: 0, held: false }, 'nothing waits once every writer has ended');
  }

  async function connect(): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    return client;
  }

  test.afterEach.always(async () => {
    await db.query('DROP TRIGGER IF EXISTS tg_calls__zz_slow_writer ON ai_cost.calls');
    await db.query('TRUNCATE ai_cost.calls');
  });

  test.serial('a backlog larger than a fold part is folded part by part, once each, past a gap in the ids and a writer still open', async (t) => {
    const open = await connect();
    const refresher = await connect();
    try {
      await open.query('BEGIN');
      await open.query(insert('open', 3));
      await db.query(insert('before the gap', 10));
      // Ids drawn far ahead, as after setval(): a part is counted from the lowest id above the gap.
      await db.query(`SELECT setval(pg_get_serial_sequence('ai_cost.calls', 'id'), nextval(pg_get_serial_sequence('ai_cost.calls', 'id')) + 1000000000000)`);
      await db.query(insert('after the gap', 10));
      await refresher.query('SET ai_cost.fold_part_calls = 4');
      const { rows: [folded] } = await refresher.query<{ changes_applied: string }>('SELECT changes_applied FROM ai_cost.refresh(views => false)');
      t.is(Number(folded!.changes_applied), 20, 'every committed call, once, in parts of 4');
      const raw = await db.query(PER_TENANT.raw);
      t.deepEqual(await db.query(PER_TENANT.rollup), raw, 'the rollup equals the raw calls');
      await open.query('COMMIT');
      const { rows: [later] } = await refresher.query<{ changes_applied: string }>('SELECT changes_applied FROM ai_cost.refresh(views => false)');
      t.is(Number(later!.changes_applied), 3, 'the calls held back, once their writer committed');
      await assertFoldedExactly(t);
    } finally {
      await open.end();
      await refresher.end();
    }
  });

  test.serial('an open transaction holds back only its own calls, and they are folded once it commits', async (t) => {
    const open = await connect();
    try {
      await open.query('BEGIN');
      await open.query(insert('open', 3)); // the lowest ids, not committed
      await db.query(insert('committed', 5));
      await refresh();
      t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['committed'], 'calls committed around the open transaction are folded');
      const [status] = await db.query<{ pids: number[]; since: Date | null }>(
        'SELECT held_back_by_pids AS pids, held_back_since AS since FROM ai_cost.refresh_status');
      const [{ pid }] = (await open.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
      t.deepEqual(status!.pids, [pid], 'refresh_status names the backend holding calls back');
      t.truthy(status!.since);
      const pool = await createPool(db.url);
      try {
        const { checks } = await diagnose(db.url, pool);
        const held = checks.find((check) => check.name === 'held back');
        t.regex(held?.detail ?? '', new RegExp(`held back by the open transaction\\(s\\) of backend\\(s\\) ${pid}\\b`), 'doctor says what holds the rollups back');
      } finally {
        await pool.end();
      }

      // The open transaction goes on: more calls, and an update of one of its own.
      await open.query(insert('open', 2));
      await open.query(`UPDATE ai_cost.calls SET tenant_id = 'open-moved' WHERE id = (SELECT min(id) FROM ai_cost.calls WHERE tenant_id = 'open')`);
      await db.query(insert('committed', 1));
      await refresh();
      t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['committed']);
      await open.query('COMMIT');
    } finally {
      await open.end();
    }
    await assertFoldedExactly(t);
    t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['committed', 'open', 'open-moved']);
    const pool = await createPool(db.url);
    try {
      const { checks } = await diagnose(db.url, pool);
      t.false(checks.some((check) => check.name === 'held back'), 'doctor says nothing of it once the transaction ended');
    } finally {
      await pool.end();
    }
  });

  test.serial('a call whose id is drawn but not yet written when the refresh looks is folded once it commits', async (t) => {
    // A BEFORE INSERT trigger that sleeps: the id is drawn (the sequence is past it) and the row not written yet.
    await db.query(`
      CREATE OR REPLACE FUNCTION public.slow_writer() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.tenant_id = 'slow' THEN PERFORM pg_sleep(1.5); END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER tg_calls__zz_slow_writer BEFORE INSERT ON ai_cost.calls FOR EACH ROW EXECUTE FUNCTION public.slow_writer()`);
    const slow = await connect();
    try {
      const writing = slow.query(insert('slow'));
      // Wait until the slow writer has drawn its id: the sequence moves before the trigger sleeps.
      for (let i = 0; i < 100; i += 1) {
        const [row] = await db.query<{ sleeping: boolean }>(
          `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%slow%') AS sleeping`);
        if (row!.sleeping) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await db.query(insert('fast', 2)); // higher ids, committed while the slow call is being written
      await refresh();
      t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['fast']);
      await writing;
    } finally {
      await slow.end();
    }
    await assertFoldedExactly(t);
    t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['fast', 'slow']);
  });

  test.serial('ids drawn and never used (a rollback, a skipped duplicate) are forgotten once their writers end', async (t) => {
    const rolledBack = await connect();
    try {
      await rolledBack.query('BEGIN');
      await rolledBack.query(insert('rolled-back', 4));
      await db.query(insert('kept', 2));
      await db.query(`INSERT INTO ai_cost.calls (provider, model, request_id) VALUES ('test', 'mini', 'r1')`);
      await db.query(`INSERT INTO ai_cost.calls (provider, model, request_id) VALUES ('test', 'mini', 'r1') ON CONFLICT DO NOTHING`);
      await refresh();
      const [held] = await db.query<{ ranges: number }>('SELECT count(*)::int AS ranges FROM ai_cost_internal.unfolded_ids');
      t.true(held!.ranges >= 1, 'the ids of the open transaction wait');
      await rolledBack.query('ROLLBACK');
    } finally {
      await rolledBack.end();
    }
    await assertFoldedExactly(t);
    const [left] = await db.query<{ ranges: number }>('SELECT count(*)::int AS ranges FROM ai_cost_internal.unfolded_ids');
    t.is(left!.ranges, 0);
  });

  test.serial('a call updated or deleted before any refresh folded it counts once, as it is now', async (t) => {
    await db.query(insert('before', 4));
    await db.query(`UPDATE ai_cost.calls SET tenant_id = 'after' WHERE id = (SELECT min(id) FROM ai_cost.calls)`);
    await db.query(`DELETE FROM ai_cost.calls WHERE id = (SELECT max(id) FROM ai_cost.calls)`);
    t.deepEqual(await db.query(PER_TENANT.live), await db.query(PER_TENANT.raw), 'the live view counts each call once before the refresh');
    await assertFoldedExactly(t);
    // And after the fold, changes count against what was folded.
    await db.query(`UPDATE ai_cost.calls SET tenant_id = 'later' WHERE tenant_id = 'after'`);
    await assertFoldedExactly(t);
  });

  test.serial('a refresh inside a REPEATABLE READ transaction leaves the calls committed after its snapshot to the next one', async (t) => {
    await db.query(insert('early', 2));
    const reader = await connect();
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT 1'); // the snapshot is taken here
      await db.query(insert('after-snapshot', 3)); // committed, but not visible to that snapshot
      await reader.query('SELECT * FROM ai_cost.refresh(views => false)');
      await reader.query('COMMIT');
    } finally {
      await reader.end();
    }
    t.deepEqual(await tenantsIn(PER_TENANT.rollup), ['early']);
    await assertFoldedExactly(t);
  });

  test.serial('after TRUNCATE ... RESTART IDENTITY the refresh reads the ids again from the start', async (t) => {
    await db.query(insert('gone', 3));
    await refresh();
    await db.query('TRUNCATE ai_cost.calls RESTART IDENTITY');
    await db.query(insert('fresh', 2));
    t.deepEqual((await db.query<{ id: string }>('SELECT id::text FROM ai_cost.calls ORDER BY id')).map((r) => r.id), ['1', '2']);
    await assertFoldedExactly(t);
  });

  test.serial('a sequence that caches ids is refused with the fix, since cached ids could arrive below the range read', async (t) => {
    await db.query('ALTER TABLE ai_cost.calls ALTER COLUMN id SET CACHE 20');
    try {
      const error = await db.query('SELECT * FROM ai_cost.refresh()').then(() => null, (e: Error) => e);
      t.regex(String(error?.message), /CACHE > 1/);
    } finally {
      await db.query('ALTER TABLE ai_cost.calls ALTER COLUMN id SET CACHE 1');
    }
  });
}
