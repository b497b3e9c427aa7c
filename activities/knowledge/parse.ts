/**
 * A document's bytes to plain text, by type: text and Markdown as they are (Markdown's link
 * targets and markup characters dropped), HTML through html-to-text, PDF through pdf-parse. PDF
 * and HTML are parsed in a child process with a memory bound, a deadline, a page and a text limit
 * (./parse-sandbox.ts). A document that cannot be read is a `DocumentRejected`, one over a limit a
 * `ParseLimitExceeded` (both final: the same bytes fail again).
 */
import { compile, convert, type HtmlToTextOptions } from 'html-to-text';
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

/** A link's or image's target: no line breaks, one level of parentheses inside (`a_(b)`). */
const LINK_TARGET = String.raw`\((?:[^()\n]|\([^()\n]*\))*\)`;
const IMAGE = new RegExp(String.raw`!\[([^[\]\n]*)\]` + LINK_TARGET, 'g');
const LINK = new RegExp(String.raw`\[([^[\]\n]+)\]` + LINK_TARGET, 'g');

/**
 * Markdown's markup without its words: link targets, images, emphasis and heading marks. Runs in
 * the worker on untrusted text, so every pattern is linear: no part can scan past the next
 * delimiter it would close on (an unclosed `**`, `![` or `](` does not scan the rest of the text
 * again from each opener).
 */
export function markdownToText(md: string): string {
  return md
    .replace(/^[ \t]{0,3}```[^\n]*\n/gm, '')
    .replace(IMAGE, '$1')
    .replace(LINK, '$1')
    .replace(/^[ \t]{0,3}#{1,6}[ \t]+/gm, '')
    .replace(/^[ \t]{0,3}>[ \t]?/gm, '')
    .replace(/\*\*(?=\S)([^*]*?\S)\*\*/g, '$1')
    .replace(/__(?=\S)([^_]*?\S)__/g, '$1')
    .replace(/(^|[^*\w])\*(?=\S)([^*\n]*?\S)\*(?!\w)/g, '$1$2')
    .replace(/`([^`\n]+)`/g, '$1');
}

function decodeText(data: Buffer): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data).replace(/^\uFEFF/, '');
  if (text.includes('\u0000')) throw new DocumentRejected('the document is binary, not text');
  return text;
}

/** A section heading of a document (level 1 the highest), as its text appears in the parsed text. */
export interface DocumentHeading {
  level: number;
  text: string;
}

const HEADING_MAX_CHARS = 200;
const squash = (s: string) => s.replace(/[ \t\f\v\r\n\u00a0]+/g, ' ').trim();

/** Spaces and tabs off the end of `s` (a loop: `/[ \t]+$/` is quadratic on a long run of spaces). */
function trimBlanksEnd(s: string): string {
  let end = s.length;
  while (end > 0 && (s[end - 1] === ' ' || s[end - 1] === '\t')) end--;
  return s.slice(0, end);
}

