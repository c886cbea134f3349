import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { createPool, resolveDatabaseUrl } from '../../db.js';
import {
  InvalidReportError, monthPeriod, resolvePeriod, windowLabel, type ReportFilters, type ReportPeriod,
} from '../../reporting/filters.js';
import { collectHtmlReport, renderHtmlReport } from '../../reporting/html.js';
import { breakdown, DIMENSIONS, isDimension, spendByModel, type Dimension } from '../../reporting/queries.js';
import { databaseUrlOption, parseSince, parseWhen } from '../options.js';
import { renderBreakdown, renderSpend, type OutputFormat } from '../spend-table.js';

interface ReportOptions {
  databaseUrl?: string;
  since?: Date;
  until?: Date;
  month?: ReportPeriod;
  by?: Dimension;
  tenant?: string;
  user?: string;
  provider?: string;
  model?: string;
  feature?: string;
  status?: 'success' | 'error' | 'cancelled';
  format: OutputFormat;
  html?: string;
}

/** --month's value as a period; a bad one is an argument error (one line and the usage line). */
function parseMonth(value: string): ReportPeriod {
  try {
    return monthPeriod(value);
  } catch (error) {
    if (error instanceof InvalidReportError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

function parseDimension(value: string): Dimension {
  if (!isDimension(value)) throw new InvalidArgumentError(`'${value}' is not one of ${Object.keys(DIMENSIONS).join(', ')}`);
  return value;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('spend for a time window: by model (default), or by any dimension with --by; --html writes a page with charts')
    .addOption(databaseUrlOption())
    .option('--since <when>', 'start: an ISO date/time or e.g. 30m, 12h, 7d, 2w before now (default: 30d)', parseSince)
    .option('--until <when>', 'end, exclusive: an ISO date/time or e.g. 1d (default: now)', parseWhen)
    .addOption(new Option('--month <YYYY-MM>', 'a calendar month in UTC, e.g. 2026-11 (instead of --since and --until)')
      .argParser(parseMonth).conflicts(['since', 'until']))
    .option('--by <dimension>', `split by ${Object.keys(DIMENSIONS).join(', ')} (default: model)`, parseDimension)
    .option('--tenant <id>', 'only this tenant_id')
    .option('--user <id>', 'only this user_id')
    .option('--provider <id>', 'only this provider')
    .option('--model <id>', 'only this model')
    .option('--feature <name>', 'only this feature')
    .addOption(new Option('--status <status>', 'only calls with this status').choices(['success', 'error', 'cancelled']))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
    .addOption(new Option('--html <file>', 'write a self-contained HTML report with charts to this file').conflicts('format'))
    .action(async (options: ReportOptions) => {
      const filters: ReportFilters = {
        since: options.since, until: options.until, tenantId: options.tenant, userId: options.user, provider: options.provider, model: options.model,
        feature: options.feature, status: options.status,
      };
      for (const key of Object.keys(filters) as Array<keyof ReportFilters>) if (filters[key] === undefined) delete filters[key];
      // Every format reports one resolved period (by default the 30 days up to now).
      const period = options.month ?? resolvePeriod(filters);
      Object.assign(filters, { since: period.since, until: period.until });
      const pool = await createPool(resolveDatabaseUrl(options.databaseUrl), 1);
      try {
        if (options.html) {
          const path = resolve(options.html);
          await writeFile(path, await renderHtmlReport(await collectHtmlReport(pool, filters, period)));
          console.log(`wrote ${path}`);
          return;
        }
        const by = options.by ?? 'model';
        const report = by === 'model'
          ? renderSpend(await spendByModel(pool, filters), options.format)
          : renderBreakdown(by, await breakdown(pool, by, filters), options.format);
        // A table says which period it covers; CSV and JSON stay data only.
        const window = windowLabel(period.since, period.until);
        const heading = options.month ? `${period.label}: ${window}` : window;
        console.log(options.format === 'table' ? `${heading}\n${report}` : report);
      } finally {
        await pool.end();
      }
    });
}
