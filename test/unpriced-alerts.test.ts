import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

// The refresh announces a provider, model and service tier the first time it
// folds calls of it without a price: NOTIFY ai_cost_unpriced_model, once,
// with a JSON payload. Priced calls announce nothing, nor does a disabled
// setting, and a model is announced again only once it has no unpriced calls
// left and then gets new ones.
const db = useTestDatabase(test);

interface Alert {
  provider: string;
  model: string;
  service_tier: string;
  unpriced_reason?: string;
  first_hour: string;
}

/** A session that LISTENs on the channel and collects what arrives. */
async function listen(): Promise<{ received: Alert[]; settled: () => Promise<Alert[]>; end: () => Promise<void> }> {
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  const received: Alert[] = [];
  listener.on('notification', (message) => {
    if (message.channel === 'ai_cost_unpriced_model') received.push(JSON.parse(message.payload!) as Alert);
  });
  await listener.query('LISTEN ai_cost_unpriced_model');
  return {
    received,
    // A round trip: notifications committed before it have arrived.
    settled: async () => {
      await listener.query('SELECT 1');
      return received;
    },
    end: () => listener.end(),
  };
}

const call = (model: string, createdAt = 'now()', tier = 'standard') =>
  db.query(`INSERT INTO ai_cost.calls (created_at, provider, model, service_tier, input_tokens, output_tokens)
            VALUES (${createdAt}, 'openai', $1, $2, 1000, 100)`, [model, tier]);

const refresh = () => db.query('SELECT * FROM ai_cost.refresh(views => false)');

/** The UTC hour of a model's earliest call, as the payload writes it. */
async function firstHour(model: string, tier = 'standard'): Promise<string> {
  const [row] = await db.query<{ hour: string }>(
    `SELECT to_char(min(date_trunc('hour', created_at, 'UTC')) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') AS hour
       FROM ai_cost.calls WHERE model = $1 AND service_tier = $2`, [model, tier]);
  return row!.hour;
}

const announced = () => db.query<{ key: string }>(
  `SELECT provider || '/' || model || ' ' || service_tier AS key FROM ai_cost_internal.unpriced_model_alerts ORDER BY 1`);

test.serial('a model without a price is announced once, by the refresh that first folds its calls', async (t) => {
  const listener = await listen();
  try {
    await call('brand-new-model');
    await call('brand-new-model');
    await call('gpt-4o-mini'); // priced by the catalog
    t.deepEqual(await listener.settled(), [], 'nothing on insert: the refresh detects');

    await refresh();
    const [alert, ...rest] = await listener.settled();
    t.deepEqual(rest, []);
    t.deepEqual(alert, {
      provider: 'openai', model: 'brand-new-model', service_tier: 'standard',
      unpriced_reason: 'no price for model openai/brand-new-model', first_hour: await firstHour('brand-new-model'),
    });

    // More calls of it, in the same hour and in another, and refreshes with nothing new: no repeat.
    await call('brand-new-model');
    await call('brand-new-model', "now() - interval '3 hours'");
    await refresh();
    await refresh();
    t.is((await listener.settled()).length, 1);
    t.deepEqual(await announced(), [{ key: 'openai/brand-new-model standard' }]);
  } finally {
    await listener.end();
  }
});

test.serial('each new model and tier is announced, with the first hour of its unpriced calls; priced calls never', async (t) => {
  const listener = await listen();
  try {
    await call('gpt-4o-mini');
    await call('gpt-4o-mini', "now() - interval '2 days'");
    await refresh();
    t.deepEqual(await listener.settled(), [], 'priced calls announce nothing');

    await call('second-model', "'2026-01-05 10:30Z'");
    await call('second-model', "'2026-01-05 08:10Z'");
    await call('brand-new-model', 'now()', 'batch');
    await refresh();
    const alerts = await listener.settled();
    t.deepEqual(alerts.map((a) => [a.model, a.service_tier, a.first_hour]).sort(), [
      ['brand-new-model', 'batch', await firstHour('brand-new-model', 'batch')],
      ['second-model', 'standard', '2026-01-05T08:00:00+00:00'],
    ]);
    t.is(alerts.find((a) => a.service_tier === 'batch')!.unpriced_reason, 'no price for model openai/brand-new-model');
  } finally {
    await listener.end();
  }
});

