/**
 * The "outside world" of the benchmark, run as a child process of bench/run.ts so that its
 * CPU is not charged to Parley's event loop: Meta sending webhooks (open-loop HTTP load
 * generator with keep-alive), Meta's Graph API (fakes/graph-api.ts) and the LLM
 * (fakes/openai.ts). Driven over IPC (bench/protocol.ts).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { whatsAppTextWebhook } from '../fakes/meta-webhooks';
import { startFakeGraphApi, type FakeGraphApi } from '../fakes/graph-api';
import { startFakeOpenAI } from '../fakes/openai';
import { signMetaBody } from '../lib/crypto';
import { errorText, runOpenLoop, summarizeRun, type Outcome } from './open-loop';
import { waIdFor, type FromWorld, type RepliesQuery, type RepliesResult, type ToWorld, type WebhookLoad, type WebhookSend } from './protocol';

function send(msg: FromWorld): void {
  process.send?.(msg);
}

/** A WhatsApp Cloud API text-message webhook, as Meta sends it. */
export function textWebhookBody(phoneNumberId: string, waId: string, text: string): string {
  return JSON.stringify(whatsAppTextWebhook({ phoneNumberId, from: waId, text, name: 'Bench Lead', id: `wamid.BENCH${randomBytes(12).toString('hex')}` }));
}

function post(agent: http.Agent, url: URL, body: string, signature: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/webhooks/whatsapp',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-hub-signature-256': signature,
        },
        timeout: timeoutMs,
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          resolve({ ok: status >= 200 && status < 300, status });
        });
        res.on('error', (err) => resolve({ ok: false, error: errorText(err) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, error: errorText(err) }));
    req.end(body);
  });
}

async function runWebhooks(load: WebhookLoad): Promise<{ summary: ReturnType<typeof summarizeRun>; sends: WebhookSend[] }> {
  const url = new URL(load.apiUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: load.maxSockets });
  // Build and sign every body up front so the generator's own work stays off the clock.
  const requests = Array.from({ length: load.count }, (_, i) => {
    const waId = waIdFor(load.waIdPrefix, load.sameLead ? 0 : load.leads ? i % load.leads : i);
    const body = textWebhookBody(load.phoneNumberId, waId, `Hi, I'm interested in the premium plan (bench ${i})`);
    return { waId, body, signature: signMetaBody(body, load.appSecret) };
  });
  try {
    const run = await runOpenLoop({
      rate: load.rate,
      count: load.count,
      t0: load.t0,
      slice: load.slice,
      fire: (i) => {
        const r = requests[i]!;
        return post(agent, url, r.body, r.signature, 30_000);
      },
    });
    const sends = run.samples.map((s) => ({ waId: requests[s.i]!.waId, dueAt: s.dueAt, doneAt: s.doneAt, ok: s.outcome.ok }));
    return { summary: summarizeRun(run), sends };
  } finally {
    agent.destroy();
  }
}

/** Successful reply times per recipient, scanned incrementally from the fake's log. */
function createReplyIndex(graph: FakeGraphApi) {
  const replyTimes = new Map<string, number[]>();
  let scanned = 0;
  return {
    update(): void {
      const reqs = graph.requests;
      for (; scanned < reqs.length; scanned += 1) {
        const r = reqs[scanned]!;
        if (r.response.status !== 200) continue;
        const body = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as { to?: unknown };
        if ('status' in body || typeof body.to !== 'string') continue; // mark-as-read / typing, as the fake counts them
        const list = replyTimes.get(body.to) ?? [];
        list.push(Date.parse(r.at));
        replyTimes.set(body.to, list);
      }
    },
    async wait(q: RepliesQuery): Promise<RepliesResult> {
      const deadline = Date.now() + q.timeoutMs;
      const after = q.after ?? Number.NEGATIVE_INFINITY;
      for (;;) {
        this.update();
        const replyAt: Record<string, number> = {};
        const all: Record<string, number[]> = {};
        let replied = 0;
        for (const [to, times] of replyTimes) {
          if (!to.startsWith(q.prefix)) continue;
          if (q.all) all[to] = [...times];
          const at = times.find((t) => t >= after);
          if (at === undefined) continue;
          replyAt[to] = at;
          replied += 1;
        }
        if (replied >= q.expected || Date.now() > deadline) return { replied, replyAt, ...(q.all ? { times: all } : {}), timedOut: replied < q.expected };
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

async function main(): Promise<void> {
  // BENCH_LLM_DELAY_MS: the fake LLM's answer time (bench:priority; a real model takes a second or more)
  const llmDelayMs = Number(process.env.BENCH_LLM_DELAY_MS ?? 0) || 0;
  const [graph, llm] = await Promise.all([startFakeGraphApi(), startFakeOpenAI({ delayMs: llmDelayMs })]);
  const replies = createReplyIndex(graph);
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  process.on('message', (raw: ToWorld) => {
    void (async () => {
      try {
        switch (raw.type) {
          case 'webhooks': {
            const { summary, sends } = await runWebhooks(raw.load);
            send({ id: raw.id, type: 'webhooks', summary, sends });
            break;
          }
          case 'replies':
            send({ id: raw.id, type: 'replies', result: await replies.wait(raw.query) });
            break;
          case 'cpu':
            send({ id: raw.id, type: 'cpu', cpuMs: cpuMs() });
            break;
          case 'stop':
            await Promise.all([graph.close(), llm.close()]);
            send({ id: raw.id, type: 'stopped' });
            process.disconnect?.();
            break;
        }
      } catch (err) {
        send({ id: raw.id, type: 'error', message: errorText(err) });
      }
    })();
  });
  send({ type: 'ready', graphUrl: graph.url, llmUrl: llm.url, pid: process.pid });
}

if (require.main === module) {
  main().catch((err) => {
    console.error('bench world failed:', err);
    process.exit(1);
  });
}
