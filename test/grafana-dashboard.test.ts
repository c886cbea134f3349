import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { useTestDatabase } from './support/database.js';
import {
  A_SELECTION, addDashboardData, dashboard, dashboardQueries, dashboardVariables as variables, EVERYTHING, grafanaSql, metabaseQuestions,
  metabaseSql, metabaseValues, queryPanels, UNPRICED, UNPRICED_MODEL, type Panel,
} from './support/bi-queries.js';
import { expandMacros, interpolateVariables, type TemplateVariable, type TimeRange, type VariableChoice } from './support/grafana-macros.js';
import { dropLogins, loginUrl } from './support/logins.js';

// The shipped Grafana dashboard and the Metabase guide, run as the BI tools
// run them: every query of the dashboard (panels and template variables)
// with Grafana's variables and macros expanded for a time range, and every
// question of the guide with Metabase's variables filled in, as a login
// granted only ai_cost_reader, over the demo's calls plus a model no price
// covers. The time range is read from the database's clock after the calls
// are made at now() - up to 14 days, so no result depends on the time of day.

const suffix = randomBytes(4).toString('hex');
const READER = `bi_dashboards_${suffix}`;
const PASSWORD = 'dashboards-test-pw';
const PROVISIONED_DATASOURCE = new URL('../dashboards/grafana/provisioning/datasources/pg-ai-cost.yaml', import.meta.url);

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`CREATE ROLE ${READER} LOGIN PASSWORD '${PASSWORD}'; GRANT ai_cost_reader TO ${READER}`);
    await addDashboardData((sql) => db.query(sql));
    await db.query('SELECT ai_cost.refresh()');
  },
});

test.after.always(() => dropLogins(READER));

function panel(title: string): Panel {
  const found = queryPanels.find((p) => p.title === title);
  if (!found) throw new Error(`the dashboard has no panel "${title}"`);
  return found;
}

/** A field property of a panel's column: its override by name, else the panel's default. */
function property(panel: Panel, column: string, id: string): unknown {
  for (const override of panel.fieldConfig?.overrides ?? []) {
    if (override.matcher.id !== 'byName' || override.matcher.options !== column) continue;
    const found = override.properties.find((p) => p.id === id);
    if (found) return found.value;
  }
  return panel.fieldConfig?.defaults[id];
}

/** The range of the demo's calls: the last 15 days up to now, by the database's clock. */
async function demoRange(): Promise<TimeRange> {
  const [row] = await db.query<{ now: Date }>('SELECT now() AS now');
  return { from: new Date(row!.now.getTime() - 15 * 864e5), to: row!.now };
}

interface Result {
  rows: Record<string, unknown>[];
  fields: { name: string; dataTypeID: number }[];
}

/** Runs one query as the reader login, with the search_path the project's own connections use. */
async function asReader(sql: string): Promise<Result> {
  const client = new pg.Client({ connectionString: loginUrl(db.url, READER, PASSWORD) });
  await client.connect();
  try {
    await client.query('SET search_path = pg_catalog, pg_temp');
    const { rows, fields } = await client.query(sql);
    return { rows, fields };
  } finally {
    await client.end();
  }
}

async function runPanel(title: string, range: TimeRange, choices = EVERYTHING): Promise<Result> {
  return asReader(grafanaSql(panel(title).targets![0]!.rawSql, range, choices));
}

const NUMERIC = 1700;
/** Dollars exact to the micro-dollar, as numeric: at most 6 decimals, never a float's 20. */
const DOLLARS = /^-?\d+(\.\d{1,6})?$/;

test('the macros expand as Grafana expands them', (t) => {
  const range = { from: new Date('2026-03-01T06:00:00Z'), to: new Date('2026-03-01T06:30:00.250Z') };
  t.is(expandMacros('WHERE $__timeFilter(hour)', range), "WHERE hour BETWEEN '2026-03-01T06:00:00Z' AND '2026-03-01T06:30:00.25Z'");
  t.is(expandMacros('WHERE day >= $__timeFrom() AND day <= $__timeTo()', range),
    "WHERE day >= '2026-03-01T06:00:00Z' AND day <= '2026-03-01T06:30:00.25Z'");
  t.is(expandMacros("SELECT $__timeGroupAlias(hour , '1h'), 1", range), 'SELECT floor(extract(epoch from hour)/3600)*3600 AS "time", 1');
  t.is(expandMacros('GROUP BY $__timeGroup(day, 1d)', range), 'GROUP BY floor(extract(epoch from day)/86400)*86400');
  // Followed by a comma, $__timeGroup adds its alias, as before Grafana 5.3.
  t.is(expandMacros('SELECT $__timeGroup(hour, 5m), calls', range), 'SELECT floor(extract(epoch from hour)/300)*300 AS "time", calls');
  t.is(expandMacros('SELECT $__unixEpochGroupAlias(ts + 1, 90s)', range), 'SELECT floor((ts + 1)/90)*90 AS "time"');
  t.throws(() => expandMacros('$__timeGroup(hour, fortnight)', range), { message: 'error parsing interval fortnight' });
  t.throws(() => expandMacros('$__timeBucket(hour)', range), { message: 'unknown macro "__timeBucket"' });
  const tenant: TemplateVariable = { name: 'tenant', type: 'query', multi: true, includeAll: true, allValue: "'(all)'" };
  t.is(interpolateVariables('IN (${tenant:sqlstring}) $__timeFilter(day) $__interval', [tenant], { tenant: ["o'hare", 'acme'] }, { __interval: '2h' }),
    "IN ('o''hare','acme') $__timeFilter(day) 2h");
  t.is(interpolateVariables('IN (${tenant:sqlstring})', [tenant], { tenant: { all: true } }, {}), "IN ('(all)')");
  t.throws(() => interpolateVariables('IN ($tenant)', [tenant], { tenant: ['acme'] }, {}), { message: /without a format/ });
});

