import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  createBigintTypeParser, createDateTypeParser, createIntervalTypeParser, createPool as createSlonikPool, sql, type DatabasePool,
} from 'slonik';
import {
  breakdown, budgetStatus, collectHtmlReport, dailySeries, diagnose, DIMENSIONS as REPORT_DIMENSIONS, importPrices, latencyByModel,
  listPrices, parseLiteLlmPriceList, previewReprice, recentCalls, refresh, refreshStatus, repriceRun, runReprice, spendByModel,
  startReprice, summary, trends,
} from '../src/index.js';
import { runCli } from './support/cli.js';
import { serverUrl, useTestDatabase } from './support/database.js';

// Every ai-cost command, run by a superuser and by each role, while objects a
// user planted wait on the search_path: shadows of the pg_catalog operators,
// functions, aggregates and types on plain base types, exact ones and ones
// that match better (an operator on (bigint, numeric) where pg_catalog has
// (numeric, numeric)). Each shadow records that it ran in planted.hits and
// returns NULL. Nothing planted may run, and every output must be what it is
// without them. A hit names the shadow and where it was called from: the
// statement the command sent, or a function of pg-ai-cost's SQL.

const suffix = randomBytes(4).toString('hex');
const PASSWORD = 'planted-test-pw';
const logins = {
  superuser: `planted_super_${suffix}`,
  admin: `planted_admin_${suffix}`,
  reader: `planted_reader_${suffix}`,
  writer: `planted_writer_${suffix}`,
} as const;
type Role = keyof typeof logins;

const PRICE_LIST = fileURLToPath(new URL('fixtures/litellm/prices-v1.json', import.meta.url));
const DAY = 86_400_000;
// A fixed window, so that each run of a report reads the same rows.
const SINCE = new Date(Date.now() - 10 * DAY).toISOString();
const UNTIL = new Date(Date.now() + DAY).toISOString();

const db = useTestDatabase(test, {
  setup: async (db) => {
    await db.query(`
      CREATE ROLE ${logins.superuser} LOGIN SUPERUSER PASSWORD '${PASSWORD}';
      CREATE ROLE ${logins.admin} LOGIN PASSWORD '${PASSWORD}' IN ROLE ai_cost_admin;
      CREATE ROLE ${logins.reader} LOGIN PASSWORD '${PASSWORD}' IN ROLE ai_cost_reader;
      CREATE ROLE ${logins.writer} LOGIN PASSWORD '${PASSWORD}' IN ROLE ai_cost_writer;
      INSERT INTO ai_cost.prices (provider, model, valid_from, input_per_mtok, output_per_mtok)
      VALUES ('planted-test', 'mini', '2020-01-01', 1, 2), ('planted-test', 'max', '2020-01-01', 10, 20);
      INSERT INTO ai_cost.calls (created_at, provider, model, status, tenant_id, user_id, feature,
                                 input_tokens, output_tokens, total_ms, ttft_ms, cached)
      SELECT now() - g * interval '30 minutes', 'planted-test', CASE WHEN g % 4 = 0 THEN 'max' ELSE 'mini' END,
             CASE WHEN g % 10 = 0 THEN 'error' ELSE 'success' END, 'tenant-' || (g % 3), 'user-' || (g % 5),
             CASE WHEN g % 2 = 0 THEN 'chat' END, 1000 * g, 10 * g, 100 + g, CASE WHEN g % 3 = 0 THEN 20 + g END, g % 17 = 0
        FROM generate_series(1, 300) AS g;
      INSERT INTO ai_cost.calls (created_at, provider, model, input_tokens, tenant_id)
      VALUES (now() - interval '2 hours', 'planted-test', 'nobody-priced', 50, 'tenant-0');
      INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
      VALUES ('planted-test tenant-1', 'tenant', 'tenant-1', 'month', 1000000);`);
    // The list is imported once here, so that every later import finds it unchanged.
    const imported = await runCli(['prices', 'import', PRICE_LIST, '--database-url', db.url]);
    if (imported.code !== 0) throw new Error(imported.stderr);
    await db.query('SELECT ai_cost.refresh()');

    baseline = await runAll();
    // A baseline worth comparing with: the reports read rows.
    const report = baseline.get(key('superuser', COMMANDS[0]!))!;
    if (report.code !== 0 || !report.stdout.includes('planted-test')) throw new Error(`the baseline report failed: ${JSON.stringify(report)}`);
    await db.query(PLANT);
    await db.query(`CALL planted.plant('planted', true)`);
    // PostgreSQL 14's default: every role may create objects in public.
    await db.query(`GRANT CREATE ON SCHEMA public TO PUBLIC; CALL planted.plant('public', false)`);
  },
});

