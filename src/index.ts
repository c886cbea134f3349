/**
 * pg-ai-cost: a Postgres-native ledger of what AI/LLM API calls cost.
 * The database is the API; this module installs it, records calls and reads reports.
 */
import './node-version.js';
export { migrate, migrationStatus, shippedMigrations, type MigrateOptions, type MigrateResult, type MigrationStatus } from './migrate.js';
export type { CatalogBackfill } from './catalog-backfill.js';
export { createPool, resolveDatabaseUrl } from './db.js';
export {
  recordCall, parseCall, callSchema, InvalidCallError, RejectedCallError, createRecorder, prometheusText,
  type Call, type CallInput, type RecordedCall, type Recorder, type RecorderOptions, type RecorderEvent, type RecorderMetrics,
} from './recorder/index.js';
export * from './adapters/index.js';
export { instrumentOpenAI, instrumentAnthropic, type InstrumentOptions, type CallSink, type OpenAIClientLike, type AnthropicClientLike } from './wrappers/index.js';
export * from './reporting/index.js';
export { formatMicros, formatCost, type Micros } from './money.js';
export { runDemo } from './demo.js';
export { distribute, type DistributionStep } from './distribute.js';
export { setPrice, listPrices, importPrices, priceInputSchema, type PriceInput, type ListedPrice, type ListOptions, type ImportedRow, type ImportOptions } from './pricing/prices.js';
export { parseLiteLlmPriceList, InvalidPriceListError, type ParsedPriceList } from './pricing/litellm.js';
export { startReprice, runReprice, repriceRun, repriceCharges, repriceCosts, previewReprice, type RepriceRun, type RepriceCharges, type RepriceCosts, type RepriceOptions, type RepriceWindow, type RepricePreview } from './pricing/reprice.js';