test('the dashboard is one Grafana dashboard: unique ids, every panel on the data source variable with SQL, money in dollars with few decimals', async (t) => {
  t.is(dashboard.uid, 'pg-ai-cost');
  const ids = dashboard.panels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  t.true(queryPanels.length >= 15);
  t.deepEqual(variables.find((v) => v.name === 'datasource'),
    { name: 'datasource', label: 'Data source', type: 'datasource', query: 'grafana-postgresql-datasource', regex: '', hide: 0, refresh: 1, current: {}, options: [] });
  for (const p of queryPanels) {
    t.deepEqual(p.datasource, { type: 'grafana-postgresql-datasource', uid: '${datasource}' }, p.title);
    t.is(p.targets?.length, 1, p.title);
    const [target] = p.targets!;
    t.true(target!.rawQuery && target!.rawSql.length > 0, p.title);
    t.is(target!.datasource?.uid, '${datasource}', p.title);
    t.true(['time_series', 'table'].includes(target!.format), p.title);
    if (target!.format === 'time_series') t.regex(target!.rawSql, /ORDER BY 1(, 2)?$/, `${p.title} is sorted by time`);
    t.true(p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
    // Every money column is shown in dollars with a fixed, small number of decimals.
    const money = [p.fieldConfig!.defaults, ...p.fieldConfig!.overrides.map((o) => Object.fromEntries(o.properties.map((x) => [x.id, x.value])))]
      .filter((config) => config.unit === 'currencyUSD');
    for (const config of money) t.true(typeof config.decimals === 'number' && config.decimals <= 4, `${p.title}: decimals`);
  }
  for (const variable of variables.filter((v) => v.type === 'query')) {
    t.is(variable.datasource?.uid, '${datasource}', variable.name);
    t.true(variable.includeAll && variable.multi, variable.name);
    t.is(variable.allValue, "'(all)'", `${variable.name}: "All" is one literal, whatever the number of values (or none)`);
  }
  const { files } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[] };
  t.true(files.includes('dashboards/'), 'the dashboard ships in the npm package');
  // The provisioning example declares the plugin the dashboard asks for, with plain SQL time buckets.
  const provisioned = await readFile(PROVISIONED_DATASOURCE, 'utf8');
  t.regex(provisioned, /^ {4}type: grafana-postgresql-datasource$/m);
  t.regex(provisioned, /^ {6}timescaledb: false$/m);
});

for (const [label, choices] of [['every value', EVERYTHING], ['a selection', A_SELECTION]] as const) {
  test(`every query of the dashboard runs as the reader with ${label}: rows, sorted by time, money as dollars`, async (t) => {
    const range = await demoRange();
    for (const query of dashboardQueries()) {
      let result: Result;
      try {
        result = await asReader(grafanaSql(query.rawSql, range, choices));
      } catch (error) {
        t.fail(`${query.title}: ${(error as Error).message}`);
        continue;
      }
      t.true(result.rows.length > 0, `${query.title} returns rows`);
      if (query.format === 'time_series') {
        t.is(result.fields[0]?.name, 'time', `${query.title}: the time column comes first`);
        const times = result.rows.map((row) => Number(row.time));
        t.deepEqual(times, [...times].sort((a, b) => a - b), `${query.title} is sorted by time`);
      }
      for (const field of result.fields) {
        // time and metric are Grafana's time and series name, not values.
        if (!query.panel || ['time', 'metric'].includes(field.name) || property(query.panel, field.name, 'unit') !== 'currencyUSD') continue;
        t.is(field.dataTypeID, NUMERIC, `${query.title}: ${field.name} is numeric`);
        for (const row of result.rows) {
          const value = row[field.name];
          if (value !== null) t.regex(String(value), DOLLARS, `${query.title}: ${field.name}`);
        }
      }
    }
  });
}

