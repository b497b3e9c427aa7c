/** A minimal Server-Sent Events client for tests: raw HTTP, so headers and comments are visible. */
import http from 'node:http';

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  /** Comment lines seen (`: heartbeat`), without the colon. */
  comments: string[];
  retry?: number;
  /** The first event (from the start) that matches, waiting up to timeoutMs. */
  waitFor(pred: (e: SseEvent) => boolean, opts?: { timeoutMs?: number; what?: string }): Promise<SseEvent>;
  ended: boolean;
  close(): void;
}

/** Open `url` and parse its event stream; resolves once the response headers arrived (use it for 200 streams). */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const stream: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        events: [],
        comments: [],
        ended: false,
        async waitFor(pred, opts = {}) {
          const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
          for (;;) {
            const hit = stream.events.find(pred);
            if (hit) return hit;
            if (Date.now() > deadline) throw new Error(`timed out waiting for SSE event: ${opts.what ?? 'event'} (got ${JSON.stringify(stream.events)})`);
            if (stream.ended) throw new Error(`stream ended before: ${opts.what ?? 'event'}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        close() {
          req.destroy();
        },
      };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let idx: number;
        while ((idx = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, idx);
          buffer = buffer.slice(idx + 2);
          const ev: SseEvent = { data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) stream.comments.push(line.slice(1).trim());
            else if (line.startsWith('id:')) ev.id = line.slice(3).trim();
            else if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            else if (line.startsWith('retry:')) stream.retry = Number(line.slice(6).trim());
          }
          if (data.length) {
            ev.data = data.join('\n');
            stream.events.push(ev);
          }
        }
      });
      res.on('end', () => {
        stream.ended = true;
      });
      res.on('error', () => {
        stream.ended = true;
      });
      resolve(stream);
    });
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
  });
}