/** Every command's outcome without planted objects. */
let baseline: Outcomes;

test.after.always(async () => {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  for (const login of Object.values(logins)) await admin.query(`DROP ROLE IF EXISTS ${login}`).catch(() => undefined);
  await admin.end();
});

interface Command {
  args: string[];
  roles: readonly Role[];
  /** exact: the output must be equal; digits: equal but for numbers (times, run ids); none: only no hits. */
  compare: 'exact' | 'digits' | 'none';
  /** Changes something (or reads what such a command changes): run one at a time, in order. */
  writes?: boolean;
  /** Writes an HTML report to this file, compared too. */
  html?: boolean;
}

const READERS: Role[] = ['superuser', 'admin', 'reader'];
const EVERYONE: Role[] = ['superuser', 'admin', 'reader', 'writer'];
const window = ['--since', SINCE, '--until', UNTIL];

const COMMANDS: Command[] = [
  // The format changes only how the same rows are printed: every format for the superuser, json for the others.
  ...Object.keys(REPORT_DIMENSIONS).flatMap((by) => ['json', 'table', 'csv'].map((format): Command => (
    { args: ['report', '--by', by, '--format', format, ...window], roles: format === 'json' ? READERS : ['superuser'], compare: 'exact' }))),
  { args: ['report', '--tenant', 'tenant-1', '--status', 'success', ...window], roles: READERS, compare: 'exact' },
  { args: ['report', ...window, '--html'], roles: READERS, compare: 'exact', html: true },
  { args: ['prices', 'list'], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'list', '--format', 'json', '--provider', 'openai', '--model', 'fixture'], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'list', '--history', '--at', SINCE], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'diff', PRICE_LIST], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'history', 'openai', 'fixture-gpt', '--format', 'csv'], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'at', SINCE], roles: EVERYONE, compare: 'exact' },
  { args: ['reprice', '--dry-run', '--from', SINCE, '--to', UNTIL], roles: READERS, compare: 'exact' },
  { args: ['migrate', 'status'], roles: EVERYONE, compare: 'exact' },
  { args: ['prices', 'import', PRICE_LIST], roles: ['superuser', 'admin'], compare: 'exact', writes: true },
  { args: ['reprice', '--from', SINCE, '--to', UNTIL, '--reason', 'planted'], roles: ['superuser', 'admin'], compare: 'digits', writes: true },
  { args: ['refresh', '--no-views'], roles: ['superuser', 'admin'], compare: 'digits', writes: true },
  { args: ['refresh'], roles: ['superuser', 'admin'], compare: 'digits', writes: true },
  { args: ['doctor'], roles: EVERYONE, compare: 'digits', writes: true },
  { args: ['migrate', 'up'], roles: ['superuser', 'admin'], compare: 'exact', writes: true },
  // Where pg_cron lives is shared with other test files: only the hits count.
  { args: ['schedule'], roles: ['superuser'], compare: 'none', writes: true },
];

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  html?: string;
}
type Outcomes = Map<string, Outcome>;

const key = (role: Role, command: Command) => `${role}: ai-cost ${command.args.join(' ')}`;

function urlOf(role: Role): string {
  const url = new URL(db.url);
  url.username = logins[role];
  url.password = PASSWORD;
  return url.toString();
}

