/**
 * Fetching a url document with the SSRF rules of outbound fetches: every hop (the url and each
 * redirect, at most 3) is checked by `checkWebhookUrl` (https only in production, no credentials,
 * every resolved address public; outside production http and loopback too, for a local server in
 * development and tests) and the connection goes to the checked address (`pinnedGet` of media
 * fetch: no second DNS answer). Bounded by `maxBytes` and `timeoutMs` (the whole fetch).
 *
 * Final (DocumentRejected): a refused url, a 4xx other than 408/429, too large, an unsupported
 * type. Anything else (network, timeout, 5xx) throws a plain Error: Temporal retries it.
 */
import type { ResolveHost } from '../media/url-guard';
import { pinnedGet } from '../media/fetch';
import { checkWebhookUrl } from '../webhooks/url-guard';
import { DocumentRejected, knowledgeMimeType, type KnowledgeMimeType } from './parse';

export const MAX_URL_REDIRECTS = 3;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface FetchUrlOptions {
  allowLocal: boolean;
  maxBytes: number;
  timeoutMs: number;
  resolveHost?: ResolveHost;
}

export async function fetchDocumentUrl(raw: string, opts: FetchUrlOptions): Promise<{ content: Buffer; mimeType: KnowledgeMimeType }> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DocumentRejected('the url is not valid');
  }
  for (let hop = 0; ; hop++) {
    const verdict = await checkWebhookUrl(url.toString(), { allowLocal: opts.allowLocal, resolve: opts.resolveHost });
    if (!verdict.ok) {
      if (verdict.transient) throw new Error(`url not reachable now: ${verdict.reason}`);
      throw new DocumentRejected(`url refused${hop ? ` at redirect ${hop}` : ''}: ${verdict.reason}`);
    }
    let res: Response;
    try {
      res = await pinnedGet(url, { accept: 'text/html, text/markdown, text/plain, application/pdf;q=0.9, */*;q=0.1', 'user-agent': 'Parley-KnowledgeBase/1' }, signal, verdict.address);
    } catch (err) {
      const e = err as Error;
      throw new Error(e.name === 'TimeoutError' || e.name === 'AbortError' ? `the url did not answer within ${opts.timeoutMs} ms` : `the url could not be fetched: ${e.message}`);
    }
    if (REDIRECTS.has(res.status)) {
      await res.body?.cancel().catch(() => undefined);
      const location = res.headers.get('location');
      if (!location || hop >= MAX_URL_REDIRECTS) throw new DocumentRejected(!location ? `the url answered ${res.status} without a location` : `more than ${MAX_URL_REDIRECTS} redirects`);
      try {
        url = new URL(location, url);
      } catch {
        throw new DocumentRejected('the url redirected to an invalid url');
      }
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      const transient = res.status === 408 || res.status === 429 || res.status >= 500;
      if (transient) throw new Error(`the url answered ${res.status}`);
      throw new DocumentRejected(`the url answered ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new DocumentRejected(`the document is ${declared} bytes, over the ${opts.maxBytes}-byte limit (KNOWLEDGE_MAX_FILE_BYTES)`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const chunk = await reader.read().catch((err: Error) => {
          throw new Error(`the download was interrupted: ${err.message}`);
        });
        if (chunk.done) break;
        size += chunk.value.byteLength;
        if (size > opts.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw new DocumentRejected(`the document is over the ${opts.maxBytes}-byte limit (KNOWLEDGE_MAX_FILE_BYTES)`);
        }
        chunks.push(Buffer.from(chunk.value));
      }
    }
    const content = Buffer.concat(chunks, size);
    const declaredType = res.headers.get('content-type') ?? undefined;
    const mimeType = knowledgeMimeType(declaredType, url.pathname, content);
    if (!mimeType) throw new DocumentRejected(`unsupported content type ${declaredType ?? '(none)'} (text/plain, text/markdown, text/html, application/pdf)`);
    return { content, mimeType };
  }
}
