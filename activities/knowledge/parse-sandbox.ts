/**
 * Untrusted documents (PDF, HTML) parsed in a short-lived child process, out of the worker's
 * memory, with a memory bound, a deadline, a page count and a text size limit.
 *
 * Why a process and not a `worker_threads` Worker: pdf.js decodes a page's content stream into
 * `Uint8Array`s, memory outside the V8 heap that `resourceLimits` does not count. Measured (Node
 * 20): an 807 KB PDF whose FlateDecode content stream is 830 MB of spaces parsed to the end in a
 * thread with `maxOldGenerationSizeMb: 256`, the process at 1.46 GB RSS (heap 12 MB, array
 * buffers 1.6 GB). So the child gets, on Linux, `ulimit -d` (RLIMIT_DATA: the kernel refuses its
 * allocations past the limit, array buffers included: pdf.js fails with "Array buffer allocation
 * failed") and `ulimit -t` (RLIMIT_CPU), `--max-old-space-size` for its heap, and the parent
 * watches its resident memory (VmRSS from /proc every 25 ms) and its wall-clock time: over either
 * limit it is killed (SIGKILL). The child cannot watch itself: pdf.js holds its event loop until a
 * page is done. Elsewhere than Linux only the heap limit, the deadline and the page and text
 * limits apply. The child starts with an empty environment (no database url, no keys) and is told
 * only where pdf-parse or html-to-text is.
 *
 * A child that hits a limit or dies is a `ParseLimitExceeded` / `DocumentRejected` (final: the same
 * bytes do the same again); only a child that cannot be started is a plain Error (retried).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DocumentRejected, ParseLimitExceeded } from './rejections';

export interface ParseLimits {
  /** The child's resident memory bound (and its V8 heap's), MB. KNOWLEDGE_PARSE_MEMORY_MB */
  memoryMb: number;
  /** Wall-clock deadline of one parse (start-up included), ms. KNOWLEDGE_PARSE_TIMEOUT_MS */
  timeoutMs: number;
  /** A PDF with more pages is refused before any page is read. KNOWLEDGE_PDF_MAX_PAGES */
  maxPages: number;
  /** Extracted text longer than this (characters) is refused. */
  maxChars: number;
  /** Parses running at once in this process (each a child of up to memoryMb). KNOWLEDGE_PARSE_CONCURRENCY */
  concurrency: number;
  /** The kernel's limits on the child (`ulimit -d`, `ulimit -t` through /bin/sh); default: on Linux. Off: the VmRSS watch alone bounds memory. */
  kernelLimits?: boolean;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { memoryMb: 256, timeoutMs: 30_000, maxPages: 1_000, maxChars: 5_000_000, concurrency: 2 };

/** How often the child's resident memory is read, ms. */
const WATCH_INTERVAL_MS = 25;

/** Whether the child can be started through /bin/sh with `ulimit -d` / `ulimit -t` (Linux). */
const KERNEL_LIMITS = process.platform === 'linux' && existsSync('/bin/sh');

/**
 * The child's program (plain CommonJS, run with `node -e`: the same text under tsx, jest and the
 * compiled worker). It reads one job from the IPC channel, answers one message and exits.
 */