async function runOne(role: Role, command: Command, folder: string): Promise<Outcome> {
  const file = join(folder, `${role}-${COMMANDS.indexOf(command)}.html`);
  const args = command.html ? [...command.args, file] : command.args;
  const result = await runCli([...args, '--database-url', urlOf(role)]);
  const outcome: Outcome = { code: result.code, stdout: result.stdout.replaceAll(file, '<file>'), stderr: result.stderr };
  if (command.html) outcome.html = await readFile(file, 'utf8').catch(() => '<not written>');
  return outcome;
}

/** Every command as every role that may run it: reads several at a time, then writes one by one. */
async function runAll(): Promise<Outcomes> {
  const folder = await mkdtemp(join(tmpdir(), 'ai-cost-planted-'));
  const outcomes: Outcomes = new Map();
  try {
    const reads = COMMANDS.filter((c) => !c.writes).flatMap((c) => c.roles.map((role) => [role, c] as const));
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < reads.length) {
        const [role, command] = reads[next++]!;
        outcomes.set(key(role, command), await runOne(role, command, folder));
      }
    }));
    for (const command of COMMANDS.filter((c) => c.writes)) {
      for (const role of command.roles) outcomes.set(key(role, command), await runOne(role, command, folder));
    }
  } finally {
    await unscheduleJobs();
    await rm(folder, { recursive: true, force: true });
  }
  return outcomes;
}

/** `ai-cost schedule` may have put jobs for this database in pg_cron's: they would run as the planted login. */
async function unscheduleJobs(): Promise<void> {
  const cron = new pg.Client({ connectionString: serverUrl('postgres') });
  await cron.connect();
  try {
    await cron.query(`SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE $1`, [`%_${db.name}`]);
  } catch {
    // no pg_cron in that database
  } finally {
    await cron.end();
  }
}

const normalize = (text: string, compare: Command['compare']) => (compare === 'digits' ? text.replace(/\d+(\.\d+)?/g, '#') : text);

/** Commands whose outcome differs from the baseline's, each with both outcomes. */
function differences(baseline: Outcomes, planted: Outcomes): string[] {
  const found: string[] = [];
  for (const command of COMMANDS.filter((c) => c.compare !== 'none')) {
    for (const role of command.roles) {
      const name = key(role, command);
      const [before, after] = [baseline.get(name)!, planted.get(name)!];
      const same = before.code === after.code && before.html === after.html
        && normalize(before.stdout, command.compare) === normalize(after.stdout, command.compare)
        && normalize(before.stderr, command.compare) === normalize(after.stderr, command.compare);
      if (!same) found.push(`${name}\n  without planted objects: ${JSON.stringify(before).slice(0, 400)}\n  with them: ${JSON.stringify(after).slice(0, 400)}`);
    }
  }
  return found;
}

/**
 * What ran of the planted objects, and from where: the statement a command
 * sent (this package's TypeScript), or a function of its SQL (the context
 * names it).
 */
async function hits(): Promise<string[]> {
  const rows = await db.query<{ what: string; context: string; query: string }>('SELECT what, context, query FROM planted.hits');
  const counted = new Map<string, number>();
  for (const row of rows) {
    // The context lists the planted functions themselves, a bound parameter,
    // and then each function of pg-ai-cost the call was made in, if any.
    const callers = row.context.split('\n')
      .filter((line) => !/^PL\/pgSQL function (planted|public)\.|^unnamed portal parameter/.test(line));
    const origin = callers.length > 0
      ? `in pg-ai-cost's SQL: ${callers.join(' <- ')}`
      : `in the statement: ${row.query.replace(/\s+/g, ' ').trim().slice(0, 160)}`;
    const line = `${row.what} ran ${origin}`;
    counted.set(line, (counted.get(line) ?? 0) + 1);
  }
  return [...counted].map(([line, n]) => `${n}x ${line}`).sort();
}

/**
 * Sets the search_path every session of the logins starts with. Set on the
 * roles rather than on the roles in this database: dropping the roles and
 * dropping the database at once would both delete the same settings row.
 */
async function setSearchPath(path: string): Promise<void> {
  for (const login of Object.values(logins)) await db.query(`ALTER ROLE ${login} SET search_path = ${path}`);
}

