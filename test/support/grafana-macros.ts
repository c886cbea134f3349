/**
 * What Grafana does to a PostgreSQL panel query before PostgreSQL sees it,
 * reproduced so that tests can run a dashboard's queries as Grafana would:
 *
 * 1. The browser replaces template variables (templateSrv.replace with the
 *    SQL data sources' interpolateVariable): `$name`, `${name}`,
 *    `${name:format}`, `[[name]]`, and built-ins such as `$__interval`.
 * 2. The server expands the macros of the PostgreSQL data source
 *    (pkg/tsdb/grafana-postgresql-datasource/macros.go): `$__timeFilter(col)`,
 *    `$__timeGroupAlias(col, 1h)`, `$__timeFrom()` and the others, for the
 *    dashboard's time range, as written in RFC 3339 UTC.
 */

export interface TimeRange {
  from: Date;
  to: Date;
}

/** A dashboard template variable, as the dashboard JSON declares it. */
export interface TemplateVariable {
  name: string;
  type: string;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string | null;
}

/** The chosen value of a variable: one value, several, or the "All" option. */
export type VariableChoice = string | string[] | { all: true };

/**
 * Replaces template variables as the browser does. Only the formats a
 * dashboard of this project may use are supported: `sqlstring` (each value
 * quoted with '' escaping, joined by commas) and `raw`. A custom variable
 * without a format is refused: its default formatting has changed between
 * Grafana versions (quoted or not when one value is chosen), so a query
 * must say which it wants. A custom "All" value is inserted as written,
 * unformatted, as Grafana does.
 */
export function interpolateVariables(
  sql: string,
  variables: TemplateVariable[],
  choices: Record<string, VariableChoice>,
  builtins: Record<string, string>,
): string {
  const pattern = /\$(\w+)|\[\[([\s\S]+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;
  return sql.replace(pattern, (match, plain?: string, bracketed?: string, bracketFormat?: string, braced?: string, bracedFormat?: string) => {
    const name = plain ?? bracketed ?? braced!;
    const format = bracketFormat ?? bracedFormat;
    if (name in builtins) return builtins[name]!;
    const variable = variables.find((v) => v.name === name);
    if (!variable) return match; // e.g. a macro such as $__timeFilter, left for the server
    const choice = choices[name];
    if (choice === undefined) throw new Error(`no value chosen for variable $${name}`);
    if (typeof choice === 'object' && !Array.isArray(choice)) {
      if (!variable.includeAll) throw new Error(`variable $${name} has no "All" option`);
      if (!variable.allValue) throw new Error(`variable $${name} has no custom all value: "All" would expand to every option`);
      return variable.allValue;
    }
    if (format === undefined) throw new Error(`variable $${name} is used without a format (write \${${name}:sqlstring})`);
    const values = Array.isArray(choice) ? choice : [choice];
    if (format === 'sqlstring') return values.map((v) => `'${v.replace(/'/g, "''")}'`).join(',');
    if (format === 'raw') return values.join(',');
    throw new Error(`variable format ${format} is not reproduced here`);
  });
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros. */
function rfc3339Nano(time: Date): string {
  return time.toISOString().replace(/\.?0*Z$/, 'Z');
}

const nanosPerUnit: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * gtime.ParseInterval: `5m`, `1h30m` (Go durations) or a whole number of
 * days, weeks, months or years (`1d`, `2w`), counted from now in UTC.
 * Returns seconds.
 */
export function parseInterval(text: string): number {
  const dated = /^(\d+)([dwMy])$/.exec(text);
  if (dated) {
    const count = Number(dated[1]);
    const now = new Date();
    const later = new Date(now);
    if (dated[2] === 'd') later.setUTCDate(later.getUTCDate() + count);
    if (dated[2] === 'w') later.setUTCDate(later.getUTCDate() + 7 * count);
    if (dated[2] === 'M') later.setUTCMonth(later.getUTCMonth() + count);
    if (dated[2] === 'y') later.setUTCFullYear(later.getUTCFullYear() + count);
    return (later.getTime() - now.getTime()) / 1000;
  }
  if (!/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$/.test(text)) {
    throw new Error(`error parsing interval ${text}`);
  }
  let nanos = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) {
    nanos += Number(amount) * nanosPerUnit[unit!]!;
  }
  return nanos / 1e9;
}

/** The fill argument of $__timeGroup: NULL, previous or a number. */
function checkFill(fill: string): void {
  if (fill === 'NULL' || fill === 'previous' || Number.isFinite(Number(fill))) return;
  throw new Error(`error parsing fill value ${fill}`);
}

function timeGroup(args: string[], name: string): string {
  if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`);
  const seconds = parseInterval(args[1]!.replace(/^'+|'+$/g, ''));
  if (args.length === 3) checkFill(args[2]!);
  return `floor(extract(epoch from ${args[0]})/${seconds})*${seconds}`;
}

function unixEpochGroup(args: string[], name: string): string {
  if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`);
  const seconds = parseInterval(args[1]!.replace(/^'+|'+$/g, ''));
  if (args.length === 3) checkFill(args[2]!);
  return `floor((${args[0]})/${seconds})*${seconds}`;
}

function evaluateMacro(name: string, args: string[], range: TimeRange): string {
  const from = range.from;
  const to = range.to;
  // Go's strings.Split never returns no element, so an empty argument passes as the column.
  const column = (): string => {
    if (args.length === 0) throw new Error(`missing time column argument for macro ${name}`);
    return args[0]!;
  };
  const seconds = (time: Date) => Math.floor(time.getTime() / 1000);
  const nanos = (time: Date) => (BigInt(time.getTime()) * 1_000_000n).toString();
  switch (name) {
    case '__time': return `${column()} AS "time"`;
    case '__timeEpoch': return `extract(epoch from ${column()}) as "time"`;
    case '__timeFilter': return `${column()} BETWEEN '${rfc3339Nano(from)}' AND '${rfc3339Nano(to)}'`;
    case '__timeFrom': return `'${rfc3339Nano(from)}'`;
    case '__timeTo': return `'${rfc3339Nano(to)}'`;
    case '__timeGroup': return timeGroup(args, name);
    case '__timeGroupAlias': return `${timeGroup(args, '__timeGroup')} AS "time"`;
    case '__unixEpochFilter': return `${column()} >= ${seconds(from)} AND ${column()} <= ${seconds(to)}`;
    case '__unixEpochNanoFilter': return `${column()} >= ${nanos(from)} AND ${column()} <= ${nanos(to)}`;
    case '__unixEpochNanoFrom': return nanos(from);
    case '__unixEpochNanoTo': return nanos(to);
    case '__unixEpochGroup': return unixEpochGroup(args, name);
    case '__unixEpochGroupAlias': return `${unixEpochGroup(args, '__unixEpochGroup')} AS "time"`;
    default: throw new Error(`unknown macro "${name}"`);
  }
}

/** Expands the PostgreSQL data source's macros as Grafana's server does. */
export function expandMacros(sql: string, range: TimeRange): string {
  return sql.replace(/\$([_a-zA-Z0-9]+)\(([^)]*)\)/g, (match, macro: string, argText: string) => {
    let name = macro;
    // Grafana before 5.3 had $__timeGroup add its alias; it still does when
    // the macro's first occurrence is followed by a comma.
    if (name === '__timeGroup') {
      const at = sql.indexOf(match);
      if (sql[at + match.length] === ',') name = '__timeGroupAlias';
    }
    const args = argText.split(',').map((arg) => arg.replace(/^ +| +$/g, '')); // Go trims spaces only
    return evaluateMacro(name, args, range);
  });
}