const CHILD_PROGRAM = String.raw`
'use strict';
const answer = (m) => new Promise((resolve) => process.send(m, () => resolve()));
process.once('message', async (job) => {
  // no timer of its own: pdf.js keeps the event loop busy until getText() is done (measured: one
  // 50 ms interval tick in a 3.4 s parse), so the bounds are the parent's and the kernel's
  try {
    if (job.kind === 'html') {
      const { convert } = require(job.lib);
      const text = convert(job.html, job.options);
      if (text.length > job.maxChars) await answer({ ok: false, limit: 'chars' });
      else await answer({ ok: true, text, pages: 0 });
    } else {
      const { PDFParse } = require(job.lib);
      const parser = new PDFParse({ data: job.data, verbosity: 0, isEvalSupported: false, });
      const first = await parser.getText({ partial: [1], pageJoiner: '' });
      const pages = first.total;
      if (pages > job.maxPages) {
        await answer({ ok: false, limit: 'pages', pages });
      } else {
        const texts = [first.pages.length ? first.pages[0].text : ''];
        let chars = texts[0].length;
        for (let p = 2; p <= pages && chars <= job.maxChars; p++) {
          const r = await parser.getText({ partial: [p], pageJoiner: '' });
          const t = r.pages.length ? r.pages[0].text : '';
          texts.push(t);
          chars += t.length + 2;
        }
        if (chars > job.maxChars) await answer({ ok: false, limit: 'chars' });
        else await answer({ ok: true, text: texts.join('\n\n'), pages });
      }
    }
  } catch (err) {
    // an allocation refused by RLIMIT_DATA (ulimit -d): the memory limit
    // (pdf-parse rewraps pdf.js errors: the message is what is left)
    if (/allocation failed|out of memory/i.test(String(err && err.message))) await answer({ ok: false, limit: 'memory' });
    else await answer({ ok: false, error: String((err && err.message) || err).slice(0, 300) });
  }
  process.exit(0);
});
`;

const answerSchema = z.union([
  z.object({ ok: z.literal(true), text: z.string(), pages: z.number().int().min(0) }),
  z.object({ ok: z.literal(false), limit: z.enum(['memory', 'pages', 'chars']), pages: z.number().int().optional() }),
  z.object({ ok: z.literal(false), error: z.string().max(1000) }),
]);

export type SandboxJob = { kind: 'pdf'; data: Uint8Array } | { kind: 'html'; html: string; options: Record<string, unknown> };

/** What a `kind` is called in a message to the tenant. */
const NAMES = { pdf: 'PDF', html: 'HTML' } as const;

// ------------------------------------------------------------------------------ concurrency

/** For measurements and tests: the last child's peak VmRSS as watched and its time; the most children at once. */
export const sandboxStats = { lastPeakRssBytes: 0, lastDurationMs: 0, peakRunning: 0 };

let running = 0;
const waiting: (() => void)[] = [];

async function slot(concurrency: number): Promise<() => void> {
  if (running >= Math.max(1, concurrency)) await new Promise<void>((r) => waiting.push(r));
  else running++;
  sandboxStats.peakRunning = Math.max(sandboxStats.peakRunning, running);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = waiting.shift();
    if (next) next(); // the slot passes to the next waiter (running unchanged)
    else running--;
  };
}

/** The resident memory of `pid` in bytes from /proc (Linux); undefined where it cannot be read. */
async function residentBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'latin1');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/**
 * The document's text, parsed in a child process within `limits`. Rejections: `ParseLimitExceeded`
 * (memory, deadline, pages, text size), `DocumentRejected` (the parser's own error, a crash).
 */
export async function parseInSandbox(job: SandboxJob, limits: ParseLimits): Promise<{ text: string; pages: number }> {
  const release = await slot(limits.concurrency);
  try {
    return await runChild(job, limits);
  } finally {
    release();
  }
}

