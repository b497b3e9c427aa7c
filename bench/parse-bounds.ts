/**
 * Knowledge parsing bounds (issue 11): the PDF bombs of the security review parsed as before (in
 * the process, no bound) and as now (a child process with KNOWLEDGE_PARSE_MEMORY_MB and
 * KNOWLEDGE_PARSE_TIMEOUT_MS), and what the child costs a normal 1-page and 30-page PDF.
 *
 *   npx tsx bench/parse-bounds.ts            # BENCH_RUNS=5 runs of each normal PDF
 *
 * "Before" runs the old in-process parse (pdf-parse getText) in a throwaway process and reports
 * its peak RSS (process.resourceUsage().maxRSS), so this process survives the bombs.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument } from '../activities/knowledge/parse';
import { sandboxStats } from '../activities/knowledge/parse-sandbox';
import { flateBombPdf, multiPagePdf, tinyPdf } from '../test/support/pdf';

const MB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const OLD_PARSE = String.raw`
const { PDFParse } = require(process.argv[1]);
const data = new Uint8Array(require('fs').readFileSync(process.argv[2]));
const t0 = Date.now();
const parser = new PDFParse({ data });
parser.getText().then((r) => ({ chars: r.text.length }), (e) => ({ error: String(e.message) })).then((r) => {
  console.log(JSON.stringify({ ...r, ms: Date.now() - t0, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }));
});
`;

function before(file: string): { ms: number; maxRssMb: number; chars?: number; error?: string } {
  const out = spawnSync(process.execPath, ['-e', OLD_PARSE, require.resolve('pdf-parse'), file], { encoding: 'utf8', env: {} });
  return JSON.parse(out.stdout.trim().split('\n').pop()!);
}

async function after(data: Buffer): Promise<{ ms: number; outcome: string; childPeakMb: number; thisProcessGrewMb: number }> {
  const rss0 = process.memoryUsage.rss();
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const t0 = performance.now();
  const outcome = await parseDocument(data, 'application/pdf').then(
    (t) => `ok ${t.length} chars`,
    (e: Error) => `${e.name}: ${e.message}`,
  );
  const ms = Math.round(performance.now() - t0);
  clearInterval(timer);
  return { ms, outcome, childPeakMb: Math.round(sandboxStats.lastPeakRssBytes / MB), thisProcessGrewMb: Math.round((peak - rss0) / MB) };
}

/** The old parse in this process, warm (pdf.js loaded and compiled by an earlier run): what a busy worker paid per PDF. */
async function warmInProcess(data: Buffer): Promise<number> {
  const { PDFParse } = await import('pdf-parse');
  const t0 = performance.now();
  const parser = new PDFParse({ data: new Uint8Array(data) });
  await parser.getText();
  await parser.destroy();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parse-bounds-'));
  try {
    const lines = (p: number) => Array.from({ length: 45 }, (_, l) => `Page ${p} line ${l + 1}: the quick brown fox jumps over the lazy dog, again and again.`);
    const docs: [string, Buffer][] = [
      ['bomb 52 KB (53 MB of spaces, 1 FlateDecode)', await flateBombPdf(53_000_000, 1)],
      ['bomb 807 KB (830 MB of spaces, 1 FlateDecode)', await flateBombPdf(830_000_000, 1)],
      ['bomb 2 KB (512 MB of spaces, 2 FlateDecode)', await flateBombPdf(512 * MB, 2)],
      ['normal 1 page', tinyPdf(lines(1))],
      ['normal 30 pages', multiPagePdf(Array.from({ length: 30 }, (_, i) => lines(i + 1)))],
    ];
    console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${os.cpus().length} cpus, node ${process.version}`);
    for (const [name, data] of docs) {
      const file = path.join(dir, 'doc.pdf');
      writeFileSync(file, data);
      const normal = name.startsWith('normal');
      const runs = normal ? RUNS : 1;
      const b = Array.from({ length: runs }, () => before(file));
      const a = [];
      for (let i = 0; i < runs; i++) a.push(await after(data));
      const warm: number[] = [];
      if (normal) for (let i = 0; i <= runs; i++) warm.push(await warmInProcess(data));
      console.log(
        JSON.stringify({
          name,
          bytes: data.length,
          ...(normal ? { warmInProcessMs: Math.round(median(warm.slice(1))) } : {}),
          before: { ms: median(b.map((r) => r.ms)), peakRssMb: median(b.map((r) => r.maxRssMb)), outcome: b[0]!.error ?? `ok ${b[0]!.chars} chars` },
          after: { ms: median(a.map((r) => r.ms)), childPeakMb: median(a.map((r) => r.childPeakMb)), thisProcessGrewMb: Math.max(...a.map((r) => r.thisProcessGrewMb)), outcome: a[0]!.outcome },
        }),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
