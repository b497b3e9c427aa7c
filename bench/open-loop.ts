/**
 * Open-loop load: request i is due at t0 + i / rate, whatever happened to earlier requests
 * (no waiting for responses, so a slow server cannot slow the offered load down). Latency is
 * measured from the *scheduled* time, so generator lag and client-side queueing count against
 * the server instead of hiding it (no coordinated omission).
 */
import { nowMs, round, summarize, type LatencySummary } from './stats';

export interface Outcome {
  ok: boolean;
  /** HTTP status, when there was one. */
  status?: number;
  /** Short error text (network error, gRPC error name, timeout). */
  error?: string;
}

export interface OpenLoopSample {
  i: number;
  /** Epoch ms the request was scheduled for. */
  dueAt: number;
  /** Epoch ms the generator handed it over (to the socket pool / the in-flight limit). */
  firedAt: number;
  /** Epoch ms it completed. */
  doneAt: number;
  outcome: Outcome;
}

export interface OpenLoopRun {
  offeredRate: number;
  count: number;
  /** Seconds the schedule offers load (count / rate), not counting pauses between slices. */
  activeS: number;
  firstDueAt: number;
  lastDueAt: number;
  lastDoneAt: number;
  samples: OpenLoopSample[];
}

/**
 * When request i is due, in ms after t0. Without slices: i / rate. With slices, the stream
 * offers `rate` during every other slice (parity 0: slices 0, 2, 4…; parity 1: 1, 3, 5…), so two
 * streams with opposite parities take turns on the same clock (bench/run.ts uses that to
 * interleave the webhook and the bare signalWithStart phases fairly).
 */
export function scheduleOffsetMs(i: number, rate: number, slice?: { ms: number; parity: 0 | 1 }): number {
  const interval = 1000 / rate;
  if (!slice) return i * interval;
  const perSlice = Math.max(1, Math.round((rate * slice.ms) / 1000));
  const k = Math.floor(i / perSlice);
  return (2 * k + slice.parity) * slice.ms + (i % perSlice) * interval;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface OpenLoopOptions {
  rate: number;
  count: number;
  /** Epoch ms of the schedule's origin; default a few ms from now. */
  t0?: number;
  slice?: { ms: number; parity: 0 | 1 };
  /**
   * At most this many requests in flight; due requests beyond it wait in a FIFO queue (their
   * wait counts in their latency), like an http.Agent with maxSockets. Default unlimited.
   */
  maxInFlight?: number;
  fire: (i: number) => Promise<Outcome>;
}

export async function runOpenLoop(opts: OpenLoopOptions): Promise<OpenLoopRun> {
  const { rate, count } = opts;
  const t0 = opts.t0 ?? nowMs() + 5;
  const due = (i: number) => t0 + scheduleOffsetMs(i, rate, opts.slice);
  const samples: OpenLoopSample[] = new Array(count);
  const maxInFlight = opts.maxInFlight ?? Number.POSITIVE_INFINITY;
  const queued: { i: number; firedAt: number }[] = [];
  const all: Promise<void>[] = [];
  let active = 0;
  const start = (i: number, firedAt: number): Promise<void> => {
    active += 1;
    const dueAt = due(i);
    let p: Promise<Outcome>;
    try {
      p = opts.fire(i);
    } catch (err) {
      p = Promise.resolve({ ok: false, error: errorText(err) });
    }
    return p
      .catch((err: unknown): Outcome => ({ ok: false, error: errorText(err) }))
      .then((outcome) => {
        samples[i] = { i, dueAt, firedAt, doneAt: nowMs(), outcome };
        active -= 1;
        const nextQueued = queued.shift();
        if (nextQueued !== undefined) all.push(start(nextQueued.i, nextQueued.firedAt));
      });
  };
  let next = 0;
  while (next < count) {
    const now = nowMs();
    // Fire everything that is due (catches up in bursts if the timer was late).
    while (next < count && due(next) <= now) {
      const i = next;
      next += 1;
      if (active < maxInFlight) all.push(start(i, nowMs()));
      else queued.push({ i, firedAt: nowMs() });
    }
    if (next < count) await sleep(Math.max(0, due(next) - nowMs()));
  }
  // Completions may start queued requests (and push to `all`) while we wait.
  for (let done = 0; done < all.length; ) {
    const batch = all.slice(done);
    done = all.length;
    await Promise.all(batch);
  }
  const lastDoneAt = samples.reduce((m, s) => Math.max(m, s.doneAt), t0);
  return { offeredRate: rate, count, activeS: count / rate, firstDueAt: due(0), lastDueAt: due(count - 1), lastDoneAt, samples };
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 200);
  return String(err).slice(0, 200);
}

export interface OpenLoopSummary {
  offeredRate: number;
  sent: number;
  ok: number;
  failed: number;
  /** Status code / error text → count, for the failures. */
  errors: Record<string, number>;
  /**
   * Seconds the load was offered (count / rate) plus the tail: how long after the last
   * request's slot the last response came. With a server that keeps up, ≈ count / rate.
   */
  durationS: number;
  /** Successful completions per second over durationS. */
  achievedRate: number;
  /** Latency of successful requests from their scheduled time, ms. */
  latencyMs: LatencySummary;
  /** How late the generator fired requests (its own lag), ms. */
  generatorLagMs: LatencySummary;
}

export function summarizeRun(run: OpenLoopRun): OpenLoopSummary {
  const ok = run.samples.filter((s) => s.outcome.ok);
  const errors: Record<string, number> = {};
  for (const s of run.samples) {
    if (s.outcome.ok) continue;
    const key = s.outcome.status !== undefined ? `HTTP ${s.outcome.status}` : (s.outcome.error ?? 'unknown');
    errors[key] = (errors[key] ?? 0) + 1;
  }
  const slotMs = 1000 / run.offeredRate;
  const tailMs = Math.max(0, run.lastDoneAt - (run.lastDueAt + slotMs));
  const durationS = run.activeS + tailMs / 1000;
  return {
    offeredRate: run.offeredRate,
    sent: run.samples.length,
    ok: ok.length,
    failed: run.samples.length - ok.length,
    errors,
    durationS: round(durationS, 3),
    achievedRate: round(durationS > 0 ? ok.length / durationS : 0, 1),
    latencyMs: summarize(ok.map((s) => s.doneAt - s.dueAt)),
    generatorLagMs: summarize(run.samples.map((s) => s.firedAt - s.dueAt)),
  };
}
