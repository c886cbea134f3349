import test from 'ava';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';

const db = useTestDatabase(test, {
  setup: (db) => db.query(`INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
                           VALUES ('test', 'unit', '2020-01-01', 1, 0)`).then(() => {}),
});

/** Inserts a call that costs `micros` (1 micro-dollar per input token) for a tenant, now. */
const spend = (tenant: string, micros: number) =>
  db.query(`INSERT INTO ai_cost.calls (provider, model, tenant_id, feature, input_tokens) VALUES ('test', 'unit', $1, 'chat', $2)`, [tenant, micros]);

test.serial('budget_status compares spend in the current period with the limit', async (t) => {
  await db.query(`INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros, alert_at_percent)
                  VALUES ('acme daily', 'tenant', 'acme', 'day', 1000, '{50,80,100}'),
                         ('everyone monthly', 'global', NULL, 'month', 1000000, '{80,100}')`);
  await spend('acme', 600);
  await spend('other', 300);
  const rows = await db.query<{ name: string; spent_micros: string; status: string; crossed_percent: number | null; remaining_micros: string }>(
    'SELECT name, spent_micros, status, crossed_percent, remaining_micros FROM ai_cost.budget_status ORDER BY name');
  t.deepEqual(rows, [
    { name: 'acme daily', spent_micros: '600', status: 'warning', crossed_percent: 50, remaining_micros: '400' },
    { name: 'everyone monthly', spent_micros: '900', status: 'ok', crossed_percent: null, remaining_micros: '999100' },
  ]);
});

test.serial('refresh sends NOTIFY ai_cost_budget once per threshold crossed and period', async (t) => {
  const listener = new pg.Client({ connectionString: db.url });
  await listener.connect();
  const received: Array<{ name: string; percent: number; spent_micros: string }> = [];
  listener.on('notification', (message) => received.push(JSON.parse(message.payload!)));
  try {
    await listener.query('LISTEN ai_cost_budget');
    await db.query('SELECT * FROM ai_cost.refresh()');
    await spend('acme', 300); // 900 of 1000: crosses 80
    await db.query('SELECT * FROM ai_cost.refresh()');
    await db.query('SELECT * FROM ai_cost.refresh()'); // nothing new: no repeat
    await spend('acme', 200); // 1100: crosses 100
    const [result] = await db.query<{ budget_alerts: string }>('SELECT budget_alerts FROM ai_cost.refresh()');
    t.is(result!.budget_alerts, '1');
    await listener.query('SELECT 1'); // let pending notifications arrive
    t.deepEqual(received.map((n) => [n.name, n.percent, n.spent_micros]), [
      ['acme daily', 50, '600'],
      ['acme daily', 80, '900'],
      ['acme daily', 100, '1100'],
    ]);
    const [status] = await db.query<{ status: string }>("SELECT status FROM ai_cost.budget_status WHERE name = 'acme daily'");
    t.is(status!.status, 'exceeded');
  } finally {
    await listener.end();
  }
});

test('invalid budgets are refused with a message that says what is wrong', async (t) => {
  const attempt = (values: string) => t.throwsAsync(() => db.query(
    `INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros, alert_at_percent) VALUES ${values}`));
  t.regex((await attempt("('x', 'global', 'acme', 'day', 1, '{100}')"))!.message, /global budgets have no scope_value/);
  t.regex((await attempt("('y', 'tenant', NULL, 'day', 1, '{100}')"))!.message, /global budgets have no scope_value, the others need one/);
  t.regex((await attempt("('z', 'global', NULL, 'year', 1, '{100}')"))!.message, /budget period must be day, week or month/);
  t.regex((await attempt("('w', 'global', NULL, 'day', 0, '{100}')"))!.message, /budget limit_micros must be positive/);
  t.regex((await attempt("('v', 'global', NULL, 'day', 1, '{0}')"))!.message, /alert_at_percent must list whole percentages/);
});
