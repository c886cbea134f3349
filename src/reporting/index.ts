export {
  reportFiltersSchema, resolveFilters, monthPeriod, InvalidReportError, type ReportFilters, type ResolvedFilters, type ReportPeriod,
} from './filters.js';
export {
  summary, breakdown, spendByModel, dailySeries, latencyByModel, trends, recentCalls, budgetStatus, DIMENSIONS, isDimension,
  type Summary, type Totals, type BreakdownRow, type ModelSpend, type DailyPoint, type LatencyRow, type Trends, type RecentCall,
  type BudgetStatus, type Dimension,
} from './queries.js';
export { refresh, refreshStatus, type RefreshResult, type RefreshStatus } from './refresh.js';
export { diagnose, type Diagnosis, type Check } from './doctor.js';
export { collectHtmlReport, renderHtmlReport, type HtmlReportData } from './html.js';
export { unpricedModels, type UnpricedModel } from './unpriced.js';
