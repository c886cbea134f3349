/**
 * A tiny application for test/recorder-exit.test.ts: records calls, never
 * flushes or closes, then either lets the process end by itself or sends
 * itself a signal. The recorder must write the calls on the way out.
 */
import { createRecorder } from '../../src/recorder/index.js';

const [databaseUrl, prefix, ending] = process.argv.slice(2) as [string, string, 'natural' | 'SIGTERM' | 'SIGINT'];
const recorder = createRecorder({ databaseUrl, flushIntervalMs: 60_000 });
for (let i = 0; i < 25; i += 1) recorder.record({ provider: 'openai', model: 'gpt-4o-mini', requestId: `${prefix}-${i}`, inputTokens: 10 });
if (ending !== 'natural') {
  setInterval(() => {}, 1_000); // a server that would run forever
  process.kill(process.pid, ending);
}
