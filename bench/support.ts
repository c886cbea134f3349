import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { migrate } from '../src/migrate.js';
import type { TestServer } from '../test/support/server.js';

/** One number a benchmark measured. Ratios are what to compare across runs; raw numbers depend on the machine. */
export interface Measurement {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** What the figure should come to: at most this, or at least this when `higherIsBetter`. */
  target?: number;
  /** The worst it may be and still pass (the target itself where none is named). */
  limit?: number;
  /** For rates (calls/s): the target is a floor, not a ceiling. */
  higherIsBetter?: boolean;
  /**
   * What holds the figure where it is, should it miss its target: measured
   * in the same run, with where the variants tried are written down. Printed
   * under the targets for each target not met.
   */
  heldBy?: string;
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

/**
 * Runs bench/recorder-client.ts with `args` under plain Node, as an
 * application runs the recorder (see that file), and returns the JSON it prints.
 */
export async function inApplicationProcess<T>(args: string[]): Promise<T> {
  const client = fileURLToPath(new URL('recorder-client.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [client, ...args], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as T;
}

/** Wall time of `work` in milliseconds. */
export async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** The middle value: one slow outlier on a shared machine does not move it. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The median of `runs` timings of `work`, in milliseconds. */
export async function medianMs(runs: number, work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) times.push(await timed(work));
  return median(times);
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

/**
 * CPU time a PostgreSQL backend on this machine has used so far, or null:
 * from /proc/<pid>/schedstat (nanoseconds) where the kernel keeps it, else
 * utime + stime from /proc/<pid>/stat, whose clock ticks (10 ms) would
 * blur a comparison of runs that take a few hundred milliseconds.
 */
function backendCpuMs(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    // no schedstat: a kernel without scheduler statistics
  }
  try {
    // Fields after "(comm) ": state is 0, utime 11, stime 12 (proc(5)).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return null;
  }
}

export interface Compared extends Timing {
  /** Median over rounds of this variant's wall time over the baseline's in the same round. */
  wallRatio: number;
  /** The same for backend CPU time; null for a remote server. */
  cpuRatio: number | null;
}

/**
 * Runs every variant once per round, in turn, for `rounds` rounds: on a
 * shared machine load comes and goes, and interleaving makes it touch every
 * variant alike. Each variant gets its median timing, and ratios to the first
 * variant (the baseline) as the median of the per-round ratios, so a slow
 * minute in one round does not decide a comparison. `pid` is the backend the
 * work runs on, for its CPU time; `prepare` runs untimed before each run.
 */
export async function compareInterleaved<K extends string>(
  rounds: number, pid: number, variants: Record<K, () => Promise<unknown>>,
  prepare: (variant: K) => Promise<unknown> = async () => undefined,
): Promise<Record<K, Compared>> {
  const names = Object.keys(variants) as K[];
  const runs = new Map<K, Array<{ wall: number; cpu: number | null }>>(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round += 1) {
    for (const name of names) {
      await prepare(name);
      const cpuBefore = backendCpuMs(pid);
      const wall = await timed(variants[name]);
      const cpuAfter = backendCpuMs(pid);
      runs.get(name)!.push({ wall, cpu: cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null });
    }
  }
  const baseline = runs.get(names[0]!)!;
  const result = {} as Record<K, Compared>;
  for (const name of names) {
    const own = runs.get(name)!;
    const cpus = own.map((run) => run.cpu);
    const cpuKnown = cpus.every((cpu) => cpu !== null) && baseline.every((run) => run.cpu);
    result[name] = {
      wallMs: median(own.map((run) => run.wall)),
      cpuMs: cpuKnown ? median(cpus as number[]) : null,
      wallRatio: median(own.map((run, i) => run.wall / baseline[i]!.wall)),
      cpuRatio: cpuKnown ? median(own.map((run, i) => run.cpu! / baseline[i]!.cpu!)) : null,
    };
  }
  return result;
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