test.serial('disabled: the refresh neither announces nor records; enabled again, a model still unpriced is announced at its next hour', async (t) => {
  const listener = await listen();
  try {
    await db.query('UPDATE ai_cost.unpriced_model_alert_settings SET enabled = false');
    await call('quiet-model', "now() - interval '5 hours'");
    await refresh();
    t.deepEqual(await listener.settled(), []);
    t.false((await announced()).some((row) => row.key.includes('quiet-model')));

    await db.query('UPDATE ai_cost.unpriced_model_alert_settings SET enabled = true');
    await call('quiet-model');
    await refresh();
    const alerts = await listener.settled();
    t.deepEqual(alerts.map((a) => a.model), ['quiet-model']);
    t.is(alerts[0]!.first_hour, await firstHour('quiet-model'), 'first_hour counts the calls folded while disabled');
  } finally {
    await listener.end();
  }
});

test.serial('a model priced and repriced is forgotten, and announced again when it has unpriced calls again', async (t) => {
  const listener = await listen();
  try {
    await call('relapsing-model', "'2026-03-01 12:00Z'");
    await refresh();
    t.deepEqual((await listener.settled()).map((a) => a.model), ['relapsing-model']);

    await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                    VALUES ('openai', 'relapsing-model', '2026-02-01', 1, 2)`);
    await db.query(`CALL ai_cost.reprice('2026-02-01', '2026-04-01', 'priced at last', model => 'relapsing-model')`);
    await refresh();
    t.false((await announced()).some((row) => row.key.includes('relapsing-model')), 'no unpriced call left: forgotten');

    // A call from before the price was in force: unpriced again.
    await call('relapsing-model', "'2026-01-15 09:00Z'");
    await refresh();
    const alerts = await listener.settled();
    t.deepEqual(alerts.map((a) => [a.model, a.unpriced_reason, a.first_hour]), [
      ['relapsing-model', 'no price for model openai/relapsing-model', '2026-03-01T12:00:00+00:00'],
      ['relapsing-model', 'no price for model openai/relapsing-model in force at the time of the call', '2026-01-15T09:00:00+00:00'],
    ]);
  } finally {
    await listener.end();
  }
});

test.serial('a payload too long for NOTIFY leaves out the reason instead of failing the refresh', async (t) => {
  // Control characters take six bytes each in JSON, and the reason repeats
  // both ids: the longest ids of a provider known by its prices pass 8000 bytes.
  const provider = '\u0001'.repeat(200);
  const model = '\u0001'.repeat(500);
  await db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                  VALUES ($1, 'another-model', '-infinity', 1, 1)`, [provider]);
  const listener = await listen();
  try {
    await db.query(`INSERT INTO ai_cost.calls (provider, model, input_tokens) VALUES ($1, $2, 10)`, [provider, model]);
    await refresh();
    const [alert, ...rest] = await listener.settled();
    t.deepEqual(rest, []);
    t.deepEqual(alert, { provider, model, service_tier: 'standard', first_hour: await firstHour(model) });
    const [aside] = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM ai_cost.set_aside_calls');
    t.is(aside!.n, 0, 'the call is folded, not set aside');
  } finally {
    await listener.end();
  }
});

test.serial('emptying the calls forgets every announcement', async (t) => {
  t.true((await announced()).length > 0);
  await db.query('TRUNCATE ai_cost.calls');
  t.deepEqual(await announced(), []);
});

test('the admin turns the announcements on or off; a BI reader reads the setting; the application does neither', async (t) => {
  /** Runs a statement as a role, in a transaction rolled back: the error code, or 'ok'. */
  const as = async (role: string, statement: string) => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL ROLE ${role}`);
      await client.query(statement);
      return 'ok';
    } catch (error) {
      return (error as { code?: string }).code;
    } finally {
      await client.query('ROLLBACK').catch(() => {});
      await client.end();
    }
  };
  const toggle = 'UPDATE ai_cost.unpriced_model_alert_settings SET enabled = false';
  const read = 'SELECT enabled FROM ai_cost.unpriced_model_alert_settings';
  t.is(await as('ai_cost_admin', toggle), 'ok');
  t.is(await as('ai_cost_reader', read), 'ok');
  t.is(await as('ai_cost_reader', toggle), '42501');
  t.is(await as('ai_cost_writer', read), '42501');
});