test('the dashboard reports dollars exact to the micro-dollar', async (t) => {
  const [row] = await db.query<{ micros: string; now: Date }>('SELECT sum(cost_micros)::text AS micros, now() FROM ai_cost.calls');
  const micros = BigInt(row!.micros);
  const everything = { from: new Date('2000-01-01T00:00:00Z'), to: row!.now };
  const { rows } = await runPanel('Spend', everything);
  t.is(rows[0]!.spend, `${micros / 1_000_000n}.${(micros % 1_000_000n).toString().padStart(6, '0')}`);
});

test('a model without a priced call shows no spend, never $0; a range without calls costs $0', async (t) => {
  const range = await demoRange();
  const onlyUnpriced = { ...EVERYTHING, model: [UNPRICED_MODEL] };
  const byModel = await runPanel('Spend by model', range, onlyUnpriced);
  t.true(byModel.rows.length > 0);
  t.true(byModel.rows.every((row) => row.metric === UNPRICED_MODEL && row.spend === null));

  const models = (await runPanel('Models in the time range', range)).rows;
  const unpriced = models.find((row) => row.model === UNPRICED_MODEL);
  t.like(unpriced, { spend: null, 'share of spend': null, 'unpriced calls': '1' });
  t.true(models.filter((row) => row !== unpriced).every((row) => row.spend !== null), 'the priced models have a spend');
  t.is(property(panel('Models in the time range'), 'spend', 'noValue'), 'unpriced');

  const tenants = (await runPanel('Spend by tenant', range)).rows.filter((row) => row.metric === UNPRICED.tenant);
  t.true(tenants.length > 0 && tenants.every((row) => row.spend === null));

  // 40 days ago the unpriced model made every call.
  const [row] = await db.query<{ now: Date }>('SELECT now() AS now');
  const past = { from: new Date(row!.now.getTime() - 41 * 864e5), to: new Date(row!.now.getTime() - 39 * 864e5) };
  t.deepEqual((await runPanel('Spend', past)).rows, [{ spend: null }]);
  t.deepEqual((await runPanel('Unpriced calls', past)).rows, [{ 'unpriced calls': '5' }]);
  t.is(property(panel('Spend'), 'spend', 'noValue'), 'unpriced');
  const quiet = { from: new Date('2000-01-01T00:00:00Z'), to: new Date('2000-01-02T00:00:00Z') };
  t.deepEqual((await runPanel('Spend', quiet)).rows, [{ spend: '0' }]);

  const budgets = (await runPanel('Budgets in their current period', range)).rows;
  t.like(budgets.find((b) => b.budget === 'skunkworks monthly'), { spent: null, remaining: null, used: null, projected: null, status: 'unknown' });
  const known = budgets.map((b) => b.used !== null);
  t.deepEqual(known, [...known].sort(), 'budgets whose spend is unknown come first');
});

test('every question of the Metabase guide runs as the reader, with and without its optional filters', async (t) => {
  const questions = metabaseQuestions();
  t.true(questions.length >= 10, `the guide asks ${questions.length} questions`);
  const values = await metabaseValues((sql) => db.query(sql));
  for (const question of questions) {
    const title = question.split('\n')[0]!;
    for (const withOptional of [false, true]) {
      const label = `${title} (${withOptional ? 'with' : 'without'} its optional filters)`;
      let result: Result;
      try {
        result = await asReader(metabaseSql(question, values, withOptional));
      } catch (error) {
        t.fail(`${label}: ${(error as Error).message}`);
        continue;
      }
      t.true(result.rows.length > 0, `${label} returns rows`);
      // Money columns are named *_usd: dollars as numeric, exact to the micro-dollar.
      for (const field of result.fields.filter((f) => f.name.endsWith('_usd'))) {
        t.is(field.dataTypeID, NUMERIC, `${label}: ${field.name} is numeric`);
        for (const r of result.rows) if (r[field.name] !== null) t.regex(String(r[field.name]), DOLLARS, `${label}: ${field.name}`);
      }
      t.false(result.fields.some((f) => f.name.endsWith('_micros')), `${label} shows dollars, not micro-dollars`);
    }
  }
  const byModel = questions.find((sql) => sql.startsWith('-- Spend by model over a period\n'));
  const models = (await asReader(metabaseSql(byModel!, values, false))).rows;
  t.like(models.find((m) => m.model === UNPRICED_MODEL), { spend_usd: null, share: null, unpriced_calls: '6' });
  t.is(models.at(-1)!.model, UNPRICED_MODEL, 'the model without a priced call is listed last');
});