test('without planted objects, every role that may read reports gets them', (t) => {
  const reports = COMMANDS.filter((c) => c.args[0] === 'report');
  for (const command of reports) {
    for (const role of command.roles) {
      const outcome = baseline.get(key(role, command))!;
      t.is(outcome.code, 0, `${key(role, command)}: ${outcome.stderr}`);
    }
  }
});

test.serial('a schema of planted objects first on every login\'s search_path: nothing planted runs, every output is the same', async (t) => {
  await setSearchPath('planted, public, pg_catalog');
  await db.query('TRUNCATE planted.hits');
  const outcomes = await runAll();
  t.deepEqual({ hits: await hits(), differences: differences(baseline, outcomes) }, { hits: [], differences: [] });
});

test.serial('PostgreSQL 14 defaults, public writable and "$user", public: nothing planted in public runs, every output is the same', async (t) => {
  await setSearchPath('"$user", public');
  await db.query('TRUNCATE planted.hits');
  const outcomes = await runAll();
  t.deepEqual({ hits: await hits(), differences: differences(baseline, outcomes) }, { hits: [], differences: [] });
});

/**
 * A pool of the user's, made with slonik alone: its sessions keep the
 * search_path they are given (here by the user's own interceptor), with the
 * type parsers pg-ai-cost's API needs.
 */
async function userPool(role: Role, searchPath: string): Promise<DatabasePool> {
  return createSlonikPool(urlOf(role), {
    maximumPoolSize: 2,
    typeParsers: [
      createBigintTypeParser(), createDateTypeParser(), createIntervalTypeParser(),
      { name: 'numeric', parse: (value: string) => value },
      { name: 'timestamptz', parse: (value: string) => new Date(value) },
    ],
    interceptors: [{
      name: 'users-search-path',
      afterPoolConnection: async (_context, connection) => {
        await connection.query(sql.unsafe`SELECT pg_catalog.set_config('search_path', ${searchPath}, false)`);
        return null;
      },
    }],
  });
}

/** Every read and write of the TypeScript API that takes a pool, its results in one object. */
async function everyApiCall(pool: DatabasePool) {
  const filters = { since: new Date(SINCE), until: new Date(UNTIL) };
  const window = { from: new Date(SINCE), to: new Date(UNTIL) };
  const list = parseLiteLlmPriceList(await readFile(PRICE_LIST, 'utf8'), 'prices-v1.json').rows;
  const { projectedMonthMicros: _dependsOnTheMillisecond, ...trend } = await trends(pool, { tenantId: 'tenant-1' });
  const run = await startReprice(pool, { ...window, reason: 'planted, through the API' });
  const { durationMs: _duration, ...refreshed } = await refresh(pool);
  const { refreshedAt: _at, viewsRefreshedAt: _viewsAt, durationMs: _took, ...status } = await refreshStatus(pool);
  const diagnosis = await diagnose(db.url, pool);
  return {
    summary: await summary(pool, filters),
    breakdowns: await Promise.all(Object.keys(REPORT_DIMENSIONS).map((by) => breakdown(pool, by as keyof typeof REPORT_DIMENSIONS, filters))),
    filtered: await breakdown(pool, 'tenant', { ...filters, status: 'success', feature: 'chat' }, { limit: 2 }),
    spend: await spendByModel(pool, filters),
    daily: await dailySeries(pool, filters, 'model'),
    latency: await latencyByModel(pool, filters),
    trend,
    recent: await recentCalls(pool, { ...filters, tenantId: 'tenant-2' }, 50),
    budgets: (await budgetStatus(pool)).map(({ name, spentMicros, limitMicros }) => ({ name, spentMicros, limitMicros })),
    html: await collectHtmlReport(pool, filters),
    prices: await listPrices(pool, { provider: 'openai', model: 'fixture' }),
    history: await listPrices(pool, { history: true, at: new Date(SINCE) }),
    diff: await importPrices(pool, list, { dryRun: true }),
    imported: await importPrices(pool, list),
    preview: await previewReprice(pool, window),
    repriced: { ...(await runReprice(pool, run.id)), id: undefined },
    run: { ...(await repriceRun(pool, run.id)), id: undefined },
    refreshed,
    status,
    diagnosis: diagnosis.checks.map((check) => [check.name, check.level]),
  };
}

