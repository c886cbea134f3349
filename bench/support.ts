import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import type { TestServer } from '../test/support/server.js';

/** One number a benchmark measured. Ratios are what to compare across runs; raw numbers depend on the machine. */
export interface Measurement {
  bench: string;
  metric: string;
  value: number;
  unit: string;
}

export interface BenchContext {
  server: TestServer;
  /** A fresh, migrated database on the bench server; dropped when the run ends. */
  database(name: string): Promise<string>;
  /** Scale factor: 1 by default, smaller (BENCH_SCALE=0.1) for a quick look. */
  scale: number;
}

/** A benchmark module in bench/: `export default { name, run }`. */
export interface Benchmark {
  name: string;
  run(context: BenchContext): Promise<Measurement[]>;
}

/** Wall time of `work` in milliseconds. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** The median of `runs` timings: one slow outlier on a shared machine does not move it. */
export async function medianMs(runs: number, work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) times.push(await timed(work));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export interface Timing {
  wallMs: number;
  /** CPU time the server backend spent, which other load on a shared machine barely changes; null for a remote server. */
  cpuMs: number | null;
}

const clockTicksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system) a PostgreSQL backend on this machine has used so far, or null. */
function backendCpuMs(pid: number): number | null {
  try {
    // Fields after "(comm) ": state is 0, utime 11, stime 12 (proc(5)).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return null;
  }
}

/** Medians of wall time and backend CPU time over `runs` runs of `work`, which runs on the backend `pid`. */
export async function medianTiming(runs: number, pid: number, work: () => Promise<unknown>): Promise<Timing> {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const cpuBefore = backendCpuMs(pid);
    walls.push(await timed(work));
    const cpuAfter = backendCpuMs(pid);
    if (cpuBefore !== null && cpuAfter !== null) cpus.push(cpuAfter - cpuBefore);
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return { wallMs: median(walls), cpuMs: cpus.length === runs ? median(cpus) : null };
}

export async function createBenchDatabase(server: TestServer, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const url = server.url(name);
  await migrate(url);
  return url;
}
