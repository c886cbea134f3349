/**
 * `npm run bench [name ...]`: runs the benchmarks in bench/*.bench.ts on a
 * throwaway server (as the tests do), prints a table and writes
 * bench/results/<time>-<commit>.json so runs can be compared across commits.
 * Targets are ratios measured in one run, never absolute times: these
 * machines are shared and noisy.
 */
import { execFileSync } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { startTestServer } from '../test/support/server.js';
import { createBenchDatabase, type Benchmark, type Measurement } from './support.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const wanted = process.argv.slice(2);
const files = (await readdir(here)).filter((file) => file.endsWith('.bench.ts')).sort();
const benchmarks: Benchmark[] = [];
for (const file of files) {
  const bench = (await import(new URL(file, import.meta.url).href)).default as Benchmark;
  if (wanted.length === 0 || wanted.includes(bench.name)) benchmarks.push(bench);
}
if (benchmarks.length === 0) throw new Error(`no benchmark named ${wanted.join(', ')}`);

const scale = Number(process.env.BENCH_SCALE ?? 1);
const server = await startTestServer();
console.log(`bench server: ${server.description}, scale ${scale}`);
const results: Measurement[] = [];
let databases = 0;
try {
  for (const bench of benchmarks) {
    console.log(`running ${bench.name} ...`);
    results.push(...(await bench.run({
      server,
      scale,
      database: (name) => createBenchDatabase(server, `bench_${name}_${(databases += 1)}`),
    })));
  }
} finally {
  await server.stop();
}

const table = new Table({ head: ['bench', 'metric', 'value', 'unit'], colAligns: ['left', 'left', 'right', 'left'], style: { head: [], border: [], compact: true } });
for (const m of results) table.push([m.bench, m.metric, formatValue(m.value), m.unit]);
console.log(table.toString());

const targeted = results.filter((m): m is Measurement & { target: number } => m.target !== undefined);
if (targeted.length > 0) {
  const targets = new Table({ head: ['metric', 'measured', 'target', 'limit', ''], colAligns: ['left', 'right', 'right', 'right', 'left'], style: { head: [], border: [], compact: true } });
  for (const m of targeted) {
    const limit = m.limit ?? m.target;
    const bound = (value: number) => `${m.higherIsBetter ? '>=' : '<='} ${formatValue(value)} ${m.unit}`;
    targets.push([`${m.bench}: ${m.metric}`, `${formatValue(m.value)} ${m.unit}`, bound(m.target), bound(limit), verdict(m)]);
  }
  console.log(`targets\n${targets.toString()}`);
  const held = targeted.filter((m) => verdict(m) !== 'met' && m.heldBy !== undefined);
  if (held.length > 0) {
    console.log('what holds each target not met');
    for (const m of held) console.log(`- ${m.bench}: ${m.metric}: ${m.heldBy}`);
  }
}

const commit = gitCommit();
const stamp = new Date().toISOString().replaceAll(':', '-').replace(/\.\d+Z$/, 'Z');
const out = new URL(`results/${stamp}-${commit}.json`, import.meta.url);
await writeFile(out, JSON.stringify({ commit, at: new Date().toISOString(), server: server.description, scale, results }, null, 2) + '\n');
console.log(`wrote ${fileURLToPath(out)}`);

/** Met, short of the target but within its limit, or missed. */
function verdict(m: Measurement & { target: number }): string {
  const within = (bound: number) => (m.higherIsBetter ? m.value >= bound : m.value <= bound);
  if (within(m.target)) return 'met';
  return within(m.limit ?? m.target) ? 'short of target, within limit' : 'MISSED';
}

function formatValue(value: number): string {
  return Math.abs(value) >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(2);
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