/** Markdown's ATX headings (`#` … `######`), outside fenced code, as markdownToText renders them. */
export function markdownHeadings(md: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  let fenced = false;
  for (const line of md.split(/\r\n?|\n/)) {
    if (/^[ \t]{0,3}(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^[ \t]{0,3}(#{1,6})[ \t]/.exec(line);
    if (!m) continue;
    // the heading's text without its closing sequence (`## Prices ##`), in linear steps
    let raw = trimBlanksEnd(line.slice(m[0].length));
    let hashes = raw.length;
    while (hashes > 0 && raw[hashes - 1] === '#') hashes--;
    raw = trimBlanksEnd(raw.slice(0, hashes)).trimStart();
    if (raw.length > 10 * HEADING_MAX_CHARS) continue;
    const text = squash(markdownToText(raw));
    if (text !== '' && text.length <= HEADING_MAX_CHARS) out.push({ level: m[1]!.length, text });
  }
  return out;
}

/** At most this many HTML heading tags are read (the scan stays linear in the page's size). */
const HTML_MAX_HEADINGS = 2000;
/** At most this much heading markup (characters, all tags together) is converted to text. */
const HTML_HEADINGS_MAX_MARKUP = 100_000;
/** html-to-text compiled once (`convert` compiles its options on every call: ~1.5 ms a heading). */
let headingToText: ((html: string) => string) | undefined;

/**
 * HTML's h1–h3 (h4–h6 are mostly page furniture: footers, sidebars), as htmlToText renders them.
 * Runs in the worker on untrusted HTML, so it is bounded: a tag's attributes are read up to 500
 * characters, its text up to 2,000, and only the first HTML_MAX_HEADINGS tags (no backtracking
 * over the rest of the page for an unclosed tag).
 */
export function htmlHeadings(html: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  // no `<` in the attributes: from each `<h1` the scan stops at the next tag (linear on `<h1<h1<h1…`)
  const open = /<h([1-3])\b[^<>]{0,500}>/gi;
  const span = 10 * HEADING_MAX_CHARS;
  const toText = (headingToText ??= compile(HTML_TO_TEXT_OPTIONS));
  let markup = 0;
  for (let seen = 0, m = open.exec(html); m && seen < HTML_MAX_HEADINGS; seen++, m = open.exec(html)) {
    const start = m.index + m[0].length;
    const window = html.slice(start, start + span + 16);
    const close = window.search(new RegExp(`</h${m[1]}\\s*>`, 'i'));
    if (close < 0 || close > span) continue;
    open.lastIndex = start + close;
    markup += close;
    if (markup > HTML_HEADINGS_MAX_MARKUP) break;
    const text = squash(toText(window.slice(0, close)));
    if (text !== '' && text.length <= HEADING_MAX_CHARS) out.push({ level: Number(m[1]), text });
  }
  return out;
}

/**
 * Plain text's headings, by the typewriter convention: a line on its own (blank lines around it)
 * in capitals, e.g. `CALL-OUT FEES WITHOUT A SERVICE PLAN`; the document's first such line is
 * its title (level 1), the others level 2.
 */
export function plainTextHeadings(text: string): DocumentHeading[] {
  const out: DocumentHeading[] = [];
  for (const raw of text.replace(/\r\n?/g, '\n').split(/\n[ \t]*\n/)) {
    const lines = raw.split('\n').map(squash).filter((l) => l !== '');
    const first = lines[0];
    // a title line may carry a version or date line under it ("FYNBOS SOLAR - PRICE LIST" / "Version 4, effective 1 March 2026")
    if (!first || lines.length > (out.length === 0 ? 2 : 1) || first.length > HEADING_MAX_CHARS) continue;
    const letters = first.replace(/[^\p{L}]/gu, '');
    if (letters.length < 3 || letters !== letters.toUpperCase() || letters === letters.toLowerCase()) continue;
    out.push({ level: out.length === 0 ? 1 : 2, text: first });
  }
  return out;
}

/** A document's plain text and its section headings (for chunks to carry as context: chunk.ts). */
export interface ParsedDocument {
  text: string;
  headings: DocumentHeading[];
}

/**
 * The document's plain text; DocumentRejected when there is none to index, ParseLimitExceeded when
 * it is over a limit. `limits` default to DEFAULT_PARSE_LIMITS.
 */
export async function parseDocument(data: Buffer, mimeType: KnowledgeMimeType, limits: Partial<ParseLimits> = {}): Promise<string> {
  return (await parseDocumentWithHeadings(data, mimeType, limits)).text;
}

/**
 * The document's plain text and headings (none found in PDFs); PDF and HTML are converted in the
 * bounded child process (./parse-sandbox.ts), HTML's headings read here from their own small tags.
 * DocumentRejected when there is no text to index, ParseLimitExceeded when over a limit.
 */
export async function parseDocumentWithHeadings(data: Buffer, mimeType: KnowledgeMimeType, limits: Partial<ParseLimits> = {}): Promise<ParsedDocument> {
  const bounds: ParseLimits = { ...DEFAULT_PARSE_LIMITS, ...limits };
  let text: string;
  let headings: DocumentHeading[] = [];
  if (mimeType === 'application/pdf') text = (await parseInSandbox({ kind: 'pdf', data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }, bounds)).text;
  else if (mimeType === 'text/html') {
    const html = decodeText(data);
    // html-to-text failures (a RangeError from deep nesting) are the document's: final, not retried
    text = (await parseInSandbox({ kind: 'html', html, options: HTML_TO_TEXT_OPTIONS as Record<string, unknown> }, bounds)).text;
    try {
      headings = htmlHeadings(html);
    } catch {
      headings = [];
    }
  } else if (mimeType === 'text/markdown') {
    const md = decodeText(data);
    text = markdownToText(md);
    headings = markdownHeadings(md);
  } else {
    text = decodeText(data);
    headings = plainTextHeadings(text);
  }
  text = text.split('\u0000').join('');
  if (text.trim() === '') throw new DocumentRejected(`the document has no text to index (${mimeType})`);
  return { text, headings };
}