test.serial('the TypeScript API on a pool of the user\'s whose search_path puts planted objects first: nothing planted runs, every result is the same', async (t) => {
  await setSearchPath('pg_catalog, pg_temp');
  const safe = await userPool('superuser', 'pg_catalog, pg_temp');
  const planted = await userPool('superuser', 'planted, public, pg_catalog');
  try {
    const expected = await everyApiCall(safe);
    await db.query('TRUNCATE planted.hits');
    const actual = await everyApiCall(planted);
    t.deepEqual({ hits: await hits(), results: actual }, { hits: [], results: expected });
  } finally {
    await safe.end();
    await planted.end();
  }
});

/**
 * Plants, in a schema, a shadow of every pg_catalog operator, function and
 * aggregate on plain base types: with `exact`, one of the same signature;
 * always, for each argument, one on another type of its family where
 * pg_catalog has none (so it matches better than a built-in that needs a
 * cast). Each returns what the built-in returns, after recording its name in
 * planted.hits. With `exact`, domains named like the non-keyword types too,
 * whose check records a cast to them.
 */
const PLANT = `
CREATE SCHEMA IF NOT EXISTS planted;
GRANT USAGE, CREATE ON SCHEMA planted TO PUBLIC;
CREATE TABLE IF NOT EXISTS planted.hits (what text, context text, query text);
GRANT SELECT, INSERT ON planted.hits TO PUBLIC;
CREATE OR REPLACE FUNCTION planted.hit(what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  context text;
BEGIN
  GET DIAGNOSTICS context = PG_CONTEXT;
  INSERT INTO planted.hits VALUES (what, context, current_query());
  RETURN true;
END
$$;
GRANT EXECUTE ON FUNCTION planted.hit(text) TO PUBLIC;

CREATE OR REPLACE PROCEDURE planted.plant(target text, exact boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $plant$
DECLARE
  base regtype[] := ARRAY['int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'text', 'varchar', 'bpchar', 'name',
                          'bool', 'timestamptz', 'timestamp', 'date', 'interval', 'jsonb', 'oid']::regtype[];
  families regtype[][] := ARRAY[
    ARRAY['int2', 'int4', 'int8', 'numeric', 'float4', 'float8'],
    ARRAY['text', 'varchar', 'bpchar', 'name', 'text', 'text'],
    ARRAY['timestamptz', 'timestamp', 'date', 'interval', 'interval', 'interval']]::regtype[][];
  n integer := 0;
  f record;
  op record;
  l regtype;
  r regtype;
  result regtype;
  args text;
  variant regtype[];
  fn text;
BEGIN
  -- Operators: for every binary pg_catalog operator name on base types, every
  -- pair of types of one family (or a time and an interval, jsonb and text):
  -- where pg_catalog resolves it, plant the exact pair, returning what it returns.
  FOR op IN SELECT DISTINCT oprname FROM pg_operator
             WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprkind = 'b'
               AND oprleft = ANY (base) AND oprright = ANY (base) LOOP
    FOR l, r IN
      SELECT a.t, b.t FROM unnest(base) a(t), unnest(base) b(t)
       WHERE EXISTS (SELECT FROM generate_subscripts(families, 1) i
                      WHERE a.t = ANY (families[i:i]) AND b.t = ANY (families[i:i]))
          OR (a.t::oid, b.t::oid) IN (SELECT x::regtype::oid, y::regtype::oid
                                        FROM (VALUES ('jsonb', 'text'), ('jsonb', 'int4'), ('jsonb', 'jsonb'), ('date', 'int4')) AS pairs (x, y))
    LOOP
      IF NOT exact AND EXISTS (SELECT FROM pg_operator WHERE oprnamespace = 'pg_catalog'::regnamespace
                                  AND oprname = op.oprname AND oprleft = l AND oprright = r) THEN
        CONTINUE;
      END IF;
      BEGIN
        EXECUTE format('SELECT pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s)::regtype', l, op.oprname, r) INTO result;
      EXCEPTION WHEN OTHERS THEN
        CONTINUE;
      END;
      n := n + 1;
      fn := format('%I.op_%s', target, n);
      EXECUTE format('CREATE FUNCTION %s(%s, %s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
        fn, l, r, result, format('BEGIN PERFORM planted.hit(%L); RETURN NULL; END', format('%s.%s(%s, %s)', target, op.oprname, l, r)));
      EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s)', target, op.oprname, l, r, fn);
    END LOOP;
  END LOOP;

  -- Functions and aggregates of pg_catalog on base types (none: now(), count(*)).
  FOR f IN
    SELECT p.proname, p.prokind, ARRAY(SELECT unnest(p.proargtypes::oid[]))::regtype[] AS argtypes, p.prorettype::regtype AS rettype
      FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind IN ('f', 'a') AND NOT p.proretset
       AND p.provariadic = 0 AND p.pronargs <= 3 AND p.prorettype = ANY (base)
       AND p.proargtypes::oid[] <@ base::oid[]
  LOOP
    -- The exact signature, and each argument swapped for another type of its family.
    FOR variant IN
      SELECT f.argtypes WHERE exact
      UNION
      SELECT f.argtypes[:i - 1] || fam.t || f.argtypes[i + 1:]
        FROM generate_subscripts(f.argtypes, 1) i, generate_subscripts(families, 1) k, unnest(families[k:k]) fam(t)
       WHERE f.argtypes[i] = ANY (families[k:k]) AND fam.t <> f.argtypes[i]
    LOOP
      IF variant::oid[] <> f.argtypes::oid[] AND EXISTS (SELECT FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace
                                             AND proname = f.proname AND ARRAY(SELECT unnest(proargtypes::oid[])) = variant::oid[]) THEN
        CONTINUE;
      END IF;
      IF variant::oid[] = f.argtypes::oid[] THEN
        result := f.rettype;
      ELSE
        BEGIN
          EXECUTE format('SELECT pg_typeof(pg_catalog.%I(%s))::regtype', f.proname,
            (SELECT string_agg(format('NULL::%s', t), ', ') FROM unnest(variant) t)) INTO result;
        EXCEPTION WHEN OTHERS THEN
          CONTINUE;
        END;
      END IF;
      CONTINUE WHEN EXISTS (SELECT FROM pg_proc WHERE pronamespace = to_regnamespace(target)
                              AND proname = f.proname AND ARRAY(SELECT unnest(proargtypes::oid[])) = variant::oid[]);
      n := n + 1;
      args := (SELECT string_agg(t::text, ', ') FROM unnest(variant) t);
      fn := format('%I.fn_%s', target, n);
      IF f.prokind = 'f' THEN
        EXECUTE format('CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
          target, f.proname, coalesce(args, ''), result,
          format('BEGIN PERFORM planted.hit(%L); RETURN NULL; END', format('%s.%s(%s)', target, f.proname, coalesce(args, ''))));
      ELSE
        EXECUTE format('CREATE FUNCTION %s(%s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS %L',
          fn, concat_ws(', ', result::text, args), result,
          format('BEGIN PERFORM planted.hit(%L); RETURN NULL; END', format('%s.%s(%s)', target, f.proname, coalesce(args, '*'))));
        EXECUTE format('CREATE AGGREGATE %I.%I(%s) (SFUNC = %s, STYPE = %s)', target, f.proname, coalesce(args, '*'), fn, result);
      END IF;
    END LOOP;
  END LOOP;

  -- Types a query might name without a schema: a domain whose check records the cast.
  IF exact THEN
    FOR fn IN SELECT unnest(ARRAY['text', 'jsonb', 'json', 'timestamptz', 'int8', 'int4', 'float8', 'regclass',
                                   'regrole', 'regprocedure', 'name', 'date', 'oid', 'bool']) LOOP
      EXECUTE format('CREATE DOMAIN %I.%I AS pg_catalog.%I CHECK (planted.hit(%L))', target, fn, fn, format('%s.%s (type)', target, fn));
    END LOOP;
  END IF;
  EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO PUBLIC', target);
  RAISE NOTICE 'planted % operators and functions in %', n, target;
END
$plant$;
`;
