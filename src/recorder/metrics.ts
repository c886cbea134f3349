/** What a recorder has done so far; counters only grow, `queued` is the current backlog. */
export interface RecorderMetrics {
  /** Calls held in memory right now: waiting for a batch or being written. */
  queued: number;
  /** Calls accepted by record() (valid, and room in the queue). */
  recorded: number;
  /** Rows inserted into ai_cost.calls. */
  written: number;
  /** Calls skipped because a row with their request_id already existed (a retry, or the same id recorded twice). */
  duplicates: number;
  /** Calls record() refused because they failed validation or could not be read (a getter that throws). */
  invalid: number;
  /** Calls the database refused (a CHECK, a bad value, a trigger), each isolated from its batch, the rest of which was still written. */
  rejected: number;
  /** Write attempts that failed and were retried (database down, slow or restarting). */
  retried: number;
  /** Calls lost: the queue was full, the recorder was closed, close() ran out of time, or the recorder itself failed. */
  dropped: number;
  /** The last failure, if any: a failed write, a refused row or a drop. */
  lastError: { message: string; at: Date } | null;
}

const COUNTERS = [
  ['recorded', 'Calls accepted by record().'],
  ['written', 'Rows inserted into ai_cost.calls.'],
  ['duplicates', 'Calls skipped because their request_id was already recorded.'],
  ['invalid', 'Calls refused by validation.'],
  ['rejected', 'Calls refused by the database.'],
  ['retried', 'Failed write attempts that were retried.'],
  ['dropped', 'Calls lost because the queue was full or the recorder closed.'],
] as const;

/**
 * The metrics in the Prometheus text exposition format (version 0.0.4), to
 * serve from a /metrics endpoint or append to one. `labels` are added to
 * every sample, e.g. { recorder: 'api' } when a process has several.
 */
export function prometheusText(metrics: RecorderMetrics, labels: Record<string, string> = {}): string {
  const labelText = Object.entries(labels)
    .map(([name, value]) => `${name}="${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`)
    .join(',');
  const sample = (name: string, value: number) => `${name}${labelText ? `{${labelText}}` : ''} ${value}`;
  const lines = [
    '# HELP ai_cost_recorder_queued Calls held in memory, waiting or being written.',
    '# TYPE ai_cost_recorder_queued gauge',
    sample('ai_cost_recorder_queued', metrics.queued),
  ];
  for (const [name, help] of COUNTERS) {
    lines.push(`# HELP ai_cost_recorder_${name}_total ${help}`, `# TYPE ai_cost_recorder_${name}_total counter`);
    lines.push(sample(`ai_cost_recorder_${name}_total`, metrics[name]));
  }
  lines.push(
    '# HELP ai_cost_recorder_last_error_timestamp_seconds When the last failure happened (0: never).',
    '# TYPE ai_cost_recorder_last_error_timestamp_seconds gauge',
    sample('ai_cost_recorder_last_error_timestamp_seconds', metrics.lastError ? metrics.lastError.at.getTime() / 1000 : 0),
  );
  return lines.join('\n') + '\n';
}
