/**
 * Where the CPU goes during a phase: this process (API + worker + embedded PGlite), the
 * Temporal dev server, the "outside world" child (load generator + fake Meta + fake LLM),
 * the whole machine, and how long this process's event loop was blocked.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { round } from './stats';

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process in ms, from /proc (Linux); undefined elsewhere. */
export function procCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) / ticksPerSecond()) * 1000;
  } catch {
    return undefined;
  }
}

/** Machine-wide busy and total jiffies from /proc/stat. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const nums = line.trim().split(/\s+/).slice(1).map(Number);
    const total = nums.reduce((a, b) => a + b, 0);
    const idle = (nums[3] ?? 0) + (nums[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface ResourceUsage {
  wallS: number;
  /**
   * CPU of each process in % of one core (the machine has cpus × 100 %). `parley` is the bench
   * process itself (API + worker in the single-process topology; only the bare loop and the
   * bookkeeping in the split topology, where `parley-api` and `parley-worker` are children).
   */
  cpuPct: {
    parley: number;
    temporal?: number;
    world?: number;
    'parley-api'?: number;
    'parley-worker'?: number;
    /** Everything else on the machine (other users' jobs). */
    other?: number;
  };
  /** Whole machine busy, % of all cores. */
  machineBusyPct?: number;
  /** This process's event-loop delay (blocked time), ms. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

export interface ResourceProbe {
  stop(worldCpuMs?: number): ResourceUsage;
}

/**
 * Start measuring; `worldCpuMs0` is the world child's CPU ms at start (it reports its own);
 * `apiPid` / `workerPid` are Parley child processes (split topology), read from /proc.
 */
export function startProbe(opts: { temporalPid?: number; worldCpuMs0?: number; apiPid?: number; workerPid?: number }): ResourceProbe {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const temporal0 = procCpuMs(opts.temporalPid);
  const api0 = procCpuMs(opts.apiPid);
  const worker0 = procCpuMs(opts.workerPid);
  const machine0 = machineTicks();
  const h: IntervalHistogram = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  return {
    stop(worldCpuMs1?: number): ResourceUsage {
      h.disable();
      const wallMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const temporal1 = procCpuMs(opts.temporalPid);
      const api1 = procCpuMs(opts.apiPid);
      const worker1 = procCpuMs(opts.workerPid);
      const machine1 = machineTicks();
      const pct = (ms: number) => round((ms / wallMs) * 100, 0);
      const cpuPct: ResourceUsage['cpuPct'] = {
        parley: pct((cpu.user + cpu.system) / 1000),
        ...(temporal0 !== undefined && temporal1 !== undefined ? { temporal: pct(temporal1 - temporal0) } : {}),
        ...(opts.worldCpuMs0 !== undefined && worldCpuMs1 !== undefined ? { world: pct(worldCpuMs1 - opts.worldCpuMs0) } : {}),
        ...(api0 !== undefined && api1 !== undefined ? { 'parley-api': pct(api1 - api0) } : {}),
        ...(worker0 !== undefined && worker1 !== undefined ? { 'parley-worker': pct(worker1 - worker0) } : {}),
      };
      const machineBusy = machine0 && machine1 && machine1.total > machine0.total ? (machine1.busy - machine0.busy) / (machine1.total - machine0.total) : undefined;
      if (machineBusy !== undefined && cpuPct.temporal !== undefined && cpuPct.world !== undefined) {
        const ours = cpuPct.parley + cpuPct.temporal + cpuPct.world + (cpuPct['parley-api'] ?? 0) + (cpuPct['parley-worker'] ?? 0);
        cpuPct.other = Math.max(0, round(machineBusy * 100 * os.cpus().length - ours, 0));
      }
      return {
        wallS: round(wallMs / 1000, 2),
        cpuPct,
        ...(machineBusy !== undefined ? { machineBusyPct: round(machineBusy * 100, 0) } : {}),
        eventLoopDelayMs: {
          p50: round(h.percentile(50) / 1e6, 1),
          p99: round(h.percentile(99) / 1e6, 1),
          max: round(h.max / 1e6, 1),
        },
      };
    },
  };
}

/** How busy the whole machine is right now (% of all cores), sampled over `ms`. */
export async function machineBusyNow(ms = 1000): Promise<number | undefined> {
  const a = machineTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineTicks();
  if (!a || !b || b.total <= a.total) return undefined;
  return round(((b.busy - a.busy) / (b.total - a.total)) * 100, 0);
}

/** The machine a result was measured on (written into every result file). */
export function machineInfo() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryMB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/** Resident set size of a process in MB, from /proc/<pid>/status (Linux); undefined elsewhere. */
export function procRssMB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : undefined;
  } catch {
    return undefined;
  }
}