function runChild(job: SandboxJob, limits: ParseLimits): Promise<{ text: string; pages: number }> {
  const name = NAMES[job.kind];
  const memoryBytes = limits.memoryMb * 1024 * 1024;
  const within = `within ${limits.memoryMb} MB and ${Math.round(limits.timeoutMs / 100) / 10} s`;
  const tooComplex = (why: 'memory' | 'time') => new ParseLimitExceeded(`the ${name} is too complex to parse ${within} (${why === 'memory' ? `it needed more than ${limits.memoryMb} MB` : `it took longer than ${Math.round(limits.timeoutMs / 100) / 10} s`})`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      const node = [process.execPath, `--max-old-space-size=${limits.memoryMb}`, '-e', CHILD_PROGRAM];
      // Linux: through sh, the kernel's limits on the child (setrlimit is not in Node's API):
      // RLIMIT_DATA refuses allocations past memoryMb, array buffers included, even if this
      // process is gone; RLIMIT_CPU ends a child that outlives a dead parent's deadline
      const command = KERNEL_LIMITS && limits.kernelLimits !== false ? ['/bin/sh', '-c', 'ulimit -d "$1" 2>/dev/null; ulimit -t "$2" 2>/dev/null; shift 2; exec "$@"', 'parley-parse', String(limits.memoryMb * 1024), String(Math.ceil(limits.timeoutMs / 1000) + 1), ...node] : node;
      child = spawn(command[0]!, command.slice(1), {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'advanced',
        env: {},
        windowsHide: true,
      });
    } catch (err) {
      reject(err as Error);
      return;
    }
    let settled = false;
    let killedFor: 'memory' | 'time' | undefined;
    let answer: z.infer<typeof answerSchema> | undefined;
    let stderr = '';
    let peak = 0;
    let polling = false;
    const kill = (why: 'memory' | 'time') => {
      if (killedFor || answer) return;
      killedFor = why;
      child.kill('SIGKILL');
    };
    const deadline = setTimeout(() => kill('time'), limits.timeoutMs);
    const watch = setInterval(() => {
      if (polling || child.pid === undefined) return;
      polling = true;
      void residentBytes(child.pid).then((rss) => {
        polling = false;
        if (rss === undefined) return;
        peak = Math.max(peak, rss);
        if (rss > memoryBytes) kill('memory');
      });
    }, WATCH_INTERVAL_MS);
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearInterval(watch);
      sandboxStats.lastPeakRssBytes = peak;
      sandboxStats.lastDurationMs = Date.now() - started;
      fn();
    };
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-2000);
    });
    child.on('message', (m: unknown) => {
      const parsed = answerSchema.safeParse(m);
      answer = parsed.success ? parsed.data : { ok: false, error: 'the parser answered something unexpected' };
      // it exits by itself once the answer is sent; one that does not is ended
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    });
    child.on('error', (err) => {
      // not started (EAGAIN, ENOMEM, EMFILE): the worker's trouble, not the document's; retried
      if (child.pid === undefined) finish(() => reject(new Error(`the document parser could not be started: ${err.message}`)));
    });
    // `close` comes after `exit` and after the IPC channel is drained: every message is in
    child.on('close', (code, signal) => {
      finish(() => {
        // V8 aborts (SIGABRT, SIGTRAP, 134) when its heap or an allocation the kernel refused is fatal
        if (killedFor === 'memory' || (answer && !answer.ok && 'limit' in answer && answer.limit === 'memory') || (!answer && (signal === 'SIGABRT' || signal === 'SIGTRAP' || code === 134 || /out of memory|heap limit|allocation failed/i.test(stderr)))) reject(tooComplex('memory'));
        else if (killedFor === 'time' || (!answer && signal === 'SIGXCPU')) reject(tooComplex('time'));
        else if (!answer) reject(new DocumentRejected(`the ${name} parser stopped (${signal ?? `exit code ${code}`}): the document cannot be read`));
        else if (answer.ok) {
          if (answer.text.length > limits.maxChars) reject(new ParseLimitExceeded(`the ${name}'s text is over ${limits.maxChars} characters (split it into smaller documents)`));
          else resolve({ text: answer.text, pages: answer.pages });
        } else if ('limit' in answer) {
          reject(
            answer.limit === 'pages'
              ? new ParseLimitExceeded(`the PDF has ${answer.pages ?? 'too many'} pages, over the ${limits.maxPages}-page limit (KNOWLEDGE_PDF_MAX_PAGES)`)
              : new ParseLimitExceeded(`the ${name}'s text is over ${limits.maxChars} characters (split it into smaller documents)`),
          );
        } else reject(new DocumentRejected(`the ${name} could not be read: ${answer.error}`.slice(0, 300)));
      });
    });
    const message = job.kind === 'pdf'
      ? { kind: 'pdf', data: job.data, lib: require.resolve('pdf-parse'), memoryBytes, timeoutMs: limits.timeoutMs, maxPages: limits.maxPages, maxChars: limits.maxChars }
      : { kind: 'html', html: job.html, options: job.options, lib: require.resolve('html-to-text'), memoryBytes, timeoutMs: limits.timeoutMs, maxChars: limits.maxChars };
    // a child that dies before reading the job: `close` says why
    child.send(message, () => undefined);
  });
}
