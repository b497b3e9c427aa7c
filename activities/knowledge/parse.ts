/**
 * A document's bytes to plain text, by type: text and Markdown as they are (Markdown's link
 * targets and markup characters dropped), HTML through html-to-text, PDF through pdf-parse. PDF
 * and HTML are parsed in a child process with a memory bound, a deadline, a page and a text limit
 * (./parse-sandbox.ts). A document that cannot be read is a `DocumentRejected`, one over a limit a
 * `ParseLimitExceeded` (both final: the same bytes fail again).
 */
import { convert, type HtmlToTextOptions } from 'html-to-text';
import { DEFAULT_PARSE_LIMITS, parseInSandbox, type ParseLimits } from './parse-sandbox';
import { DocumentRejected } from './rejections';

export { DocumentRejected, ParseLimitExceeded } from './rejections';
export { DEFAULT_PARSE_LIMITS, type ParseLimits } from './parse-sandbox';

export const KNOWLEDGE_MIME_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type KnowledgeMimeType = (typeof KNOWLEDGE_MIME_TYPES)[number];

/** The supported type of a declared mime type and/or file name; undefined when unsupported. */
export function knowledgeMimeType(declared: string | undefined, fileName?: string, head?: Buffer): KnowledgeMimeType | undefined {
  const m = (declared ?? '').split(';')[0]!.trim().toLowerCase();
  if (m === 'text/plain' || m === 'text/markdown' || m === 'text/x-markdown' || m === 'text/html' || m === 'application/xhtml+xml' || m === 'application/pdf') {
    return m === 'text/x-markdown' ? 'text/markdown' : m === 'application/xhtml+xml' ? 'text/html' : m;
  }
  if (m === '' || m === 'application/octet-stream' || m === 'binary/octet-stream') {
    const ext = /\.([a-z0-9]+)$/i.exec(fileName ?? '')?.[1]?.toLowerCase();
    if (ext === 'txt' || ext === 'text') return 'text/plain';
    if (ext === 'md' || ext === 'markdown') return 'text/markdown';
    if (ext === 'html' || ext === 'htm') return 'text/html';
    if (ext === 'pdf') return 'application/pdf';
    if (head && head.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf';
  }
  return undefined;
}

/** Nesting depth of HTML read, at most. */
export const HTML_MAX_DEPTH = 256;

/** html-to-text's options (plain data: they are sent to the parsing child as they are). */
export const HTML_TO_TEXT_OPTIONS: HtmlToTextOptions = {
    wordwrap: false,
    preserveNewlines: false,
    // deeper nesting is not read (html-to-text walks the tree recursively: 100,000 nested tags overflow the stack)
    limits: { maxDepth: HTML_MAX_DEPTH },
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'script', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
      { selector: 'h4', options: { uppercase: false } },
      { selector: 'h5', options: { uppercase: false } },
      { selector: 'h6', options: { uppercase: false } },
      { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
    ],
};

/** HTML to text in this process (trusted or small input; documents go through `parseDocument`). */
export function htmlToText(html: string): string {
  return convert(html, HTML_TO_TEXT_OPTIONS);
}

/** Markdown's markup without its words: link targets, images, emphasis and heading marks. */
export function markdownToText(md: string): string {
  return md
    .replace(/```[^\n]*\n/g, '')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]+)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}#{1,6}\s+/gm, '')
    .replace(/^\s{0,3}>\s?/gm, '')
    .replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, '$2')
    .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?!\w)/g, '$1$2')
    .replace(/`([^`\n]+)`/g, '$1');
}

function decodeText(data: Buffer): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data).replace(/^\uFEFF/, '');
  if (text.includes('\u0000')) throw new DocumentRejected('the document is binary, not text');
  return text;
}

/**
 * The document's plain text; DocumentRejected when there is none to index, ParseLimitExceeded when
 * it is over a limit. `limits` default to DEFAULT_PARSE_LIMITS.
 */
export async function parseDocument(data: Buffer, mimeType: KnowledgeMimeType, limits: Partial<ParseLimits> = {}): Promise<string> {
  const bounds: ParseLimits = { ...DEFAULT_PARSE_LIMITS, ...limits };
  let text: string;
  if (mimeType === 'application/pdf') text = (await parseInSandbox({ kind: 'pdf', data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }, bounds)).text;
  // html-to-text failures (a RangeError from deep nesting) are the document's: final, not retried
  else if (mimeType === 'text/html') text = (await parseInSandbox({ kind: 'html', html: decodeText(data), options: HTML_TO_TEXT_OPTIONS as Record<string, unknown> }, bounds)).text;
  else if (mimeType === 'text/markdown') text = markdownToText(decodeText(data));
  else text = decodeText(data);
  text = text.split('\u0000').join('');
  if (text.trim() === '') throw new DocumentRejected(`the document has no text to index (${mimeType})`);
  return text;
}
