import { readFileSync } from 'node:fs';
import {
  expandMacros, interpolateVariables, type TemplateVariable, type TimeRange, type VariableChoice,
} from './grafana-macros.js';

/**
 * The queries BI tools send: every query of the shipped Grafana dashboard
 * (panels and template variables) and every question of the Metabase guide,
 * each as the tool substitutes its variables before PostgreSQL sees it.
 */

interface Override {
  matcher: { id: string; options: string };
  properties: { id: string; value: unknown }[];
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; rawSql: string; format: string; rawQuery: boolean; datasource?: { uid: string } }[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: Override[] };
  gridPos: { h: number; w: number; x: number; y: number };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: (TemplateVariable & { query?: string; datasource?: { uid: string } })[] };
}

// Read synchronously: ava wants every test declared before a test file's first await.
export const dashboard: Dashboard = JSON.parse(readFileSync(new URL('../../dashboards/grafana/pg-ai-cost.json', import.meta.url), 'utf8'));
export const dashboardVariables = dashboard.templating.list;
export const queryPanels = dashboard.panels.filter((panel) => panel.type !== 'row');

/** A model no price covers: every one of its calls is unpriced. */
export const UNPRICED = { provider: 'skunkworks-lab', model: 'prototype-1', tenant: 'skunkworks' };
export const UNPRICED_MODEL = `${UNPRICED.provider}/${UNPRICED.model}`;

/**
 * What the BI tests read: the demo's calls (now() - up to 14 days), the
 * unpriced model 40 days ago (alone in its hours) and now (in every current
 * budget period), and budgets, one of them for its tenant.
 */
export async function addDashboardData(query: (sql: string) => Promise<unknown>): Promise<void> {
  await query(readFileSync(new URL('../../demo/calls.sql', import.meta.url), 'utf8'));
  await query(`
    INSERT INTO ai_cost.calls (created_at, provider, model, tenant_id, feature, input_tokens, output_tokens, total_ms)
    SELECT now() - interval '40 days' + g * interval '1 minute', '${UNPRICED.provider}', '${UNPRICED.model}',
           '${UNPRICED.tenant}', 'lab', 1000, 100, 800
      FROM generate_series(1, 5) AS g
    UNION ALL
    SELECT now(), '${UNPRICED.provider}', '${UNPRICED.model}', '${UNPRICED.tenant}', 'lab', 1000, 100, 800;
    INSERT INTO ai_cost.budgets (name, scope, scope_value, period, limit_micros)
    VALUES ('all monthly', 'global', NULL, 'month', 2000000000),
           ('acme-corp weekly', 'tenant', 'acme-corp', 'week', 5000000),
           ('skunkworks monthly', 'tenant', '${UNPRICED.tenant}', 'month', 1000000)`);
}

/** The dashboard's variables at their "All" option, and at a few values of each. */
export const EVERYTHING: Record<string, VariableChoice> = { model: { all: true }, tenant: { all: true }, feature: { all: true }, window: '7d' };
export const A_SELECTION: Record<string, VariableChoice> = {
  model: [UNPRICED_MODEL, 'openai/gpt-4o-mini'], tenant: ['acme-corp', UNPRICED.tenant], feature: ['support-bot'], window: '30d',
};

/** Values for the Metabase guide's variables: the demo's days, by the database's clock, and one of each value. */
export async function metabaseValues(query: (sql: string) => Promise<{ since: string; until: string }[]>): Promise<Record<string, string>> {
  const [row] = await query(
    `SELECT ((now() AT TIME ZONE 'UTC')::date - 15)::text AS since, ((now() AT TIME ZONE 'UTC')::date + 1)::text AS until`);
  return { since: row!.since, until: row!.until, tenant: 'acme-corp', model: 'openai/gpt-4o-mini', feature: 'support-bot', window: '30d' };
}

/** What Grafana sends PostgreSQL for a query of the dashboard. */
export function grafanaSql(rawSql: string, range: TimeRange, choices: Record<string, VariableChoice>, interval = '1h'): string {
  return expandMacros(interpolateVariables(rawSql, dashboardVariables, choices, { __interval: interval }), range);
}

/** Every query of the dashboard: its template variables' first, then each panel's, with its title and format. */
export function dashboardQueries(): { title: string; rawSql: string; format: string; panel: Panel | undefined }[] {
  return [
    ...dashboardVariables.filter((v) => v.type === 'query').map((v) => ({ title: `variable $${v.name}`, rawSql: v.query!, format: 'table', panel: undefined })),
    ...queryPanels.map((p) => ({ title: p.title, rawSql: p.targets![0]!.rawSql, format: p.targets![0]!.format, panel: p })),
  ];
}

/** The SQL blocks of the Metabase guide that are questions (the login's setup is run by hand). */
export function metabaseQuestions(): string[] {
  const guide = readFileSync(new URL('../../docs/metabase.md', import.meta.url), 'utf8');
  return [...guide.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((sql) => /^\s*(--.*\n\s*)*(SELECT|WITH)\b/i.test(sql));
}

/**
 * Metabase's substitution: each {{variable}} becomes its value (a text
 * variable a string, a date variable a date), and an optional [[clause]]
 * is kept only when its variables have values.
 */
export function metabaseSql(sql: string, values: Record<string, string>, withOptional: boolean): string {
  const literal = (name: string): string => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {{${name}}}`);
    return /^\d{4}-\d\d-\d\d$/.test(value) ? `DATE '${value}'` : `'${value.replace(/'/g, "''")}'`;
  };
  const clauses = sql.replace(/\[\[([\s\S]*?)\]\]/g, (_, clause: string) => (withOptional ? clause : ''));
  return clauses.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => literal(name));
}
